"""The real operator (`python -m tritonop run`) against a real control plane through
tests/support/fault_proxy.py, which injects API faults and records every request.

Replaces the emulator's fault test: tests/integration/operator/test_reconcile.py
`test_api_errors_are_retried` (Emulator.fail_next: 500 twice on the Deployment apply, 409
once on an InferenceService PATCH, then Ready with one Deployment and the operator alive)
is covered here on the real server, with the faults the emulator could not produce besides:
429 with Retry-After, 5xx on GETs, slow answers, cut watch streams and 410 Gone on a watch.

The operator runs as the chart's own ServiceAccount bound to the chart's ClusterRole (a
TokenRequest token in a kubeconfig that points at the proxy), so its requests also pass
real RBAC; the proxy forwards the token without the admin certificate. The cluster: etcd,
kube-apiserver, kube-controller-manager (plus the node lifecycle controller),
kube-scheduler and one Node played by tests/support/node_standin.py; only the operator
talks through the proxy, so every recorded request is the operator's (kopf's watches and
patches, and its own client's `tritonop/` requests).

Each test creates its own InferenceService (CPU, `service` provider) with faults armed
before the operator first sees it, and checks on the API server that it becomes Ready
with its children, and in the proxy's records that each injected fault was hit (a record
with `injected` set) and what the operator did next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.support.control_plane import ControlPlane, eventually
from tests.support.fault_proxy import FaultProxy, Recorded
from tests.support.node_standin import cluster_with_ready_node
from tests.support.operator_process import OperatorProcess, operator_flags
from tests.support.real_cluster import chart_account_token

pytestmark = pytest.mark.slow

NS = "ml"
CRD_NAME = "inferenceservices.serving.tritonop.dev"
OPERATOR_NAMESPACE = "tritonop-system"
ISVC_COLLECTION = "/apis/serving.tritonop.dev/v1alpha1/inferenceservices"  # kopf watches cluster-wide
ISVC_PATH = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices"
ISVC_LABEL = "serving.tritonop.dev/inferenceservice"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
SERVICES = f"/api/v1/namespaces/{NS}/services"
# The watch caches' list of Deployments (cluster-wide or per namespace, as the operator serves).
DEPLOYMENT_LIST = rf"/apis/apps/v1/(namespaces/{NS}/)?deployments$"
NOWHERE = "http://127.0.0.1:9"  # Prometheus and Triton: nothing listens, none is needed to be Ready
READY_TIMEOUT = 240.0  # 5xx answers cost the operator a 10 s retry delay each; 2 shared cores


def apply_json(cp: ControlPlane, obj: dict[str, Any]) -> None:
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))


# ------------------------------------------------------------------ the cluster, the proxy, the operator


@pytest.fixture(scope="module")
def cluster() -> Iterator[ControlPlane]:
    """The control plane, the CRD, the namespaces, and one Ready, untainted Node."""
    with cluster_with_ready_node((NS, OPERATOR_NAMESPACE)) as cp:
        yield cp


@pytest.fixture(scope="module")
def proxy(cluster: ControlPlane) -> Iterator[FaultProxy]:
    with FaultProxy(cluster) as running:
        yield running


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator as the chart's ServiceAccount, through the proxy; its watches open."""
    token = chart_account_token(cluster, OPERATOR_NAMESPACE)
    work = tmp_path_factory.mktemp("operator-faults")
    kubeconfig = proxy.kubeconfig(work / "kubeconfig", token=token)
    args = operator_flags(work, tick="0.5", prometheus_url=NOWHERE, triton_url=NOWHERE)
    proc = OperatorProcess(kubeconfig, *args, log=work / "operator.log").start()
    try:
        eventually(lambda: isvc_watches(proxy.requests), "kopf watching InferenceServices through the proxy",
                   timeout=90)  # fmt: skip
        yield proc
    finally:
        proc.stop()
        print(f"--- operator log {proc.log_path} (tail) ---\n" + proc.output[-8000:])


@pytest.fixture(autouse=True)
def faults_hit_and_operator_alive(proxy: FaultProxy, operator: OperatorProcess) -> Iterator[None]:
    yield
    left = proxy.pending_faults()
    proxy.clear_faults()
    assert left == 0, f"{left} injected faults were never hit"
    assert operator.proc is not None and operator.proc.poll() is None, "the operator must survive API faults"


# ------------------------------------------------------------------ helpers


