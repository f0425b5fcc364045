"""The `service` traffic provider through the real operator: once a real Triton answers the
readiness gate, the canary is sized to its weight by replicas and the entry Service selects
both revisions.

Real: the operator process and a tritonserver (nvidia-pytriton) serving the canary's model,
which the operator reaches through --triton-url-template; a real API server, controllers
and scheduler (tests/support/real_cluster.py). Emulated: the kubelet (pods run nothing). Prometheus is absent on purpose: the
canary then holds its first step (analysis Error, the no-data policy), which is what is
inspected here.
"""

from __future__ import annotations

import copy

import pytest

from tests.support.operator_process import eventually
from tests.support.real_cluster import RealCluster
from tests.support.triton import TritonServer

pytestmark = pytest.mark.triton
TRITON_MODEL = "split"

NS = "ml"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "split", "namespace": NS},
    "spec": {
        "model": {"name": "split", "storageUri": "s3://models/split"},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 3, "maxReplicas": 6},
        "rollout": {"steps": [25, 50], "interval": "30s"},
        "traffic": {"provider": "service"},
    },
}


async def test_service_provider_sizes_the_canary_by_replicas(
    kube: RealCluster, triton: TritonServer, run_operator
) -> None:
    run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    stable = await eventually(
        lambda: kube.status(NS, "split").get("phase") == "Ready" and kube.status(NS, "split")["stableRevision"],
        timeout=40,
    )
    entry = kube.api.get("v1/services", NS, "split")
    assert entry["spec"]["selector"]["serving.tritonop.dev/revision"] == stable

    changed = copy.deepcopy(ISVC)
    changed["spec"]["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"
    await kube.apply_isvc(changed)
    status = await eventually(
        lambda: (s := kube.status(NS, "split")).get("canary", {}).get("weight") == 25 and s, timeout=40, what="25%"
    )
    canary = status["canaryRevision"]
    # 25% of traffic by replica ratio next to the stable's replicas: round(r * 25 / 75), at least 1.
    stable_replicas = kube.api.get("apps/v1/deployments", NS, f"split-{stable}")["status"]["replicas"]
    expected = max(1, round(stable_replicas * 25 / 75))
    deployment = await eventually(
        lambda: (
            (d := kube.api.get("apps/v1/deployments", NS, f"split-{canary}"))["spec"].get("replicas") == expected and d
        ),
        timeout=20,
        what=f"canary pinned at {expected} replicas",
    )
    assert deployment["spec"]["replicas"] == expected
    # Pinned replicas: no autoscaler may fight them. (Status is written before the children
    # converge to it, so both are waited for.)
    await eventually(
        lambda: kube.api.get("autoscaling/v2/horizontalpodautoscalers", NS, f"split-{canary}") is None,
        timeout=20,
        what="canary HPA removed",
    )
    # The entry Service now selects every revision's pods.
    selector = await eventually(
        lambda: (
            "serving.tritonop.dev/revision" not in (s := kube.api.get("v1/services", NS, "split")["spec"]["selector"])
            and s
        ),
        timeout=20,
        what="entry Service spans both revisions",
    )
    assert selector["serving.tritonop.dev/inferenceservice"] == "split"
    assert status["traffic"] == [{"revision": stable, "percent": 75}, {"revision": canary, "percent": 25}]
