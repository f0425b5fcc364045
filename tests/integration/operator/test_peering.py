"""HA: two operators with kopf peering on a real API server; only the active one acts.

The object loops are the operator's own (controller/loops.py), not kopf daemons, so kopf's
pause (a peer with a higher priority is active) would not stop them by itself: handlers.py
follows kopf's pause toggles. Here operator A (priority 10) serves an InferenceService,
operator B (priority 20) starts and A pauses: A manages nothing and leaves a child deleted
behind the operators' backs to B (A's own watch caches still see it go). B stopping cleanly
hands the object back to A.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.operator_process import (
    OperatorProcess,
    eventually,
    operator_flags,
    operator_metric,
    passes,
)
from tests.support.real_cluster import RealCluster, real_cluster

NS = "ml"
NAME = "ha"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": NAME, "namespace": NS},
    "spec": {
        "model": {"storageUri": "s3://models/ha"},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
        "traffic": {"provider": "service"},
    },
}
PEERING = ["--peering", "tritonop"]


@pytest.fixture
async def kube() -> AsyncIterator[RealCluster]:
    async with real_cluster(provider_crds=True) as cluster:  # with kopf's peering CRDs
        yield cluster


def managed(op: OperatorProcess) -> float:
    return operator_metric(op, "tritonop_managed_inferenceservices")


def entry_service(kube: RealCluster) -> dict | None:
    return kube.api.get("v1/services", NS, NAME)


async def test_a_paused_operator_leaves_the_object_to_the_active_one(kube: RealCluster, tmp_path: Path) -> None:
    await kube.request(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "tritonop"}},
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = OperatorProcess(kube.kubeconfig, *operator_flags(tmp_path / "a"), *PEERING, "--priority", "10",
                        log=tmp_path / "a.log")  # fmt: skip
    b = OperatorProcess(kube.kubeconfig, *operator_flags(tmp_path / "b"), *PEERING, "--priority", "20",
                        log=tmp_path / "b.log")  # fmt: skip
    try:
        a.start()
        await kube.apply_isvc(copy.deepcopy(ISVC))
        await eventually(lambda: kube.status(NS, NAME).get("observedGeneration") == 1, timeout=60, what="A served it")
        await eventually(lambda: entry_service(kube), timeout=30, what="the entry Service")
        assert managed(a) == 1

        b.start()
        await eventually(lambda: managed(a) == 0, timeout=60, what="A paused (its loops stopped)")
        await eventually(lambda: managed(b) == 1 and passes(b, NS, NAME) > 0, timeout=60, what="B serving")
        assert "paused by kopf peering" in a.output

        # A child deleted behind the operators' backs: B's watch cache and A's both see it go;
        # only B puts it back.
        before_a, before_b = passes(a, NS, NAME), passes(b, NS, NAME)
        uid = entry_service(kube)["metadata"]["uid"]
        await kube.request("DELETE", f"/api/v1/namespaces/{NS}/services/{NAME}")
        await eventually(
            lambda: (s := entry_service(kube)) is not None and s["metadata"]["uid"] != uid,
            timeout=30,
            what="the entry Service put back",
        )
        await eventually(lambda: passes(b, NS, NAME) > before_b, timeout=30, what="B's pass counted")
        assert passes(a, NS, NAME) == before_a, "a paused operator ran a pass"

        # B stops cleanly (kopf removes its peering entry): A resumes and takes the object back.
        await b.astop()
        await eventually(lambda: managed(a) == 1, timeout=60, what="A resumed")
        await eventually(lambda: passes(a, NS, NAME) > before_a, timeout=60, what="A's first pass after resuming")
    finally:
        a.stop()
        b.stop()
        for op in (a, b):
            print(f"--- operator log {op.log_path} (tail) ---\n" + op.output[-3000:])
