"""Manual control through the real operator process on a real API server
(tests/support/real_cluster.py):
pause, and the promote/abort annotations that name the canary revision."""

from __future__ import annotations

import copy
import urllib.request

from tests.support.operator_process import eventually, passes, wait_for_event, wait_for_passes
from tests.support.real_cluster import RealCluster

NS = "ml"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "manual", "namespace": NS},
    "spec": {
        "model": {"storageUri": "s3://models/manual"},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
    },
}
DEPLOYMENTS = "apps/v1/deployments"
# Timer passes (ticks of 0.3 s) a test watches the operator run before it concludes that
# nothing happened.
QUIET_PASSES = 6


async def start_canary(kube: RealCluster, image: str) -> str:
    spec = copy.deepcopy(ISVC["spec"])
    spec["triton"]["image"] = image
    await kube.replace_spec(NS, "manual", spec)
    return await eventually(lambda: kube.status(NS, "manual").get("canaryRevision"), timeout=30, what="canary")


def canary_weight_series(op) -> list[str]:
    port = op.args[op.args.index("--metrics-port") + 1]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return [line for line in body.splitlines() if line.startswith("tritonop_canary_weight_percent{")]


async def test_pause_promote_and_abort(kube: RealCluster, run_operator) -> None:
    op = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    first = await eventually(
        lambda: kube.status(NS, "manual").get("phase") == "Ready" and kube.status(NS, "manual")["stableRevision"],
        timeout=40,
    )

    # Pause holds the canary where it is, and says so.
    second = await start_canary(kube, "nvcr.io/nvidia/tritonserver:24.11-py3")
    paused = copy.deepcopy(ISVC["spec"])
    paused["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"
    paused["rollout"] = {"paused": True}
    await kube.replace_spec(NS, "manual", paused)
    await eventually(lambda: kube.status(NS, "manual")["canary"]["waitingFor"] == "Paused", timeout=20)
    assert kube.status(NS, "manual")["canaryRevision"] == second

    # An annotation naming another revision does nothing: the operator is seen to finish passes
    # over the annotated object (its tritonop_passes metric), and none of them moves it.
    before = passes(op, NS, "manual")
    await kube.annotate(NS, "manual", {"serving.tritonop.dev/promote": "0000000000"})
    await wait_for_passes(op, NS, "manual", QUIET_PASSES, since=before)
    status = kube.status(NS, "manual")
    assert status["stableRevision"] == first
    assert status["canaryRevision"] == second and status["canary"]["waitingFor"] == "Paused"

    # Naming the canary promotes it now (even paused, even at its gate); the old stable goes.
    await kube.annotate(NS, "manual", {"serving.tritonop.dev/promote": second})
    status = await eventually(
        lambda: (s := kube.status(NS, "manual")).get("stableRevision") == second and s, timeout=20, what="promoted"
    )
    assert status["phase"] == "Ready" and not status.get("canaryRevision")
    assert status["traffic"] == [{"revision": second, "percent": 100}]
    await eventually(lambda: kube.api.get(DEPLOYMENTS, NS, f"manual-{first}") is None, timeout=20)
    # kopf.event() only queues an Event: it may land after the status write, so wait for it.
    await wait_for_event(kube, NS, "manual", "Promoted")
    # The canary-weight metric keeps one series per object: the promoted canary's is gone.
    series = await eventually(lambda: canary_weight_series(op), timeout=10)
    assert series == ['tritonop_canary_weight_percent{name="manual",namespace="ml",revision=""} 0.0'], series

    # Abort: rolled back to 0%, scaled to zero, autoscaler removed, kept for inspection.
    third = await start_canary(kube, "nvcr.io/nvidia/tritonserver:24.12-py3")
    await kube.annotate(NS, "manual", {"serving.tritonop.dev/abort": third})
    status = await eventually(
        lambda: (s := kube.status(NS, "manual")).get("phase") == "RolledBack" and s, timeout=20, what="rolled back"
    )
    assert status["stableRevision"] == second and status["failedRevision"] == third
    assert status["traffic"] == [{"revision": second, "percent": 100}]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RolledBack" and "abort" in ready["message"]
    await eventually(lambda: kube.api.get(DEPLOYMENTS, NS, f"manual-{third}")["spec"]["replicas"] == 0, timeout=20)
    assert kube.api.get("autoscaling/v2/horizontalpodautoscalers", NS, f"manual-{third}") is None
    await wait_for_event(kube, NS, "manual", "Aborted", type="Warning")
