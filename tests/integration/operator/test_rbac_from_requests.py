"""RBAC is sufficient and minimal: every API request the operator makes is allowed by the
chart's ClusterRole, and the ClusterRole grants nothing the operator never used.

The operator (the real `tritonop run` process, with kopf peering on) runs against a real
kube-apiserver with the real Gateway API, Istio, KEDA and kopf peering CRDs
(tests/support/real_cluster.py), as the chart's own ServiceAccount bound to the chart's
ClusterRole: the server enforces RBAC on every request, and the fault proxy in front of it
records them. A scenario drives it through every kind it can manage: all four traffic
providers, HPA, KEDA, PDB, a credentials Secret, a NetworkPolicy switched off, a canary that
is abandoned, and a deletion. Requests are told apart from the test's own by User-Agent
(kopf/…, tritonop/…). Children are created by server-side apply: a PATCH the API server
authorizes as `patch` and, when it creates (201), as `create` too. Each restart re-applies
the Triton key Secret, which the operator writes without reading.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.helm import helm_template
from tests.support.operator_process import eventually, reconciled
from tests.support.rbac import is_allowed, load_rules
from tests.support.real_cluster import RealCluster, real_cluster
from tritonop.handlers import LEGACY_FINALIZER
from tritonop.kinds import CHILD_KINDS

NS = "ml"
BASE = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "rbac", "namespace": NS},
    "spec": {
        "model": {"storageUri": "s3://models/rbac", "storageSecretName": "creds"},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 3},
    },
}
# Each provider, and the kind its objects are applied last of (what a restart waits for).
TRAFFIC = [
    ({"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}], "grpc": True}}, "grpcroutes"),
    ({"provider": "istio"}, "virtualservices"),
    ({"provider": "nginx", "nginx": {"host": "rbac.example.com"}}, "ingresses"),
    ({"provider": "service"}, "services"),
]
# Grants the chart makes that this scenario cannot exercise, each with its reason.
UNEXERCISED = {
    # kopf lists/watches namespaces only when it serves namespace patterns.
    ("list", "", "namespaces", None),
    ("watch", "", "namespaces", None),
    # Children are read from the watch caches (tritonop/kube/cache.py); `get` is the fallback
    # for a kind the caches have not synced, or whose CRD was installed after they listed it,
    # and for recovering a lost status from the entry Service (tests/unit/controller: fuzz).
    *(("get", kind.group, kind.plural, None) for kind in CHILD_KINDS),
    # Only a wedged InPlace pod is evicted (a Triton that never becomes ready again): needs real
    # Triton pods, so tests/e2e/test_in_place.py and the in-place unit tests exercise it.
    ("create", "", "pods/eviction", None),
}


def verbs_of(request) -> tuple[str, ...]:
    """The RBAC verbs the API server authorizes a request as."""
    method = request.method.value
    if method == "GET":
        if request.name:
            return ("get",)
        return ("watch",) if request.params.get("watch") in ("true", "1") else ("list",)
    if method == "PATCH" and request.status == 201:
        # A server-side apply that creates: authorized as `patch` and as `create`.
        return ("patch", "create")
    return ({"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method],)


def operator_requests(kube: RealCluster) -> set[tuple[str, str, str, str | None, str | None]]:
    seen = set()
    for r in kube.api.all_requests:
        agent = r.headers.get("User-Agent", "")
        if r.resource is None or not r.resource.plural or not agent.startswith(("kopf/", "tritonop/")):
            continue  # API discovery (/apis/GROUP/VERSION) is open to every authenticated user
        for verb in verbs_of(r):
            seen.add((verb, r.resource.group or "", r.resource.plural, r.subresource, r.namespace))
    return seen


def reapplied(kube: RealCluster, mark: int, plural: str) -> bool:
    """The restarted operator's resume pass has server-side applied an object of `plural`."""
    return any(
        r.method.value == "PATCH"
        and r.resource is not None
        and r.resource.plural == plural
        and r.headers.get("User-Agent", "").startswith("tritonop/")
        for r in kube.api.all_requests[mark:]
    )


async def restart(kube: RealCluster, operator, run_operator, plural: str):
    """Stop the operator and start another; return once the new one re-applied `plural` (applied last)."""
    await operator.astop()
    mark = len(kube.api.all_requests)
    operator = run_operator()
    await eventually(lambda: reapplied(kube, mark, plural), timeout=30, what=f"{plural} re-applied after restart")
    return operator


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[RealCluster]:
    """The real cluster with every provider's CRDs; the operator runs as the chart's account."""
    async with real_cluster(provider_crds=True) as cluster:
        cluster.kubeconfig = cluster.chart_kubeconfig(tmp_path / "chart-kubeconfig")
        yield cluster


@pytest.fixture
def operator_args(operator_args: list[str]) -> list[str]:
    # HA mode throughout: kopf peering through the ClusterKopfPeering the chart creates.
    return [*operator_args, "--peering", "tritonop", "--priority", "auto"]


