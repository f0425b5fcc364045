"""The real operator (`python -m tritonop run`) against the real control plane: etcd,
kube-apiserver, kube-controller-manager (plus the node lifecycle controller) and
kube-scheduler, with one Node played by tests/support/node_standin.py (no container runs:
the stand-in reports each Pod bound to it Running and Ready).

The operator runs as the chart's own ServiceAccount, bound to the chart's ClusterRole (a
token from the TokenRequest API), so every request it makes also goes through real RBAC.
Nothing listens at its Prometheus and Triton URLs: a first revision becomes Ready from its
Deployment's ready pods alone, with no Triton call.

Checked here, on the real server:
- an InferenceService (CPU, `service` provider) becomes Ready for its generation, with its
  Deployment, revision Service, entry Service, HPA, PDB (and every other child
  `tritonop.render` builds for it, e.g. its NetworkPolicy) controlled by it, and the real
  ReplicaSet and Pods Ready on the stand-in Node;
- every child is created by server-side apply: the managedFields of the object itself name
  one manager, `tritonop`, with operation Apply (a POST leaves an `Update` entry);
- a field the desired child no longer has goes from the live object (HPA spec.behavior,
  with the fields the server defaulted under it), and a child no longer built (the PDB) is
  deleted;
- GitOps: a server-side dry-run apply of each desired child changes nothing;
- deleting the InferenceService lets the real garbage collector delete every child;
- a Deployment a cluster policy refuses (a ValidatingAdmissionPolicy, 422) is reported as
  reason Rejected with the policy's words and a Warning Event, and applied once it is lifted;
- and why creation is an apply (no operator): a field a POST wrote outlives a later apply
  that drops it (kubernetes#99003), where a field an apply-on-create wrote does not.

Skipped when the binaries are not built (`scripts/build-control-plane`), failed instead
with TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.control_plane import ControlPlane, eventually
from tests.support.node_standin import cluster_with_ready_node, reported_ready
from tests.support.operator_process import OperatorProcess, operator_flags
from tests.support.real_cluster import chart_account_token
from tritonop.config import OperatorConfig
from tritonop.kube.apply import with_hash
from tritonop.kube.client import object_path
from tritonop.render import render

pytestmark = pytest.mark.slow

NS = "ml"
NAME = "cpu"
CRD_NAME = "inferenceservices.serving.tritonop.dev"
OPERATOR_NAMESPACE = "tritonop-system"
ISVC_PATH = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices"
ISVC_LABEL = "serving.tritonop.dev/inferenceservice"
# The operator's flags; the test renders desired children with the same settings.
PROMETHEUS_URL = "http://127.0.0.1:9"  # nothing listens: no canary, no analysis here
TRITON_URL = "http://127.0.0.1:9"  # nothing listens: a first revision needs no Triton to be Ready
COLLECTIONS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
}
# Scale down slowly (a spec.autoscaling.behavior the HPA gets as spec.behavior).
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 60}}


def apply_json(cp: ControlPlane, obj: dict[str, Any], *flags: str) -> str:
    return cp.kubectl("apply", "--server-side", *flags, "-f", "-", input=json.dumps(obj)).stdout


# ------------------------------------------------------------------ the cluster and the operator


@pytest.fixture(scope="module")
def cluster() -> Iterator[ControlPlane]:
    """The control plane, the CRD, namespace `ml`, and one Ready, untainted Node."""
    with cluster_with_ready_node((NS, OPERATOR_NAMESPACE, "ssa")) as cp:
        yield cp


@pytest.fixture(scope="module")
def node_name(cluster: ControlPlane) -> str:
    (node,) = cluster.request_json("GET", "/api/v1/nodes")["items"]
    return str(node["metadata"]["name"])


@pytest.fixture(scope="module")
def operator_kubeconfig(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the chart's operator ServiceAccount, bound to the chart's ClusterRole."""
    token = chart_account_token(cluster, OPERATOR_NAMESPACE)
    return cluster.token_kubeconfig(token, tmp_path_factory.mktemp("operator") / "kubeconfig")


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    work = tmp_path_factory.mktemp("operator-run")
    args = operator_flags(work, tick="0.5", prometheus_url=PROMETHEUS_URL, triton_url=TRITON_URL)
    proc = OperatorProcess(operator_kubeconfig, *args, log=work / "operator.log").start()
    try:
        yield proc
    finally:
        proc.stop()
        print(f"--- operator log {proc.log_path} (tail) ---\n" + proc.output[-6000:])


