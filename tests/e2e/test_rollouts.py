"""End to end, locally: the real operator rolls out model versions served by real Triton
processes, judged by a real Prometheus, with traffic split by the HTTPRoute's weights.

Every test starts from v1 Ready and rolls out one variant (e2e/scenario.py) with the
local profile: steps [20, 50], interval 6s, failureThreshold 2.
"""

from __future__ import annotations

import asyncio

import pytest

from e2e.local.harness import NAME, NAMESPACE, LocalStack
from e2e.local.stages import Traffic, deploy, roll_out, wait_for_weight
from e2e.scenario import VARIANTS

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]


def canary_share(stack: LocalStack, canary: str, stable: str, before: dict[str, int]) -> tuple[float, int]:
    """The canary's share of the requests sent since ``before`` (revision -> requests)."""
    canary_sent = stack.router.traffic(NAMESPACE, NAME, canary).requests - before[canary]
    stable_sent = stack.router.traffic(NAMESPACE, NAME, stable).requests - before[stable]
    total = canary_sent + stable_sent
    return (canary_sent / total if total else 0.0), total


async def test_a_healthy_canary_is_promoted_through_every_step(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    rollout = asyncio.create_task(roll_out(stack, "v2"))

    # The router honours the route: at 20% about a fifth of the requests reach the canary.
    status = await wait_for_weight(stack, 20)
    canary = status["canaryRevision"]
    # Status is stored before the route follows it (docs/rollout.md, "Safety"): wait for the route.
    expected = {f"{NAME}-{v1}": 80, f"{NAME}-{canary}": 20}

    def route_weights() -> dict[str, int] | None:
        route = stack.cluster.api.get("gateway.networking.k8s.io/v1/httproutes", NAMESPACE, NAME)
        weights = {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}
        return weights if weights == expected else None

    await stack.wait_until(route_weights, 15, "the route at 80/20")
    before = {rev: stack.router.traffic(NAMESPACE, NAME, rev).requests for rev in (v1, canary)}
    await stack.wait_until(lambda: canary_share(stack, canary, v1, before)[1] >= 60, 30, "60 requests at 80/20")
    share, total = canary_share(stack, canary, v1, before)
    assert total >= 40 and 0.12 <= share <= 0.28, (share, total)

    record = await rollout
    assert record.outcome == "Promoted"
    assert record.canary == canary and record.weights == [20, 50]
    assert record.reasons.count("CanaryStarted") == 1 and record.reasons.count("CanaryStep") == 2
    assert "AnalysisFailed" not in record.reasons
    final = record.status
    assert final["phase"] == "Ready" and final["stableRevision"] == canary
    assert final["traffic"] == [{"revision": canary, "percent": 100}]
    assert record.canary_traffic.requests > 0 and record.canary_traffic.failures == 0
    # Promotion re-rolls no pods: the canary's pod serves on, the old revision goes once the
    # promotion is stored.
    await stack.wait_until(lambda: stack.deployment(f"{NAME}-{v1}") is None, 15, "v1 removed")
    await stack.wait_until(lambda: not stack.kubelet.pods(NAMESPACE, v1), 15, "v1 pods stopped")
    assert len(stack.kubelet.pods(NAMESPACE, canary)) == 1


async def test_a_canary_failing_requests_is_rolled_back(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    record = await roll_out(stack, "v3")

    assert record.outcome == "RolledBack"
    assert record.weights == [20]  # two failed checks at the first step: never more traffic
    assert record.reasons.count("AnalysisFailed") == 1
    message = record.event("RolledBack")["message"]
    assert message.startswith(f"rolled back revision {record.canary}: successRate 0.")
    assert "< 0.95 (2 failed checks)" in message
    final = record.status
    assert final["phase"] == "RolledBack" and final["message"].startswith(message)
    assert final["stableRevision"] == v1 and final["failedRevision"] == record.canary
    assert final["traffic"] == [{"revision": v1, "percent": 100}]
    # What the router saw matches the model: about 30% of the canary's requests failed.
    canary = record.canary_traffic
    assert canary.requests >= 20 and 0.15 <= canary.failures / canary.requests <= 0.45, canary
    assert record.stable_traffic.failures == 0 and record.stable_traffic.successes > 0
    # The canary is kept at 0 replicas for inspection; its pod is stopped.
    await stack.wait_until(
        lambda: stack.deployment(f"{NAME}-{record.canary}")["spec"]["replicas"] == 0, 15, "canary scaled to 0"
    )
    await stack.wait_until(lambda: not stack.kubelet.pods(NAMESPACE, record.canary), 15, "canary pods stopped")


async def test_a_slow_canary_is_rolled_back_on_latency(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    record = await roll_out(stack, "slow")

    assert record.outcome == "RolledBack"
    assert record.weights == [20]
    failed = record.event("AnalysisFailed")["message"]
    assert "latency" in failed and "successRate" not in failed, failed
    message = record.event("RolledBack")["message"]
    latency = float(message.split("latency ")[1].split(" > ")[0])
    assert latency > VARIANTS["slow"].delay_ms * 0.9, message  # Triton's own duration, queueing included
    assert message.endswith(" > 100ms (2 failed checks)"), message
    assert record.status["stableRevision"] == v1 and record.status["phase"] == "RolledBack"
    assert record.canary_traffic.failures == 0  # slow, not failing


async def test_a_canary_that_never_gets_ready_fails_and_stable_keeps_all_traffic(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    waiting: set[str] = set()

    async def watch_gate() -> None:
        while True:
            canary = stack.status().get("canary") or {}
            if canary.get("waitingFor"):
                waiting.add(canary["waitingFor"])
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_gate())
    try:
        record = await roll_out(stack, "broken", spec_changes={"readinessTimeout": "12s"})
    finally:
        watcher.cancel()

    assert record.outcome == "RolloutFailed"
    assert record.weights == []  # the canary never got traffic
    message = record.event("RolloutFailed")["message"]
    # The gate asked the not-ready pod itself: Triton's own load error, not just "unavailable".
    assert message.startswith(f"revision {record.canary} not ready after 12s: ModelLoadFailed: pod "), message
    assert "tritonop test model refused to load" in message, message
    # Failed when the deadline passed, not before: 12 s from the canary's start, seen through
    # polls of 0.2 s at both ends (so a little under 12 is possible), plus up to a tick.
    assert 11.5 <= record.canary_to_decision_s <= 20, record.canary_to_decision_s
    assert any(w.startswith("ModelLoadFailed") for w in waiting), waiting
    final = record.status
    assert final["phase"] == "Failed" and final["failedRevision"] == record.canary
    assert final["traffic"] == [{"revision": v1, "percent": 100}]
    assert record.canary_traffic == Traffic(0, 0, 0)
    assert record.stable_traffic.failures == 0 and record.stable_traffic.unavailable == 0
    # The pod really runs and really fails to load: Triton is live, the model is not ready.
    log = stack.workdir / "pods"
    assert any("tritonop test model refused to load" in p.read_text() for p in log.glob(f"*{record.canary}*.log"))


async def test_an_operator_restart_mid_canary_resumes_the_same_canary(stack: LocalStack) -> None:
    v1 = (await deploy(stack, "v1"))["stableRevision"]
    await stack.apply(stack.inference_service("v2"))
    at_step = await wait_for_weight(stack, 20)
    canary = at_step["canaryRevision"]
    canary_pid = stack.kubelet.pods(NAMESPACE, canary)[0].process.pid
    # kopf posts Events from a queue after the status write: a SIGKILL right after the step's
    # status would lose its Event, which no operator posts again (Events are best effort).
    await stack.wait_until(lambda: "CanaryStep" in stack.event_reasons(), 15, "the first step's Event")

    stack.kill_operator()
    await asyncio.sleep(4)  # the step's interval runs out while nobody watches
    frozen = stack.status()
    assert frozen["canaryRevision"] == canary and frozen["canary"]["weight"] == 20
    assert frozen["canary"]["startedAt"] == at_step["canary"]["startedAt"]

    stack.start_operator()
    final = await stack.wait_until(
        lambda: (s := stack.status()).get("stableRevision") == canary and s.get("phase") == "Ready" and s,
        60,
        "the resumed canary promoted",
    )
    # Events follow the stored status: wait for the promotion's.
    reasons = await stack.wait_until(
        lambda: (r := stack.event_reasons()).count("Promoted") and r, 15, "the Promoted Event"
    )
    assert reasons.count("CanaryStarted") == 1  # resumed, not restarted
    assert reasons.count("CanaryStep") == 2 and reasons.count("Promoted") == 1
    assert final["traffic"] == [{"revision": canary, "percent": 100}]
    await stack.wait_until(lambda: stack.deployment(f"{NAME}-{v1}") is None, 15, "v1 removed")
    # Neither the restart nor the promotion touched the canary's pod.
    assert [p.process.pid for p in stack.kubelet.pods(NAMESPACE, canary)] == [canary_pid]


async def test_prometheus_down_holds_the_canary_then_fails_closed(stack: LocalStack) -> None:
    await deploy(stack, "v1")
    # A healthy canary: only the missing data can stop it.
    rollout = asyncio.create_task(roll_out(stack, "v2", spec_changes={"analysis": {"noDataTimeout": "10s"}}))
    await wait_for_weight(stack, 20)
    await asyncio.to_thread(stack.prometheus.stop)

    # Held, not judged: the first analysis without Prometheus records an Error and starts the clock.
    held = await stack.wait_until(
        lambda: (s := stack.status()).get("canary", {}).get("noDataSince") and s, 30, "noDataSince"
    )
    checks = held["canary"]["lastAnalysis"]
    assert checks and all(c["result"] == "Error" and "query failed" in c["message"] for c in checks), checks
    assert held["canary"]["weight"] == 20 and held["canary"]["failedChecks"] == 0

    record = await rollout
    assert record.outcome == "RolledBack"
    assert record.weights == [20]  # never promoted, never advanced without data
    assert "Promoted" not in record.reasons and "AnalysisNoData" in record.reasons
    message = record.event("RolledBack")["message"]
    assert "no data for" in message and "(2 failed checks)" in message, message
    # Fail closed only after noDataTimeout: the first no-data analysis came one interval
    # (6 s) after the step began, then 10 s of tolerance, then two counted failures.
    assert record.decided_s - record.canary_seen_s >= 6 + 10, record