async def test_chart_rbac_is_sufficient_and_minimal(kube: RealCluster, run_operator) -> None:
    await kube.request(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "tritonop"}},
    )
    await kube.request(
        "POST",
        f"/api/v1/namespaces/{NS}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS}},
    )
    # An object an earlier version handled carries its finalizer: kopf removes it (the one
    # PATCH of an InferenceService itself left, and why the chart grants patch on them).
    legacy = copy.deepcopy(BASE)
    legacy["metadata"] = {**legacy["metadata"], "name": "legacy", "finalizers": [LEGACY_FINALIZER]}
    await kube.apply_isvc(legacy)
    operator = run_operator()
    await eventually(
        lambda: not ((kube.isvc(NS, "legacy") or {}).get("metadata") or {}).get("finalizers"),
        timeout=30,
        what="the legacy finalizer removed",
    )
    await kube.delete(f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices/legacy")
    await eventually(
        lambda: not [
            o for plural in ("apps/v1/deployments", "networking.k8s.io/v1/networkpolicies")
            for o in kube.api.live(plural) if o["metadata"]["name"].startswith("legacy")
        ],
        timeout=60,
        what="the legacy object's children collected",
    )  # fmt: skip
    isvc = copy.deepcopy(BASE)
    await kube.apply_isvc(isvc)
    await eventually(lambda: kube.status(NS, "rbac").get("phase") == "Ready", timeout=60, what="Ready")
    for traffic, applied_last in TRAFFIC:
        isvc["spec"]["traffic"] = traffic
        await kube.replace_spec(NS, "rbac", isvc["spec"])
        await eventually(lambda: reconciled(kube, NS, "rbac", isvc["spec"]), timeout=30, what="the change handled")
        # A restart re-applies every child once (server-side apply: PATCH) to repair drift.
        operator = await restart(kube, operator, run_operator, applied_last)
    # The NetworkPolicy (on by default) switched off: deleted; the next change brings it back.
    isvc["spec"]["networkPolicy"] = {"enabled": False}
    await kube.replace_spec(NS, "rbac", isvc["spec"])
    await eventually(
        lambda: not kube.api.live("networking.k8s.io/v1/networkpolicies"), timeout=30, what="NetworkPolicy gone"
    )
    del isvc["spec"]["networkPolicy"]
    isvc["spec"]["autoscaling"] = {"engine": "keda", "minReplicas": 1, "maxReplicas": 3, "queueTimeMs": 20}
    isvc["spec"]["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"  # a canary
    await kube.replace_spec(NS, "rbac", isvc["spec"])
    # A canary whose pods never get ready: the gate asks the pods why.
    canary = await eventually(lambda: kube.status(NS, "rbac").get("canaryRevision"), timeout=30, what="canary")
    kube.never_ready.add(f"rbac-{canary}")
    await eventually(
        lambda: any(r.resource is not None and r.resource.plural == "pods" for r in kube.api.all_requests),
        timeout=30,
        what="the gate asking the pods",
    )
    # The canary gets a ScaledObject; the stable keeps its HPA until the canary is promoted.
    await eventually(lambda: kube.api.live("keda.sh/v1alpha1/scaledobjects"), timeout=30, what="KEDA")
    await eventually(lambda: reconciled(kube, NS, "rbac", isvc["spec"]), timeout=30, what="the change handled")
    operator = await restart(kube, operator, run_operator, "scaledobjects")
    isvc["spec"]["triton"].pop("image")  # back to stable: the canary is deleted
    await kube.replace_spec(NS, "rbac", isvc["spec"])
    await eventually(lambda: not kube.status(NS, "rbac").get("canaryRevision"), timeout=30, what="canary gone")
    await kube.delete(f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices/rbac")
    await eventually(lambda: kube.isvc(NS, "rbac") is None, timeout=30, what="deleted")

    forbidden = sorted({f"{r.method} {r.path}" for r in kube.api.all_requests if r.status == 403})
    assert forbidden == [], f"the API server refused the chart's ServiceAccount: {forbidden}"
    rules = load_rules(helm_template())
    used = operator_requests(kube)
    denied = sorted(
        (verb, group, resource, sub, ns)
        for verb, group, resource, sub, ns in used
        if not is_allowed(rules, verb, group, resource, sub, namespace=ns)
    )
    assert denied == [], f"the chart's RBAC denies requests the operator makes: {denied}"

    granted = {
        (verb, group, resource)
        for rule in rules
        if rule["namespace"] is None
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
    exercised = {
        (verb, group, resource if sub is None else f"{resource}/{sub}") for verb, group, resource, sub, _ in used
    }
    unused = sorted(g for g in granted if g not in exercised and (*g, None) not in UNEXERCISED)
    assert unused == [], f"the chart grants what the operator never used: {unused}"
    # The Triton key Secret is written blind: created, server-side applied on resume, never listed.
    secret_verbs = {verb for verb, _, resource, _, _ in used if resource == "secrets"}
    assert {"create", "patch"} <= secret_verbs and not {"list", "watch", "update", "delete"} & secret_verbs