def operator_config() -> OperatorConfig:
    """What the operator process builds children with (the same flags and environment)."""
    return OperatorConfig.from_env(prometheus_url=PROMETHEUS_URL, triton_url_template=TRITON_URL)


# ------------------------------------------------------------------ reading the cluster


def inference_service(autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "model": {"storageUri": "s3://tritonop-examples/model-repository"},
            "triton": {"gpus": 0, "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
            "autoscaling": autoscaling,
            "traffic": {"provider": "service"},
        },
    }


def ready(cp: ControlPlane) -> dict[str, Any] | None:
    """The InferenceService, once Ready for its current generation."""
    obj = cp.find(f"{ISVC_PATH}/{NAME}")
    status = (obj or {}).get("status") or {}
    if obj and status.get("phase") == "Ready" and status.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def child(cp: ControlPlane, kind: str, name: str) -> dict[str, Any] | None:
    return cp.find(f"{COLLECTIONS[kind].format(ns=NS)}/{name}")


def desired(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """The children the operator builds for the live InferenceService now, as it applies them."""
    return [with_hash(obj) for obj in render(isvc, operator_config())]


def live(cp: ControlPlane, obj: dict[str, Any]) -> dict[str, Any] | None:
    meta = obj["metadata"]
    return cp.find(object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]))