def inference_service(name: str, min_replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"storageUri": "s3://tritonop-examples/model-repository"},
            "triton": {"gpus": 0, "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
            "autoscaling": {"minReplicas": min_replicas, "maxReplicas": 2},
            "traffic": {"provider": "service"},
        },
    }


def ready(cp: ControlPlane, name: str) -> dict[str, Any] | None:
    """The InferenceService, once Ready for its current generation."""
    obj = cp.find(f"{ISVC_PATH}/{name}")
    status = (obj or {}).get("status") or {}
    if obj and status.get("phase") == "Ready" and status.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def served(cp: ControlPlane, name: str, min_replicas: int = 1) -> dict[str, Any]:
    """Create the InferenceService; wait for it Ready and for its revision's children.

    Waited for, not just read, after Ready: a pass stores status before it routes (the
    safety order, docs/rollout.md), so when the entry Service's apply fails, Ready is
    written first and the Service follows on the handler's retry, up to 10 s later.
    """
    apply_json(cp, inference_service(name, min_replicas))
    isvc = eventually(lambda: ready(cp, name), f"InferenceService {name} Ready", timeout=READY_TIMEOUT)
    uid, revision = isvc["metadata"]["uid"], f"{name}-{isvc['status']['stableRevision']}"
    for path in (f"{DEPLOYMENTS}/{revision}", f"{SERVICES}/{revision}", f"{SERVICES}/{name}"):
        obj = eventually(partial(cp.find, path), f"{path} created", timeout=60)
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"] if r.get("controller")] == [uid], path
    deployments = cp.request_json("GET", DEPLOYMENTS, params={"labelSelector": f"{ISVC_LABEL}={name}"})["items"]
    assert [d["metadata"]["name"] for d in deployments] == [revision], "one Deployment, no duplicates"
    return isvc


def delete(cp: ControlPlane, name: str) -> None:
    cp.kubectl("delete", "inferenceservice", name, "-n", NS, "--wait=false", "--ignore-not-found")


def isvc_watches(records: list[Recorded]) -> list[Recorded]:
    return [r for r in records if r.is_watch and r.path == ISVC_COLLECTION]


def injected(records: list[Recorded], kind: str) -> list[Recorded]:
    return [r for r in records if r.injected == kind]


def after(records: list[Recorded], first: Recorded) -> list[Recorded]:
    """The records of the same method and path that arrived after ``first``."""
    return [r for r in records if r.at > first.at and (r.method, r.path) == (first.method, first.path)]


# ------------------------------------------------------------------ tests


def test_a_conflict_on_the_status_write_is_retried(
    cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess
) -> None:
    name = "conflict"
    proxy.fail_next("PATCH", rf"/inferenceservices/{name}/status$", status=409)
    mark = proxy.mark()
    served(cluster, name)
    records = proxy.since(mark)
    (conflict,) = injected(records, "fail")
    assert (conflict.method, conflict.path, conflict.status) == ("PATCH", f"{ISVC_PATH}/{name}/status", 409)
    assert conflict.headers["User-Agent"].startswith("tritonop/")
    # The conditional write (metadata.resourceVersion) was re-decided and written again.
    retries = after(records, conflict)
    assert retries and retries[0].status == 200, [(r.status, r.injected) for r in retries]
    assert conflict.body["metadata"]["resourceVersion"]
    delete(cluster, name)


def test_a_429_on_a_child_write_is_retried_after_retry_after(
    cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess
) -> None:
    name = "throttled"
    proxy.fail_next("PATCH", rf"{DEPLOYMENTS}/{name}-", status=429, retry_after=2)
    mark = proxy.mark()
    isvc = served(cluster, name)
    records = proxy.since(mark)
    (throttled,) = injected(records, "fail")
    assert throttled.path == f"{DEPLOYMENTS}/{name}-{isvc['status']['stableRevision']}"
    assert throttled.headers["Content-Type"] == "application/apply-patch+yaml"
    retry = after(records, throttled)[0]
    waited = retry.at - throttled.at
    assert waited >= 2.0, f"the retry came {waited:.2f}s after a 429 with Retry-After: 2"
    assert waited < 10.0, f"the retry came {waited:.2f}s later: not the client's own, the handler's retry"
    assert retry.status in (200, 201) and retry.injected is None
    assert retry.body == throttled.body and retry.query == throttled.query  # the same apply again
    delete(cluster, name)


