"""The built-in checks judged sequentially on direct counts (pure)."""

from __future__ import annotations

from tritonop.analysis.direct import judge_direct, prometheus_only, sequential_checks
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.api.models import Analysis


def tally(seconds: int, canary_rps: int, canary_fail: int, canary_ms: float, stable_ms: float = 20.0) -> DirectTally:
    """A canary and a stable sampled once a second with steady rates."""
    t = DirectTally("c", "s")
    c = s = PodCounters()
    for _ in range(seconds + 1):  # the first sample is the baseline
        t.observe({"c": c}, {"s": s})
        ok = canary_rps - canary_fail
        c = c.plus(PodCounters(success=ok, failure=canary_fail, count=ok, duration_us=ok * canary_ms * 1000))
        s = s.plus(PodCounters(success=54, count=54, duration_us=54 * stable_ms * 1000))
    return t


def spec(**fields: object) -> Analysis:
    return Analysis.model_validate(fields)


def test_checks_judged_directly_and_what_is_left_to_prometheus() -> None:
    full = spec(
        latency={"maxMs": 50},
        comparative={"maxSuccessRateDrop": 0.01, "maxLatencyIncreasePercent": 20},
        checks=[{"name": "gpu", "query": "up", "max": 1}],
    )
    assert sequential_checks(full) == ["successRate", "latency", "successRateVsStable", "latencyVsStable"]
    rest = prometheus_only(full)
    assert rest is not None and rest.success_rate is None and rest.latency is None and len(rest.checks) == 1
    assert prometheus_only(spec()) is None
    quantile = prometheus_only(spec(latency={"maxMs": 50, "quantile": 0.99}))
    assert (
        quantile is not None
        and quantile.latency is not None
        and sequential_checks(spec(latency={"maxMs": 50, "quantile": 0.99})) == ["successRate"]
    )


def test_failing_canary_fails_within_seconds_and_says_so() -> None:
    outcome = judge_direct(spec(), tally(3, 6, 2, 10))
    assert outcome.verdict == "Fail" and outcome.conclusive_failure
    (check,) = outcome.checks
    assert check.evidence is not None and check.evidence.canary_failures == 6 and check.evidence.canary_requests == 18
    assert check.value == round(12 / 18, 4)
    assert "conclusively more than the 1%" in check.message


def test_too_few_requests_is_inconclusive_not_a_pass() -> None:
    outcome = judge_direct(spec(), tally(2, 6, 0, 10))
    assert outcome.verdict == "NoData"
    assert outcome.checks[0].evidence is not None and outcome.checks[0].evidence.decision == "Inconclusive"
    assert "12 canary requests < minRequests 20" in outcome.checks[0].message


def test_slow_canary_fails_the_latency_sign_test_after_enough_seconds() -> None:
    analysis = spec(latency={"maxMs": 50}, comparative={"maxLatencyIncreasePercent": 50})
    early = judge_direct(analysis, tally(5, 6, 0, 80))
    assert early.verdict == "Pass" or early.verdict == "NoData"  # 5 seconds cannot be conclusive
    assert all(c.result != "Fail" for c in early.checks)
    late = judge_direct(analysis, tally(20, 6, 0, 80))
    failed = {c.name for c in late.checks if c.result == "Fail"}
    assert failed == {"latency", "latencyVsStable"}
    latency = next(c for c in late.checks if c.name == "latency")
    assert latency.value == 80.0 and latency.evidence is not None and latency.evidence.seconds == 20


def test_healthy_canary_passes_every_check() -> None:
    analysis = spec(latency={"maxMs": 50}, comparative={"maxSuccessRateDrop": 0.01, "maxLatencyIncreasePercent": 20})
    outcome = judge_direct(analysis, tally(30, 6, 0, 20))
    assert outcome.verdict == "Pass", [c.message for c in outcome.checks]
    vs_stable = next(c for c in outcome.checks if c.name == "successRateVsStable")
    assert vs_stable.evidence is not None and vs_stable.evidence.stable_requests == 30 * 54


def test_power_is_computed_only_when_asked() -> None:
    shown = judge_direct(spec(), tally(30, 6, 0, 10))
    quiet = judge_direct(spec(), tally(30, 6, 0, 10), power=False)
    assert shown.checks[0].evidence is not None and shown.checks[0].evidence.detectable is not None
    assert "with 80% power" in shown.checks[0].message
    assert quiet.checks[0].evidence is not None and quiet.checks[0].evidence.detectable is None
    assert quiet.verdict == shown.verdict == "Pass"
