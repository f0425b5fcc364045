"""End to end, locally: rollout.strategy InPlace on three real tritonserver pods under load.

One model repository holds versions 1 and 2 (healthy) and 3 (fails 30% of its requests).
Changing model.version from 1 to 2 switches the running pods (no new pods): one pod first,
judged on its own Triton metrics for version 2 against the others' version 1, then the
rest; the router's clients see no failed request. Changing it to 3 fails on the canary pod
and every pod is switched back to version 2. The kubelet is the stand-in of the local
stack (real tritonserver processes, no containers); everything else is real.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.local.harness import NAME, NAMESPACE, LocalStack
from e2e.scenario import MODEL_NAME
from tests.support.triton import write_model

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]

REPLICAS = 3
FOLDER = "versions"


def in_place(stack: LocalStack, version: str) -> dict[str, Any]:
    isvc = stack.inference_service("v1")
    spec = isvc["spec"]
    spec["model"]["storageUri"] = f"file://{stack.models_root / FOLDER}"
    spec["model"]["version"] = version
    spec["autoscaling"] = {"minReplicas": REPLICAS, "maxReplicas": REPLICAS}
    spec["rollout"]["strategy"] = "InPlace"
    spec["rollout"]["analysis"]["mode"] = "sequential"
    spec["rollout"]["analysis"]["successRate"] = {"min": 0.99}
    return isvc


def pods_on(stack: LocalStack, version: str) -> dict[str, Any] | None:
    """The status once no switch runs, every pod holds ``version`` only and all are ready (a
    pod whose Triton wedged on an unload is replaced first: docs/rollout.md)."""
    status = stack.status()
    switch = status.get("inPlace") or {}
    pods = switch.get("pods") or []
    settled = switch.get("version") == version and not switch.get("candidate")
    if (
        settled
        and status.get("readyReplicas") == REPLICAS
        and len(pods) == REPLICAS
        and all(p["versions"] == [version] for p in pods)
    ):
        return status
    return None


def sent(stack: LocalStack, revision: str) -> tuple[int, int, int]:
    traffic = stack.router.traffic(NAMESPACE, NAME, revision)
    return traffic.successes, traffic.failures, traffic.unavailable


async def test_version_switches_in_place_without_a_failed_request_and_a_failing_one_is_switched_back(
    stack: LocalStack,
) -> None:
    write_model(
        stack.models_root / FOLDER,
        MODEL_NAME,
        versions=(1, 2, 3),
        per_version={1: {"scale": 2.0}, 2: {"scale": 3.0}, 3: {"scale": 3.0, "failure_rate": 0.3}},
        # The repository's own policy on the stable version (docs/rollout.md, I8): a pod that
        # starts later (one replacing a wedged pod) serves it until it is brought to its target.
        version_policy=(1,),
    )
    await stack.apply(in_place(stack, "1"))
    # 240 s: room for a wedged pod to be replaced (60 s, then a new pod) on a loaded machine.
    first = await stack.wait_until(lambda: pods_on(stack, "1"), 240, f"{REPLICAS} pods on version 1")
    revision = first["stableRevision"]
    pods = sorted(p["pod"] for p in first["inPlace"]["pods"])
    ok_before, failed_before, unavailable_before = sent(stack, revision)

    await stack.apply(in_place(stack, "2"))
    promoted = await stack.wait_until(lambda: pods_on(stack, "2"), 120, "every pod on version 2")
    ok_after, failed_after, unavailable = sent(stack, revision)
    failures = list(stack.router.traffic(NAMESPACE, NAME, revision).errors)
    assert failed_after == failed_before, (failures, stack.operator_log())  # not one client request failed
    assert ok_after - ok_before >= 50 and unavailable == unavailable_before
    # The same pods of the same revision: nothing was created, nothing restarted.
    assert promoted["stableRevision"] == revision and promoted.get("canaryRevision") is None
    assert sorted(p["pod"] for p in promoted["inPlace"]["pods"]) == pods
    reasons = stack.event_reasons()
    assert {"CanaryStarted", "CanaryStep", "Promoted"} <= set(reasons), reasons
    step = next(e for e in stack.events() if e.get("reason") == "CanaryStep")
    assert "weight 33% for 2" in step["message"], step["message"]

    await stack.apply(in_place(stack, "3"))
    rolled_back = await stack.wait_until(
        lambda: (s := pods_on(stack, "2")) and s["inPlace"].get("failedVersion") == "3" and s, 240, "switched back"
    )
    assert rolled_back["phase"] == "RolledBack" and rolled_back["stableRevision"] == revision
    assert "rolled back version 3: successRate" in rolled_back["message"], rolled_back["message"]
    events = [e for e in stack.events() if e.get("reason") == "RolledBack"]
    assert events and "version 3" in events[-1]["message"]
    # Only the canary pod ever served version 3: at most its third of the traffic failed, 30% of that.
    ok_end, failed_end, _ = sent(stack, revision)
    assert 0 < failed_end - failed_after <= 0.3 * (ok_end + failed_end - ok_after - failed_after)