def labelled(cp: ControlPlane, kind: str) -> list[dict[str, Any]]:
    """The objects of a kind labelled as the InferenceService's."""
    path = COLLECTIONS[kind].format(ns=NS)
    return list(cp.request_json("GET", path, params={"labelSelector": f"{ISVC_LABEL}={NAME}"})["items"])


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(manager, operation) of each managedFields entry of the object itself (not status or scale)."""
    return [
        (e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields") or [] if not e.get("subresource")
    ]


@pytest.fixture(scope="module")
def served(cluster: ControlPlane, operator: OperatorProcess) -> dict[str, Any]:
    """InferenceService `cpu`, Ready: autoscaled between 2 and 3 replicas, scaling down slowly."""
    apply_json(cluster, inference_service({"minReplicas": 2, "maxReplicas": 3, "behavior": BEHAVIOR}))
    return eventually(lambda: ready(cluster), "the InferenceService Ready", timeout=120)


# ------------------------------------------------------------------ tests


def test_an_inference_service_is_served_by_the_real_controllers(
    cluster: ControlPlane, served: dict[str, Any], node_name: str
) -> None:
    uid, revision = served["metadata"]["uid"], served["status"]["stableRevision"]
    revision_name = f"{NAME}-{revision}"
    children = desired(served)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in children}
    assert kinds >= {("Deployment", revision_name), ("Service", revision_name), ("Service", NAME),
                     ("HorizontalPodAutoscaler", revision_name), ("PodDisruptionBudget", revision_name)}  # fmt: skip
    for wanted in children:
        kind, name = wanted["kind"], wanted["metadata"]["name"]
        obj = live(cluster, wanted)
        assert obj is not None, f"{kind} {name} missing"
        refs = [
            (r["kind"], r["name"], r["uid"], r.get("controller")) for r in obj["metadata"].get("ownerReferences", [])
        ]
        assert refs == [("InferenceService", NAME, uid, True)], f"{kind} {name}: {refs}"

    # The real ReplicaSet and its Pods (the HPA raised the Deployment to minReplicas 2), Ready
    # on the stand-in Node; the Deployment controller counts them.
    def pods_ready() -> list[dict[str, Any]] | None:
        pods = labelled(cluster, "Pod")
        return pods if len(pods) == 2 and all(reported_ready(p) for p in pods) else None

    pods = eventually(pods_ready, "2 Ready Pods of the revision", timeout=90)
    assert {p["spec"]["nodeName"] for p in pods} == {node_name}
    (replicaset,) = labelled(cluster, "ReplicaSet")
    assert replicaset["metadata"]["ownerReferences"][0]["name"] == revision_name
    assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods} == {replicaset["metadata"]["name"]}

    def deployment_ready() -> dict[str, Any] | None:
        deployment = child(cluster, "Deployment", revision_name) or {}
        return deployment if (deployment.get("status") or {}).get("readyReplicas") == 2 else None

    deployment = eventually(deployment_ready, "the Deployment to count 2 ready replicas")
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
    assert served["status"]["url"], served["status"]


def test_every_child_is_created_by_server_side_apply(cluster: ControlPlane, served: dict[str, Any]) -> None:
    """One manager, tritonop, operation Apply. A POST would have left `tritonop`/Update owning
    every field it wrote, which no later apply removes (kubernetes#99003)."""
    for wanted in desired(served):
        kind, name = wanted["kind"], wanted["metadata"]["name"]
        obj = live(cluster, wanted)
        assert obj is not None, f"{kind} {name} missing"
        assert managers(obj) == [("tritonop", "Apply")], f"{kind} {name}: {managers(obj)}"


def test_a_field_the_desired_child_drops_is_removed_live(cluster: ControlPlane, served: dict[str, Any]) -> None:
    """spec.autoscaling changes create no revision: the same HPA is applied again without
    spec.behavior, and minReplicas 1 needs no PDB."""
    revision_name = f"{NAME}-{served['status']['stableRevision']}"
    before = child(cluster, "HorizontalPodAutoscaler", revision_name)
    assert before is not None and before["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    # The server defaulted what the operator left out (scaleUp, policies): no manager owns those.
    assert before["spec"]["behavior"]["scaleUp"]["policies"]

    apply_json(cluster, inference_service({"minReplicas": 1, "maxReplicas": 3}))
    eventually(lambda: ready(cluster), "the InferenceService Ready for the new generation")

    def behavior_gone() -> dict[str, Any] | None:
        hpa = child(cluster, "HorizontalPodAutoscaler", revision_name) or {}
        spec = hpa.get("spec") or {}
        return hpa if spec.get("minReplicas") == 1 and "behavior" not in spec else None

    hpa = eventually(behavior_gone, "spec.behavior gone from the live HPA")
    assert managers(hpa) == [("tritonop", "Apply")]
    eventually(lambda: child(cluster, "PodDisruptionBudget", revision_name) is None, "the PDB deleted")
    assert (ready(cluster) or {}).get("status", {}).get("stableRevision") == served["status"]["stableRevision"]


def test_pinned_replicas_handed_to_an_autoscaler_keep_their_count(
    cluster: ControlPlane, served: dict[str, Any]
) -> None:
    """min == max pins the Deployment's replicas (no HPA); widening the range hands them to an
    HPA. An apply that just drops spec.replicas would reset them to 1 (the API default) until
    the HPA acts: the operator hands the count over to another field manager first."""
    revision_name = f"{NAME}-{served['status']['stableRevision']}"
    apply_json(cluster, inference_service({"minReplicas": 3, "maxReplicas": 3}))
    eventually(
        lambda: (d := child(cluster, "Deployment", revision_name)) and d["spec"].get("replicas") == 3 and d,
        "the Deployment pinned at 3 replicas",
    )
    eventually(lambda: child(cluster, "HorizontalPodAutoscaler", revision_name) is None, "no HPA while pinned")

    apply_json(cluster, inference_service({"minReplicas": 2, "maxReplicas": 6}))
    eventually(lambda: child(cluster, "HorizontalPodAutoscaler", revision_name), "the HPA for the widened range")
    deployment = child(cluster, "Deployment", revision_name)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 3, deployment["metadata"]["managedFields"]
    owners = {
        entry["manager"]
        for entry in deployment["metadata"]["managedFields"]
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    }
    assert owners == {"tritonop-handover"}
    eventually(lambda: ready(cluster), "Ready again")


def test_a_dry_run_apply_of_each_desired_child_changes_nothing(cluster: ControlPlane, served: dict[str, Any]) -> None:
    """GitOps sanity: what the operator would apply now is what is live, as the API server sees it."""
    isvc = eventually(lambda: ready(cluster), "the InferenceService Ready")
    children = desired(isvc)
    assert {o["kind"] for o in children} >= {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for obj in children:
        kind, name = obj["kind"], obj["metadata"]["name"]
        now = live(cluster, obj)
        assert now is not None, f"{kind} {name} missing"
        flags = ("--field-manager=tritonop", "--force-conflicts")
        diff = cluster.kubectl("diff", "--server-side", *flags, "-f", "-", input=json.dumps(obj), check=False)
        assert diff.returncode == 0, f"{kind} {name} differs from its desired state:\n{diff.stdout}{diff.stderr}"
        dry = json.loads(apply_json(cluster, obj, "--dry-run=server", *flags, "-o", "json"))
        for field in ("resourceVersion", "generation"):
            assert dry["metadata"].get(field) == now["metadata"].get(field), f"{kind} {name}: {field} would change"


def test_deleting_the_inference_service_lets_the_garbage_collector_delete_the_children(
    cluster: ControlPlane, served: dict[str, Any]
) -> None:
    assert labelled(cluster, "Deployment") and labelled(cluster, "Pod")
    cluster.kubectl("delete", "inferenceservice", NAME, "-n", NS, "--wait=false")
    eventually(lambda: cluster.find(f"{ISVC_PATH}/{NAME}") is None, "the InferenceService gone (no finalizer holds it)")

    def leftovers() -> dict[str, list[str]]:
        return {
            kind: names for kind in COLLECTIONS if (names := [o["metadata"]["name"] for o in labelled(cluster, kind)])
        }

    eventually(lambda: not leftovers(), "the garbage collector to delete every child", timeout=90)
    for obj in desired(served):  # by name as well
        assert live(cluster, obj) is None, f"{obj['kind']} {obj['metadata']['name']} left"


def test_the_operator_needed_no_more_than_the_charts_rbac(operator: OperatorProcess, served: dict[str, Any]) -> None:
    forbidden = [line for line in operator.output.splitlines() if " 403: " in line or "forbidden" in line]
    assert not forbidden, "the chart's RBAC refused the operator:\n" + "\n".join(forbidden[:5])


def test_a_child_a_cluster_policy_rejects_is_reported_and_retried(
    cluster: ControlPlane, operator: OperatorProcess
) -> None:
    """A ValidatingAdmissionPolicy (in-tree CEL admission) refuses the Deployments of
    InferenceService `denied` (422 Invalid): it reports reason Rejected with the policy's words
    and a Warning Event, and goes on once the policy's binding is gone. After the RBAC check
    above, which reads the operator's log for refusals."""
    name, label = "denied", ISVC_LABEL
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-denied-deployments"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                 "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{
                "expression": f"!has(object.metadata.labels) || !('{label}' in object.metadata.labels) "
                              f"|| object.metadata.labels['{label}'] != '{name}'",
                "message": "this cluster takes no Deployment of InferenceService denied",
                "reason": "Invalid",
            }],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "no-denied-deployments"},
        "spec": {"policyName": "no-denied-deployments", "validationActions": ["Deny"]},
    }
    apply_json(cluster, policy)
    apply_json(cluster, binding)
    probe = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "probe", "namespace": NS,
             "labels": {label: name}}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
             "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}  # fmt: skip

    def enforced() -> bool:  # the policy takes effect once the server has loaded it
        dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        return dry.returncode != 0 and "takes no Deployment" in dry.stderr

    eventually(enforced, "the admission policy enforced", timeout=30)
    isvc = inference_service({"minReplicas": 1, "maxReplicas": 1})
    isvc["metadata"]["name"] = name
    apply_json(cluster, isvc)

    def rejected() -> dict[str, Any] | None:
        conditions = ((cluster.find(f"{ISVC_PATH}/{name}") or {}).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return ready if ready and ready.get("reason") == "Rejected" else None

    ready = eventually(rejected, "Ready=False with reason Rejected", timeout=60)
    assert ready["status"] == "False"
    assert ready["message"].startswith(f"rejected: the API server refused to patch deployments.apps in namespace {NS}")
    assert "takes no Deployment of InferenceService denied" in ready["message"]
    events = cluster.request_json("GET", f"/api/v1/namespaces/{NS}/events")["items"]
    assert [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == "Rejected"
            and e["type"] == "Warning"], "no Warning Event Rejected"  # fmt: skip

    cluster.kubectl("delete", "validatingadmissionpolicybinding", "no-denied-deployments")
    eventually(lambda: labelled_as(cluster, name), "the Deployment applied once the policy is gone", timeout=90)
    eventually(lambda: rejected() is None, "the Rejected report cleared", timeout=60)
    cluster.kubectl("delete", "validatingadmissionpolicy", "no-denied-deployments")
    cluster.kubectl("delete", "inferenceservice", name, "-n", NS, "--wait=false")


def labelled_as(cp: ControlPlane, isvc: str) -> bool:
    path = COLLECTIONS["Deployment"].format(ns=NS)
    return bool(cp.request_json("GET", path, params={"labelSelector": f"{ISVC_LABEL}={isvc}"})["items"])


# ------------------------------------------------------------------ why creation is an apply


def _hpa(behavior: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 2,
    }
    if behavior:
        spec["behavior"] = BEHAVIOR
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "ssa"}, "spec": spec}  # fmt: skip


