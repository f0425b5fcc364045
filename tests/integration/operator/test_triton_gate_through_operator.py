"""The Triton gate through the real operator: acceptance inference decides whether a canary
gets traffic, and the model facts Triton reports land in status.

Real: the operator process and a tritonserver (nvidia-pytriton) serving the model (OUTPUT0 =
2 x INPUT0), reached through --triton-url-template; a real API server, controllers and
scheduler (tests/support/real_cluster.py). Emulated: the kubelet (pods run nothing). No Prometheus: a canary past its gate holds its
first step (analysis Error, the no-data policy).
"""

from __future__ import annotations

import copy

import pytest

from tests.support.operator_process import eventually, wait_for_event
from tests.support.real_cluster import RealCluster
from tests.support.triton import TritonServer

pytestmark = pytest.mark.triton
TRITON_MODEL = "doubler"

NS = "ml"


def isvc(expected: list[float]) -> dict:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "doubler", "namespace": NS},
        "spec": {
            "model": {"storageUri": "s3://models/doubler"},
            "triton": {"gpus": 0},
            "rollout": {
                "steps": [30],
                "interval": "1m",
                "readinessTimeout": "1m",
                "acceptance": {
                    "cases": [
                        {
                            "name": "doubles",
                            "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]}],
                            "outputs": [{"name": "OUTPUT0", "data": expected, "tolerance": 0.001}],
                        }
                    ]
                },
            },
        },
    }


async def new_canary(kube: RealCluster, spec: dict, image: str) -> str:
    changed = copy.deepcopy(spec)
    changed["triton"]["image"] = image
    await kube.replace_spec(NS, "doubler", changed)
    return await eventually(lambda: kube.status(NS, "doubler").get("canaryRevision"), timeout=30, what="canary")


async def test_acceptance_gates_traffic_and_model_facts_reach_status(
    kube: RealCluster, triton: TritonServer, run_operator
) -> None:
    run_operator()
    good = isvc([2, 4, 6])
    await kube.apply_isvc(copy.deepcopy(good))
    status = await eventually(
        lambda: (s := kube.status(NS, "doubler")).get("phase") == "Ready" and s.get("model") and s,
        timeout=40,
        what="Ready with model facts",
    )
    facts = status["model"]
    assert facts["revision"] == status["stableRevision"] and facts["name"] == "doubler"
    assert facts["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1]}]
    assert facts["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1]}]
    assert facts["versions"] == ["1"]

    # Expected outputs match: the canary passes its gate and gets its first step.
    canary = await new_canary(kube, good["spec"], "nvcr.io/nvidia/tritonserver:24.11-py3")
    await eventually(lambda: kube.status(NS, "doubler")["canary"]["weight"] == 30, timeout=30, what="first step")
    assert kube.status(NS, "doubler")["canaryRevision"] == canary

    # Expected outputs differ: the canary never gets traffic and the rollout fails, saying why.
    wrong = isvc([2, 4, 7])
    wrong["spec"]["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.12-py3"
    await kube.replace_spec(NS, "doubler", wrong["spec"])
    status = await eventually(
        lambda: (s := kube.status(NS, "doubler")).get("phase") == "Failed" and s, timeout=30, what="Failed"
    )
    assert status["traffic"][0]["percent"] == 100 and len(status["traffic"]) == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "RolloutFailed" and "AcceptanceOutputMismatch" in ready["message"]
    assert "OUTPUT0" in ready["message"]
    # kopf.event() only queues the Event: it may land after the status write, so wait for it.
    event = await wait_for_event(kube, NS, "doubler", "RolloutFailed")
    assert "failed acceptance" in event["message"]
