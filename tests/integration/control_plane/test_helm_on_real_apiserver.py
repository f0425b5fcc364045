"""`helm install`, `helm upgrade` and `helm uninstall` of charts/tritonop on the real control
plane (etcd, kube-apiserver, kube-controller-manager with the node lifecycle controller,
kube-scheduler), with one Node played by tests/support/node_standin.py.

No container runs: the chart's operator Deployment gets its Pod scheduled to the stand-in
Node and reported Ready (so `helm install --wait` and `helm upgrade --wait` wait for real
Deployment status), and the operator itself runs here as a local process
(`python -m tritonop run`) with

- a token (TokenRequest API) for the ServiceAccount the chart created, so every request goes
  through the RBAC the chart installed;
- the container args of the installed Deployment, overriding only what must be local: the
  metrics port (a free one), the API key Secret file (the chart's Secret, read from the
  cluster into a local file), and a Triton endpoints file. The Prometheus and Triton URLs
  come from the chart's values: closed ports on 127.0.0.1, the Prometheus one being the
  chart's default URL (always allowed).

The tests run in order and share one release:
1. install: CRDs from crds/ Established, the release deployed, every rendered object live,
   an InferenceService Ready with its children, no request refused;
2. a permission removed from the chart's live ClusterRole: the InferenceService says so
   (Ready=False/Stalled=True, reason Forbidden, verb and resource named, a Warning Event),
   and comes back Ready once the permission is restored;
3. upgrade to watchNamespaces [ml] and another allowed Prometheus URL: the Deployment's args,
   the RBAC objects (a Role in `ml` instead of the all-namespaces ClusterRole) and the
   revision change; the InferenceService stays Ready, and serves a spec change under the
   namespaced Role;
4. uninstall: every chart object goes; the CRDs, the InferenceService and its children stay
   (the operator adds no finalizer, so deleting it later needs no operator).

Skipped when helm or the control-plane binaries are missing, failed instead with
TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.control_plane import ControlPlane, eventually
from tests.support.helm import CHART_DIR, run_helm
from tests.support.node_standin import cluster_with_ready_node
from tests.support.operator_process import OperatorProcess, free_port

pytestmark = pytest.mark.slow

RELEASE = "tritonop"
OPERATOR_NAMESPACE = "tritonop-system"
NS = "ml"
NAME = "cpu"
CRDS = ("inferenceservices.serving.tritonop.dev", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")
ISVC_PATH = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices"
CLOSED = "http://127.0.0.1:9"  # nothing listens: no canary, no analysis, no Triton call here
OTHER_PROMETHEUS = "http://127.0.0.1:19090"  # allowed by the upgrade
VALUES: dict[str, Any] = {
    "operator": {
        "prometheusUrl": CLOSED,
        "tritonUrlTemplate": CLOSED,
        # A short rollout timer: the test waits less for each pass (the chart's extraArgs).
        "extraArgs": ["--tick-seconds=1"],
    },
}
UPGRADE_VALUES: dict[str, Any] = {
    **VALUES,
    "watchNamespaces": [NS],
    "operator": {**VALUES["operator"], "allowedPrometheusUrls": [OTHER_PROMETHEUS]},
}
HELM_TIMEOUT = "5m"


# ------------------------------------------------------------------ helpers


def apply_json(cp: ControlPlane, obj: dict[str, Any]) -> None:
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))


def helm(cp: ControlPlane, *args: str, check: bool = True, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    result = run_helm([*args, "--kubeconfig", str(cp.kubeconfig)], timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def values_file(tmp: Path, values: dict[str, Any]) -> str:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def release_status(cp: ControlPlane) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(helm(cp, "status", RELEASE, "-n", OPERATOR_NAMESPACE, "-o", "json").stdout)
    return status


def manifest(cp: ControlPlane) -> str:
    """What the release installed (`helm get manifest`): templates only, not crds/."""
    return helm(cp, "get", "manifest", RELEASE, "-n", OPERATOR_NAMESPACE).stdout


def identities(text: str) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of each object in a YAML stream."""
    return {
        (o["kind"], o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in yaml.safe_load_all(text) if o
    }


def live_identities(cp: ControlPlane, text: str) -> set[tuple[str, str, str]]:
    """Which of the objects in a YAML stream exist on the server now."""
    found = cp.kubectl("get", "-f", "-", "--ignore-not-found", "-o", "json", input=text).stdout
    items = json.loads(found)["items"] if found.strip() else []
    return {(o["kind"], o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in items}


def operator_deployment(cp: ControlPlane) -> dict[str, Any]:
    deployment = cp.find(f"/apis/apps/v1/namespaces/{OPERATOR_NAMESPACE}/deployments/{RELEASE}")
    assert deployment is not None, "the chart's operator Deployment is missing"
    return deployment


def container_args(cp: ControlPlane) -> list[str]:
    (container,) = operator_deployment(cp)["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def inference_service(min_replicas: int, max_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "model": {"storageUri": "s3://tritonop-examples/model-repository"},
            "triton": {"gpus": 0, "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
            "autoscaling": {"minReplicas": min_replicas, "maxReplicas": max_replicas},
            "traffic": {"provider": "service"},
        },
    }


def isvc(cp: ControlPlane) -> dict[str, Any] | None:
    return cp.find(f"{ISVC_PATH}/{NAME}")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def ready(cp: ControlPlane) -> dict[str, Any] | None:
    """The InferenceService, once Ready (phase and condition) for its current generation."""
    obj = isvc(cp)
    status = (obj or {}).get("status") or {}
    if (
        obj
        and status.get("phase") == "Ready"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
        and condition(obj, "Ready").get("status") == "True"
    ):
        return obj
    return None


def hpa(cp: ControlPlane, revision: str) -> dict[str, Any] | None:
    return cp.find(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{NAME}-{revision}")


def refusals(text: str) -> list[str]:
    return [line for line in text.splitlines() if " 403: " in line or "forbidden" in line.lower()]


# ------------------------------------------------------------------ the cluster, the release, the operator


@pytest.fixture(scope="module")
def cluster() -> Iterator[ControlPlane]:
    """The control plane with one Ready, untainted Node; namespace `ml` for InferenceServices."""
    with cluster_with_ready_node((NS,), crd=False) as cp:
        yield cp


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`helm install --create-namespace --wait`; returns the installed manifest."""
    values = values_file(tmp_path_factory.mktemp("install"), VALUES)
    helm(cluster, "install", RELEASE, str(CHART_DIR), "-n", OPERATOR_NAMESPACE, "--create-namespace",
         "-f", values, "--wait", "--timeout", HELM_TIMEOUT)  # fmt: skip
    return manifest(cluster)


class LocalOperator:
    """The operator the chart's Deployment would run, run here as the chart's ServiceAccount."""

    def __init__(self, cp: ControlPlane, work: Path) -> None:
        self.cp = cp
        self.work = work
        self.proc: OperatorProcess | None = None
        self.runs = 0

    def start(self) -> OperatorProcess:
        self.runs += 1
        run = self.work / f"run-{self.runs}"
        run.mkdir()
        deployment = operator_deployment(self.cp)
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        token = self.cp.kubectl("create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=2h").stdout.strip()
        kubeconfig = self.cp.token_kubeconfig(token, run / "kubeconfig")
        secret = self.cp.find(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{RELEASE}-api-key")
        assert secret is not None and secret["data"]["secret"], "the chart's API key Secret is missing"
        key_file = run / "api-key"
        key_file.write_text(base64.b64decode(secret["data"]["secret"]).decode())
        local = {
            "--metrics-port": str(free_port()),
            "--api-key-secret-file": str(key_file),
            "--triton-endpoints-file": str(run / "endpoints.json"),
        }
        args = container_args(self.cp)
        assert args[0] == "run", args
        kept = [a for a in args[1:] if a.split("=", 1)[0] not in local]
        self.proc = OperatorProcess(kubeconfig, *kept, *(f"{k}={v}" for k, v in local.items()), log=run / "log")
        return self.proc.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            print(f"--- operator log {self.proc.log_path} (tail) ---\n" + self.proc.output[-4000:])
            self.proc = None

    @property
    def output(self) -> str:
        return self.proc.output if self.proc is not None else ""


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, installed: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalOperator]:
    local = LocalOperator(cluster, tmp_path_factory.mktemp("operator"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


# ------------------------------------------------------------------ 1. install


def test_install_deploys_the_chart_and_an_inference_service_becomes_ready(
    cluster: ControlPlane, installed: str, operator: LocalOperator
) -> None:
    for crd in CRDS:  # from crds/, installed by helm before the templates
        eventually(lambda crd=crd: cluster.crd_established(crd), f"{crd} Established", timeout=60)
    status = release_status(cluster)
    assert (status["info"]["status"], status["version"]) == ("deployed", 1)

    rendered = identities(installed)
    kinds = {kind for kind, _, _ in rendered}
    assert kinds >= {"ServiceAccount", "Secret", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"}
    assert live_identities(cluster, installed) == rendered
    deployment = operator_deployment(cluster)
    assert (deployment.get("status") or {}).get("readyReplicas") == 1  # --wait waited for it
    args = container_args(cluster)
    assert "--all-namespaces" in args and f"--prometheus-url={CLOSED}" in args and "--tick-seconds=1" in args

    apply_json(cluster, inference_service(2, 3))
    served = eventually(lambda: ready(cluster), "the InferenceService Ready", timeout=180)
    revision = served["status"]["stableRevision"]
    for path in (
        f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}-{revision}",
        f"/api/v1/namespaces/{NS}/services/{NAME}-{revision}",
        f"/api/v1/namespaces/{NS}/services/{NAME}",
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{NAME}-{revision}",
        f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{NAME}-{revision}",
    ):
        obj = cluster.find(path)
        assert obj is not None, f"{path} missing"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == served["metadata"]["uid"], path
    assert not refusals(operator.output), "the chart's RBAC refused the operator:\n" + "\n".join(
        refusals(operator.output)[:5]
    )


# ------------------------------------------------------------------ 2. a permission taken away


def without_verb(role: dict[str, Any], resource: str, verb: str) -> dict[str, Any]:
    """The role with `verb` taken off every rule naming `resource` (other resources keep it)."""
    rules = []
    for rule in role["rules"]:
        if resource in rule.get("resources", []) and verb in rule.get("verbs", []):
            others = [r for r in rule["resources"] if r != resource]
            if others:
                rules.append({**rule, "resources": others})
            rules.append({**rule, "resources": [resource], "verbs": [v for v in rule["verbs"] if v != verb]})
        else:
            rules.append(rule)
    meta = {k: v for k, v in role["metadata"].items() if k in ("name", "labels", "annotations")}
    return {"apiVersion": role["apiVersion"], "kind": role["kind"], "metadata": meta, "rules": rules}


def test_a_removed_permission_is_visible_on_the_inference_service_and_recovers(
    cluster: ControlPlane, operator: LocalOperator
) -> None:
    served = eventually(lambda: ready(cluster), "the InferenceService Ready", timeout=120)
    revision = served["status"]["stableRevision"]
    role_path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{RELEASE}"
    original = cluster.find(role_path)
    assert original is not None
    cluster.request_json("PUT", role_path, {**without_verb(original, "horizontalpodautoscalers", "patch"),
                                            "metadata": original["metadata"]})  # fmt: skip
    # The authorizer reads roles from its informer: wait until the server refuses the operator's SA.
    account = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{RELEASE}"
    can_i = ("auth", "can-i", "patch", "horizontalpodautoscalers.autoscaling", "-n", NS, "--as", account)
    eventually(
        lambda: cluster.kubectl(*can_i, check=False).stdout.strip() == "no",
        "RBAC to refuse patch on horizontalpodautoscalers",
    )

    apply_json(cluster, inference_service(1, 4))  # the HPA must be patched: min 1, max 4

    def refused() -> dict[str, Any] | None:
        obj = isvc(cluster)
        return obj if condition(obj, "Ready").get("reason") == "Forbidden" else None

    obj = eventually(refused, "Ready=False reason Forbidden on the InferenceService", timeout=120)
    ready_condition, stalled = condition(obj, "Ready"), condition(obj, "Stalled")
    assert ready_condition["status"] == "False"
    assert (stalled["status"], stalled["reason"]) == ("True", "Forbidden")
    assert f"tritonop cannot patch horizontalpodautoscalers.autoscaling in namespace {NS}" in ready_condition["message"]
    assert "ClusterRole" in ready_condition["message"]

    def warning() -> list[dict[str, Any]] | None:
        events = cluster.request_json(
            "GET", f"/api/v1/namespaces/{NS}/events", params={"fieldSelector": f"involvedObject.name={NAME}"}
        )["items"]
        found = [e for e in events if e["reason"] == "Forbidden" and e["type"] == "Warning"]
        return found or None

    (event, *_) = eventually(warning, "a Warning Event with reason Forbidden")
    assert "cannot patch horizontalpodautoscalers.autoscaling" in event["message"]
    live_hpa = hpa(cluster, revision)
    assert live_hpa is not None and live_hpa["spec"]["maxReplicas"] == 3  # refused: unchanged

    # Granted again: the retry (back-off) goes through and the report clears.
    current = cluster.find(role_path)
    assert current is not None
    cluster.request_json("PUT", role_path, {**original, "metadata": current["metadata"]})
    recovered = eventually(lambda: ready(cluster), "the InferenceService Ready again", timeout=180)
    assert condition(recovered, "Stalled")["status"] == "False"
    live_hpa = hpa(cluster, revision)
    assert live_hpa is not None and (live_hpa["spec"]["minReplicas"], live_hpa["spec"]["maxReplicas"]) == (1, 4)


# ------------------------------------------------------------------ 3. upgrade


def test_upgrade_changes_the_live_objects_and_the_inference_service_stays_ready(
    cluster: ControlPlane, operator: LocalOperator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = eventually(lambda: ready(cluster), "the InferenceService Ready", timeout=120)
    # The Deployment's Recreate strategy stops the old operator pod before the new one starts;
    # the local process does the same around the upgrade.
    operator.stop()
    values = values_file(tmp_path_factory.mktemp("upgrade"), UPGRADE_VALUES)
    helm(cluster, "upgrade", RELEASE, str(CHART_DIR), "-n", OPERATOR_NAMESPACE, "-f", values,
         "--wait", "--timeout", HELM_TIMEOUT)  # fmt: skip

    status = release_status(cluster)
    assert (status["info"]["status"], status["version"]) == ("deployed", 2)
    args = container_args(cluster)
    assert f"--namespace={NS}" in args and "--all-namespaces" not in args
    assert f"--allow-prometheus-url={OTHER_PROMETHEUS}" in args
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    eventually(lambda: cluster.find(f"{rbac}/clusterroles/{RELEASE}") is None, "the all-namespaces ClusterRole gone")
    assert cluster.find(f"{rbac}/clusterrolebindings/{RELEASE}") is None
    assert cluster.find(f"{rbac}/clusterroles/{RELEASE}-crd-scan") is not None
    role = cluster.find(f"{rbac}/namespaces/{NS}/roles/{RELEASE}")
    assert role is not None and any("deployments" in r["resources"] for r in role["rules"])
    assert cluster.find(f"{rbac}/namespaces/{NS}/rolebindings/{RELEASE}") is not None
    upgraded = manifest(cluster)
    assert live_identities(cluster, upgraded) == identities(upgraded)
    deployment = operator_deployment(cluster)
    assert deployment["metadata"]["generation"] >= 2 and deployment["status"].get("readyReplicas") == 1

    # Nothing the InferenceService serves was touched by the upgrade.
    still = ready(cluster)
    assert still is not None and still["status"]["stableRevision"] == before["status"]["stableRevision"]

    proc = operator.start()  # the new pod's args: --namespace=ml, the new allowlist
    after = eventually(lambda: ready(cluster), "the InferenceService Ready under the upgraded operator")
    assert after["status"]["stableRevision"] == before["status"]["stableRevision"]
    apply_json(cluster, inference_service(1, 5))  # served under the namespaced Role
    eventually(
        lambda: (
            (obj := ready(cluster))
            and (hpa(cluster, obj["status"]["stableRevision"]) or {}).get("spec", {}).get("maxReplicas") == 5
            and obj
        ),
        "a spec change served under the namespaced Role",
        timeout=240,
    )
    # Every request is authorised by the namespaced Role; kopf does not scan Namespaces
    # cluster-wide when the watched namespaces are exact names (which the chart's
    # namespaced mode does not grant).
    refused = refusals(proc.output)
    assert refused == [], "the upgraded chart's RBAC refused the operator:\n" + "\n".join(refused[:5])


# ------------------------------------------------------------------ 4. uninstall


def test_uninstall_removes_every_chart_object_and_leaves_crds_and_inference_services(
    cluster: ControlPlane, operator: LocalOperator
) -> None:
    served = eventually(lambda: ready(cluster), "the InferenceService Ready", timeout=120)
    revision = served["status"]["stableRevision"]
    installed = manifest(cluster)
    assert live_identities(cluster, installed)
    operator.stop()  # the uninstall deletes the operator's pod: it stops
    helm(cluster, "uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, "--wait", "--timeout", HELM_TIMEOUT)

    eventually(lambda: not live_identities(cluster, installed), "every chart object gone", timeout=120)
    listed = json.loads(helm(cluster, "list", "-n", OPERATOR_NAMESPACE, "-o", "json").stdout)
    assert listed == []
    # What stays, by helm's policy (crds/ is never upgraded or deleted) and by design:
    for crd in CRDS:
        live_crd = cluster.find(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        assert live_crd is not None, crd
        assert live_crd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep", crd
    assert cluster.find(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}") is not None  # --create-namespace's namespace
    obj = isvc(cluster)
    assert obj is not None and not obj["metadata"].get("finalizers")
    deployment_path = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}-{revision}"
    assert cluster.find(deployment_path) is not None  # the children keep serving, unmanaged

    # With no operator, a deleted InferenceService goes at once (nothing holds it), and the
    # garbage collector takes its children.
    cluster.kubectl("delete", "inferenceservice", NAME, "-n", NS, "--wait=false")
    eventually(lambda: isvc(cluster) is None, "the InferenceService gone")
    eventually(lambda: cluster.find(deployment_path) is None, "its Deployment garbage-collected", timeout=90)