@pytest.mark.parametrize("create_by", ["POST", "apply"])
def test_a_field_outlives_a_later_apply_only_when_a_post_wrote_it(cluster: ControlPlane, create_by: str) -> None:
    """kubernetes#99003, on the real server: the fields a POST writes are owned by an `Update`
    manager, so an apply that no longer names them leaves them; the fields an apply-on-create
    writes are owned by that apply, so a later apply removes them."""
    path = "/apis/autoscaling/v2/namespaces/ssa/horizontalpodautoscalers"
    apply = {"fieldManager": "tritonop", "force": "true"}
    if create_by == "POST":
        cluster.request_json("POST", path, _hpa(behavior=True), params={"fieldManager": "tritonop"})
    else:
        cluster.request_json("PATCH", f"{path}/web", _hpa(behavior=True), params=apply,
                             content_type="application/apply-patch+yaml")  # fmt: skip
    created = cluster.request_json("GET", f"{path}/web")
    assert managers(created) == [("tritonop", "Update" if create_by == "POST" else "Apply")]

    cluster.request_json("PATCH", f"{path}/web", _hpa(behavior=False), params=apply,
                         content_type="application/apply-patch+yaml")  # fmt: skip
    after = cluster.request_json("GET", f"{path}/web")
    if create_by == "POST":
        assert after["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60  # left behind
        assert sorted(managers(after)) == [("tritonop", "Apply"), ("tritonop", "Update")]
    else:
        assert "behavior" not in after["spec"]
        assert managers(after) == [("tritonop", "Apply")]
    cluster.request_json("DELETE", f"{path}/web")
