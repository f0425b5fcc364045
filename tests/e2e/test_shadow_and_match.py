"""End to end, locally: a canary with rollout.shadow and traffic.match through the real operator,
its HTTPRoute and the router stand-in, on real Triton processes judged by a real Prometheus.

The shadow phase sends the canary copies of half the requests and no client request; from
step 1 on, the requests carrying the header reach the canary whatever its weight.
"""

from __future__ import annotations

import pytest

from e2e.local.harness import NAME, NAMESPACE, LocalStack
from e2e.local.stages import deploy

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]


async def test_a_shadowed_canary_gets_copies_then_the_matched_requests(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    isvc = stack.inference_service("v2")
    isvc["spec"]["rollout"]["shadow"] = {"percent": 50, "duration": "6s"}
    isvc["spec"]["traffic"]["match"] = {"header": {"name": "x-canary", "value": "1"}}
    stack.router.headers = [{}, {}, {}, {"x-canary": "1"}]  # one request in four carries the header
    await stack.apply(isvc)

    status = await stack.wait_until(
        lambda: (s := stack.status()).get("canaryRevision") and (s.get("canary") or {}).get("shadowStartedAt") and s,
        60,
        "the shadow phase",
    )
    canary = status["canaryRevision"]
    # Copies flow while no client request has reached the canary: mirrored, not weighted.
    await stack.wait_until(
        lambda: (t := stack.router.traffic(NAMESPACE, NAME, canary)).mirrored >= 10 and t.requests == 0,
        30,
        "copies of the requests at the shadowed canary, and nothing else",
    )

    # From step 1 on, the header's requests go to the canary; then it is promoted.
    await stack.wait_until(
        lambda: stack.router.traffic(NAMESPACE, NAME, canary).matched >= 10, 60, "matched requests at the canary"
    )
    final = await stack.wait_until(
        lambda: (s := stack.status()).get("stableRevision") == canary and s.get("phase") == "Ready" and s,
        120,
        "the canary promoted",
    )
    assert final["traffic"] == [{"revision": canary, "percent": 100}]
    stable, shadowed = stack.router.traffic(NAMESPACE, NAME, v1), stack.router.traffic(NAMESPACE, NAME, canary)
    assert stable.matched == 0  # the header rule only ever pointed at the canary
    assert stable.mirrored == 0 and shadowed.mirror_failures == 0
    assert shadowed.failures == stable.failures == 0


async def test_a_failing_shadow_rolls_back_before_any_client_saw_the_canary(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    before = stack.router.traffic(NAMESPACE, NAME, v1)
    stable_failures = before.failures
    isvc = stack.inference_service("v3")  # fails 30% of its requests
    isvc["spec"]["rollout"]["shadow"] = {"percent": 100, "duration": "5m"}
    isvc["spec"]["rollout"]["analysis"]["mode"] = "sequential"
    isvc["spec"]["rollout"]["analysis"]["successRate"] = {"min": 0.99}
    await stack.apply(isvc)

    rolled_back = await stack.wait_until(
        lambda: (s := stack.status()).get("phase") == "RolledBack" and s, 90, "the shadow's rollback"
    )
    failed = rolled_back["failedRevision"]
    assert rolled_back["stableRevision"] == v1 and rolled_back["traffic"] == [{"revision": v1, "percent": 100}]
    assert "rolled back revision" in rolled_back["message"] and "successRate" in rolled_back["message"]
    reasons = stack.event_reasons()
    assert "ShadowStarted" in reasons and "CanaryStep" not in reasons, reasons
    shadowed = stack.router.traffic(NAMESPACE, NAME, failed)
    # The canary failed on copies only: no client request reached it, none of theirs failed.
    assert shadowed.mirror_failures > 0 and shadowed.requests == 0
    assert stack.router.traffic(NAMESPACE, NAME, v1).failures == stable_failures
