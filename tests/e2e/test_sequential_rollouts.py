"""End to end, locally, with sequential analysis (issue 14): the real operator reads each Triton
pod's own metrics endpoint every tick and rolls a 30%-failing canary back before its first
interval ends; a healthy canary still dwells each interval and is promoted.

Same stack and profile as test_rollouts.py (steps [20, 50], interval 6s, ~30 requests/s, so
~6 canary requests/s at 20%), with rollout.analysis.mode sequential and successRate.min 0.99.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.local.harness import LocalStack
from e2e.local.stages import deploy, roll_out

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]

# The API's default bound (the local profile's 0.95 is looser: 30% failures then take ~30
# requests, about the whole 6 s interval, to be conclusive).
SEQUENTIAL = {"analysis": {"mode": "sequential", "successRate": {"min": 0.99}}}
INTERVAL_S = 6.0  # the local profile's rollout.interval


async def test_failing_canary_rolled_back_within_its_first_interval_and_healthy_one_promoted(
    stack: LocalStack,
) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]

    failing = await roll_out(stack, "v3", spec_changes=SEQUENTIAL)
    assert failing.outcome == "RolledBack"
    assert failing.first_step_s is not None and failing.decided_s is not None
    after_first_traffic = failing.decided_s - failing.first_step_s
    assert after_first_traffic < INTERVAL_S, after_first_traffic  # before the first analysis was due
    assert failing.weights == [20]
    assert "AnalysisFailed" not in failing.reasons  # no failureThreshold to count up to
    message = failing.event("RolledBack")["message"]
    assert message.startswith(f"rolled back revision {failing.canary}: successRate: "), message
    assert "canary requests failed" in message and "conclusively more than the 1%" in message, message
    assert failing.status["stableRevision"] == v1 and failing.status["traffic"] == [{"revision": v1, "percent": 100}]
    # The operator's counts are Triton's: they are at most what the router sent the canary.
    failed, seen = (int(n) for n in message.split(": successRate: ")[1].split(" canary requests")[0].split(" of "))
    assert 0 < seen <= failing.canary_traffic.requests and 0 < failed <= failing.canary_traffic.failures

    analyses: list[dict[str, Any]] = []

    async def watch() -> None:
        while True:
            checks = (stack.status().get("canary") or {}).get("lastAnalysis") or []
            if checks and checks not in analyses:
                analyses.append(checks)
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    try:
        healthy = await roll_out(stack, "v2", spec_changes=SEQUENTIAL)
    finally:
        watcher.cancel()
    assert healthy.outcome == "Promoted" and healthy.weights == [20, 50]
    assert healthy.status["stableRevision"] == healthy.canary
    assert healthy.first_step_s is not None and healthy.decided_s is not None
    assert healthy.decided_s - healthy.first_step_s >= 2 * INTERVAL_S - 1  # each step dwells its interval
    # The step's verdict came from the pods directly, with its evidence.
    direct = [c for checks in analyses for c in checks if c.get("source") == "direct"]
    assert direct, analyses
    success = next(c for c in direct if c["name"] == "successRate")
    assert success["result"] == "Pass" and success["evidence"]["decision"] == "Pass"
    assert success["evidence"]["canaryRequests"] >= 10 and success["evidence"]["canaryFailures"] == 0
    assert success["evidence"]["threshold"] == 2000  # alpha 0.001 over two checks (successRate, latency)
