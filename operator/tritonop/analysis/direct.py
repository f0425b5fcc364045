"""The built-in checks judged sequentially on direct counts (analysis.sequential). Pure.

``judge_direct`` turns what the canary and the stable served since sampling began (a
``DirectTally``) into one ``CheckResult`` per built-in check, each with its evidence, and a
verdict: ``Fail`` as soon as any check is conclusively worse than its bound (the rollout may
roll back at once: the false-rollback rate of all checks together is at most ``alpha``),
``Pass`` once every check has its minimum evidence and none failed, else ``NoData``
(inconclusive: the canary is held, as with too few requests in interval mode).

The GPU memory checks are thresholds on a level, not tests: each sample compares the canary's
worst pod (its latest ``nv_gpu_memory_used_bytes``, summed over its GPUs) with ``maxBytes``,
or with the stable's worst pod plus ``maxIncreasePercent``. ``GPU_MEMORY_BREACHES``
consecutive samples over the bound fail (a rollback at once, like a conclusive test; they are
not part of ``alpha``); a breach at fewer holds the canary (``NoData``), so one reading never
rolls back and a canary over its bound is never promoted.

Checks that need Prometheus (custom PromQL checks, latency quantiles) are not judged here;
``prometheus_only`` is the part of the spec left to Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import takewhile

from tritonop.analysis.judge import (
    GIB,
    Bound,
    combine,
    compare_gpu_memory,
    gib,
    increase_percent,
    judge_gpu_memory,
    number,
)
from tritonop.analysis.result import QueryResult
from tritonop.analysis.sequential import (
    Counts,
    SequentialResult,
    check_rate,
    check_rate_vs_stable,
    seconds_above,
    seconds_above_stable,
    split_alpha,
)
from tritonop.analysis.triton_metrics import GPU_MEMORY_USED, DirectTally
from tritonop.api.models import Analysis, CheckEvidence, CheckResult, Verdict

SUCCESS_RATE = "successRate"
LATENCY = "latency"
SUCCESS_RATE_VS_STABLE = "successRateVsStable"
LATENCY_VS_STABLE = "latencyVsStable"
GPU_MEMORY = "gpuMemory"
GPU_MEMORY_VS_STABLE = "gpuMemoryVsStable"
LEVEL_CHECKS = (GPU_MEMORY, GPU_MEMORY_VS_STABLE)
GPU_MEMORY_BREACHES = 2  # consecutive samples (about a second apart) over the bound that fail
SIGN_P0 = 0.5  # a second's mean above the bound is a coin flip at worst for a canary within it


@dataclass(frozen=True)
class DirectOutcome:
    verdict: Verdict
    checks: list[CheckResult]

    @property
    def conclusive_failure(self) -> bool:
        return self.verdict == "Fail"


def sequential_checks(spec: Analysis) -> list[str]:
    """The built-in checks judged on direct counts, in status order."""
    names = []
    if spec.success_rate is not None:
        names.append(SUCCESS_RATE)
    if spec.latency is not None and spec.latency.quantile is None:
        names.append(LATENCY)
    comparative = spec.comparative
    if comparative is not None and comparative.max_success_rate_drop is not None:
        names.append(SUCCESS_RATE_VS_STABLE)
    if comparative is not None and comparative.max_latency_increase_percent is not None:
        names.append(LATENCY_VS_STABLE)
    if spec.gpu_memory is not None and spec.gpu_memory.max_bytes is not None:
        names.append(GPU_MEMORY)
    if spec.gpu_memory is not None and spec.gpu_memory.max_increase_percent is not None:
        names.append(GPU_MEMORY_VS_STABLE)
    return names


def prometheus_only(spec: Analysis) -> Analysis | None:
    """The part of the spec direct counts cannot judge (custom checks, a latency quantile), or None."""
    quantile = spec.latency if spec.latency is not None and spec.latency.quantile is not None else None
    if not spec.checks and quantile is None:
        return None
    judged_directly = {"success_rate": None, "latency": quantile, "comparative": None, "gpu_memory": None}
    return spec.model_copy(update=judged_directly)


def judge_direct(spec: Analysis, tally: DirectTally, *, power: bool = True) -> DirectOutcome:
    """Every sequential check on the tally. ``power=False`` skips the detectable rates (costly
    with many requests), for ticks whose result is not shown unless it fails."""
    names = sequential_checks(spec)
    alpha = split_alpha(spec.alpha, len([n for n in names if n not in LEVEL_CHECKS]))
    canary = Counts(tally.canary.requests, tally.canary.failures)
    stable = Counts(tally.stable.requests, tally.stable.failures)
    enough = canary.trials >= spec.min_requests
    results: list[CheckResult] = []
    for name in names:
        if name == SUCCESS_RATE:
            assert spec.success_rate is not None
            results.append(_success_rate(spec.success_rate.min, canary, alpha, spec.min_requests, power))
        elif name == SUCCESS_RATE_VS_STABLE:
            assert spec.comparative is not None and spec.comparative.max_success_rate_drop is not None
            drop = spec.comparative.max_success_rate_drop
            results.append(_success_rate_vs_stable(drop, canary, stable, alpha, spec.min_requests, power))
        elif name == LATENCY:
            assert spec.latency is not None
            results.append(_latency(spec.latency.max_ms, tally, canary, alpha, enough, spec.min_requests))
        elif name == GPU_MEMORY:
            assert spec.gpu_memory is not None and spec.gpu_memory.max_bytes_value is not None
            results.append(_gpu_memory(spec.gpu_memory.max_bytes_value, tally))
        elif name == GPU_MEMORY_VS_STABLE:
            assert spec.gpu_memory is not None and spec.gpu_memory.max_increase_percent is not None
            results.append(_gpu_memory_vs_stable(spec.gpu_memory.max_increase_percent, tally))
        else:
            assert spec.comparative is not None and spec.comparative.max_latency_increase_percent is not None
            pct = spec.comparative.max_latency_increase_percent
            results.append(_latency_vs_stable(pct, tally, canary, stable, alpha, enough, spec.min_requests))
    return DirectOutcome(combine(results), results)


def _result(
    name: str,
    bound: Bound,
    value: float | None,
    test: SequentialResult,
    message: str,
    counts: dict[str, int],
) -> CheckResult:
    verdict: Verdict = "NoData" if test.decision == "Inconclusive" else test.decision
    evidence = CheckEvidence.model_validate(
        {
            "decision": test.decision,
            "statistic": float(format(test.evidence, ".4g")),
            "threshold": float(format(test.threshold, ".6g")),
            "detectable": None if test.detectable is None else round(test.detectable, 4),
            **counts,
        }
    )
    return CheckResult(
        name=name, result=verdict, value=value, bound=bound.text(), message=message, source="direct", evidence=evidence
    )


def _strength(test: SequentialResult) -> str:
    compare = ">=" if test.decision == "Fail" else "<"
    return f"evidence {number(float(format(test.evidence, '.3g')))} {compare} {number(float(format(test.threshold, '.6g')))}"


def _power(test: SequentialResult, what: str) -> str:
    if test.detectable is None:
        return ""
    return f"; detects {what} of {_percent(test.detectable)} with 80% power"


def _percent(rate: float) -> str:
    return f"{number(round(rate * 100, 2))}%"


def _too_few(canary: Counts, min_requests: int) -> str:
    return f"inconclusive: {canary.trials} canary requests < minRequests {min_requests}"


def _success_rate(minimum: float, canary: Counts, alpha: float, min_requests: int, power: bool) -> CheckResult:
    test = check_rate(canary, 1.0 - minimum, alpha, min_trials=min_requests, power=power)
    rate = None if canary.trials == 0 else round(1.0 - canary.events / canary.trials, 4)
    seen = f"{canary.events} of {canary.trials} canary requests failed"
    if canary.trials:
        seen += f" ({_percent(canary.events / canary.trials)})"
    if test.decision == "Fail":
        message = (
            f"{seen}: conclusively more than the {_percent(1.0 - minimum)} a success rate of {number(minimum)} "
            f"allows ({_strength(test)}, false-rollback rate {number(float(format(alpha, '.3g')))})"
        )
    elif test.decision == "Inconclusive":
        message = f"{seen}; {_too_few(canary, min_requests)}"
    else:
        message = f"{seen}; {_strength(test)}{_power(test, 'a failure rate')}"
    counts = {"canary_requests": canary.trials, "canary_failures": canary.events}
    return _result(SUCCESS_RATE, Bound(min=minimum), rate, test, message, counts)


def _success_rate_vs_stable(
    drop: float, canary: Counts, stable: Counts, alpha: float, min_requests: int, power: bool
) -> CheckResult:
    test = check_rate_vs_stable(canary, stable, drop, alpha, min_trials=min_requests, power=power)
    canary_rate, stable_rate = canary.rate, stable.rate
    value = None if canary_rate is None or stable_rate is None else round(canary_rate - stable_rate, 4)
    seen = f"canary {canary.events} of {canary.trials} requests failed, stable {stable.events} of {stable.trials}"
    if test.decision == "Fail":
        message = (
            f"{seen}: the canary's failure rate is conclusively more than {number(drop)} above the stable's "
            f"(at most {_percent(min(test.p0 - drop, 1.0))}; {_strength(test)})"
        )
    elif test.decision == "Inconclusive":
        message = f"{seen}; {_too_few(canary, min_requests)}"
    else:
        message = f"{seen}; {_strength(test)}"
    counts = {
        "canary_requests": canary.trials,
        "canary_failures": canary.events,
        "stable_requests": stable.trials,
        "stable_failures": stable.events,
    }
    return _result(SUCCESS_RATE_VS_STABLE, Bound(max=drop), value, test, message, counts)


def _mean_ms(tally_side_success: float, duration_us: float) -> float | None:
    return None if tally_side_success <= 0 else duration_us / tally_side_success / 1000


def _sign_message(
    seen: str, test: SequentialResult, failed: str, canary: Counts, min_requests: int, enough: bool, sample: str
) -> str:
    """A latency check's sentence: what was seen, then the sign test's decision."""
    if test.decision == "Fail":
        return f"{seen}: {failed} ({_strength(test)})"
    if test.decision == "Inconclusive":
        return f"{seen}; {_too_few(canary, min_requests) if not enough else f'inconclusive: no {sample} yet'}"
    return f"{seen}; {_strength(test)}"


def _latency(
    max_ms: float, tally: DirectTally, canary: Counts, alpha: float, enough: bool, min_requests: int
) -> CheckResult:
    means = tally.canary_means()
    signs = seconds_above(means, max_ms)
    test = _sign_test(signs, alpha, enough)
    mean = _mean_ms(tally.canary.total.success, tally.canary.total.duration_us)
    value = None if mean is None else round(mean, 2)
    seen = f"canary mean latency above {number(max_ms)}ms in {signs.events} of {signs.trials} samples"
    if mean is not None:
        seen += f" (mean {number(round(mean, 2))}ms)"
    message = _sign_message(seen, test, "conclusively above the maximum", canary, min_requests, enough, "sample")
    counts = {
        "canary_requests": canary.trials,
        "canary_failures": canary.events,
        "seconds": signs.trials,
        "seconds_above": signs.events,
    }
    return _result(LATENCY, Bound(max=max_ms, unit="ms"), value, test, message, counts)


def _latency_vs_stable(
    pct: float, tally: DirectTally, canary: Counts, stable: Counts, alpha: float, enough: bool, min_requests: int
) -> CheckResult:
    pairs = tally.paired_means()
    signs = seconds_above_stable(pairs, pct)
    test = _sign_test(signs, alpha, enough)
    canary_ms = _mean_ms(tally.canary.total.success, tally.canary.total.duration_us)
    stable_ms = _mean_ms(tally.stable.total.success, tally.stable.total.duration_us)
    value = None
    if canary_ms is not None and stable_ms is not None and stable_ms > 0:
        value = round((canary_ms - stable_ms) / stable_ms * 100, 1)
    seen = (
        f"canary mean latency more than {number(pct)}% above the stable's in {signs.events} of {signs.trials} samples"
    )
    if value is not None:
        seen += f" (overall {number(value)}%)"
    message = _sign_message(
        seen, test, "conclusively slower than allowed", canary, min_requests, enough, "paired sample"
    )
    counts = {
        "canary_requests": canary.trials,
        "canary_failures": canary.events,
        "stable_requests": stable.trials,
        "stable_failures": stable.events,
        "seconds": signs.trials,
        "seconds_above": signs.events,
    }
    return _result(LATENCY_VS_STABLE, Bound(max=pct, unit="%"), value, test, message, counts)


def _sign_test(signs: Counts, alpha: float, enough: bool) -> SequentialResult:
    """A sign test passes only with minRequests canary requests and a sample to judge."""
    test = check_rate(signs, SIGN_P0, alpha, min_trials=1)
    if test.decision == "Pass" and not enough:
        return SequentialResult("Inconclusive", test.p0, test.log_evidence, test.threshold, test.detectable)
    return test


def _gpu_memory(max_bytes: float, tally: DirectTally) -> CheckResult:
    levels = tally.canary.gpu_memory_bytes
    latest = judge_gpu_memory(GPU_MEMORY, _latest_level(levels, "canary"), max_bytes)
    return _level_check(latest, _trailing(levels, lambda level: gib(level) > max_bytes / GIB))


def _gpu_memory_vs_stable(pct: float, tally: DirectTally) -> CheckResult:
    canary, stable = tally.canary.gpu_memory_bytes, tally.stable.gpu_memory_bytes
    latest = compare_gpu_memory(
        GPU_MEMORY_VS_STABLE, _latest_level(canary, "canary"), _latest_level(stable, "stable"), pct
    )
    pairs = zip(canary, stable, strict=True)  # sampled together: one level per side per sample
    increases = [None if c is None or s is None else increase_percent(c, s) for c, s in pairs]
    return _level_check(latest, _trailing(increases, lambda increase: increase > pct))


def _latest_level(levels: Sequence[float | None], side: str) -> QueryResult:
    level = levels[-1] if levels else None
    if level is None:
        return QueryResult.no_data(f"no {side} pod reported {GPU_MEMORY_USED}")
    return QueryResult.of(level)


def _trailing(values: Sequence[float | None], above: Callable[[float], bool]) -> int:
    """How many of the latest samples in a row are over the bound (a sample without a value ends the run)."""
    return sum(1 for _ in takewhile(lambda v: v is not None and above(v), reversed(values)))


def _level_check(latest: CheckResult, breaches: int) -> CheckResult:
    """The latest sample's result, failing only after GPU_MEMORY_BREACHES samples over the bound in a row."""
    if latest.result == "Fail" and breaches >= GPU_MEMORY_BREACHES:
        latest = latest.model_copy(update={"message": f"{latest.message}, at {breaches} samples in a row"})
    elif latest.result == "Fail":
        message = f"{latest.message} at the latest sample; {GPU_MEMORY_BREACHES} samples in a row fail"
        latest = latest.model_copy(update={"result": "NoData", "message": message})
    return latest.model_copy(update={"source": "direct"})