def test_server_errors_on_child_writes_and_reads_are_retried(
    cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess
) -> None:
    """As the emulator's test_api_errors_are_retried, plus 503s; and reads, which come from the
    watch caches (kube/cache.py): their list after a cut watch fails twice and is retried."""
    name = "errors"
    proxy.fail_next("PATCH", rf"{DEPLOYMENTS}/{name}-", status=500, times=2)  # creation is an apply
    proxy.fail_next("PATCH", rf"{SERVICES}/{name}$", status=503)
    proxy.fail_next("GET", DEPLOYMENT_LIST, status=503, times=2)
    eventually(lambda: proxy.open_watches, "open watch streams")
    mark = proxy.mark()
    assert proxy.drop_watches() >= 1  # the caches list again, into the injected 503s
    served(cluster, name)
    records = proxy.since(mark)
    failed = injected(records, "fail")
    assert sorted((r.method, r.path.rsplit("/", 2)[-2], r.status) for r in failed if r.method == "PATCH") == sorted(
        [("PATCH", "deployments", 500)] * 2 + [("PATCH", "services", 503)]
    )
    assert len([r for r in failed if r.method == "GET"]) == 2
    for fault in failed:  # each request that failed was sent again and answered by the server
        answered = [r.status for r in after(records, fault) if r.injected is None]
        assert answered and answered[0] < 500, f"{fault.method} {fault.path} not retried: {answered}"
    delete(cluster, name)


def test_slow_answers_are_waited_for(cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess) -> None:
    name = "slow"
    proxy.delay_next("GET", DEPLOYMENT_LIST, seconds=2)  # the caches' list after the cut below
    proxy.delay_next("PATCH", rf"{DEPLOYMENTS}/{name}-", seconds=2)
    proxy.delay_next("PATCH", rf"/inferenceservices/{name}/status$", seconds=2)
    eventually(lambda: proxy.open_watches, "open watch streams")
    mark = proxy.mark()
    assert proxy.drop_watches() >= 1
    served(cluster, name)
    delayed = injected(proxy.since(mark), "delay")
    assert len(delayed) == 3
    # Each got the server's own answer, none an error of ours.
    answers = sorted((r.method, r.path.split("/")[-2], r.status) for r in delayed)
    assert all(status < 400 for _, _, status in answers), answers
    delete(cluster, name)


def test_after_dropped_watches_kopf_watches_again(
    cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess
) -> None:
    name = "rewatch"
    eventually(lambda: proxy.open_watches, "an open watch stream")
    mark = proxy.mark()
    assert proxy.drop_watches() >= 1
    eventually(lambda: isvc_watches(proxy.since(mark)), "kopf opening a new InferenceService watch", timeout=60)
    served(cluster, name)
    # Edited after a second cut: the change is seen too.
    eventually(lambda: proxy.open_watches, "an open watch stream again")
    mark = proxy.mark()
    assert proxy.drop_watches() >= 1
    edited = inference_service(name)
    edited["spec"]["autoscaling"]["maxReplicas"] = 3
    apply_json(cluster, edited)
    eventually(lambda: ready(cluster, name), "the edit handled (Ready for the new generation)", timeout=READY_TIMEOUT)
    revision = f"{name}-{(ready(cluster, name) or {})['status']['stableRevision']}"
    hpa = cluster.find(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{revision}")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 3
    assert isvc_watches(proxy.since(mark))
    delete(cluster, name)


def test_after_410_gone_on_the_watch_kopf_lists_again(
    cluster: ControlPlane, proxy: FaultProxy, operator: OperatorProcess
) -> None:
    name = "relist"
    proxy.gone_next_watch(rf"^{ISVC_COLLECTION}$")
    eventually(lambda: proxy.open_watches, "an open watch stream")
    mark = proxy.mark()
    proxy.drop_watches()  # the next watch kopf opens is answered 410 Gone

    def watched_again() -> list[Recorded] | None:
        found = proxy.since(mark)
        return found if len(isvc_watches(found)) >= 2 else None

    records = eventually(watched_again, "kopf watching again after the 410", timeout=60)
    gone, *rewatched = isvc_watches(records)
    assert (gone.injected, gone.status) == ("gone", 200)
    relists = [r for r in records if r.path == ISVC_COLLECTION and not r.is_watch and r.at > gone.at]
    assert relists and relists[0].status == 200, "kopf did not list InferenceServices again"
    assert rewatched[0].at > relists[0].at and rewatched[0].status == 200
    served(cluster, name)
    delete(cluster, name)
