"""Judging query results against bounds, and combining check results into a verdict. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tritonop.analysis.result import QueryResult
from tritonop.api.models import CheckResult, Verdict


def number(value: float) -> str:
    """A number as a human reads it in a status message: 0.7, 0.9912, 52.31, 1200."""
    return format(value, ".10g")


@dataclass(frozen=True)
class Bound:
    """Acceptable range of one check's value; either side may be open."""

    min: float | None = None
    max: float | None = None
    unit: str = ""

    def text(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {number(self.min)}{self.unit}")
        if self.max is not None:
            parts.append(f"<= {number(self.max)}{self.unit}")
        return " and ".join(parts)


def rounded(value: float, digits: int | None) -> float:
    """value to ``digits`` decimals, or to 6 significant digits when digits is None."""
    return float(format(value, ".6g")) if digits is None else round(value, digits)


def judge(name: str, subject: str, reading: QueryResult, bound: Bound, digits: int | None) -> CheckResult:
    """One check's result: reading compared with bound; subject names the value in messages.

    The value is rounded (see ``rounded``) before it is compared, so the status never
    shows a value that seems to satisfy the bound next to a Fail.
    """
    if reading.value is None:
        return _unjudged(name, subject, reading, bound)
    value = rounded(reading.value, digits)
    shown = f"{subject} {number(value)}{bound.unit}"
    if bound.min is not None and value < bound.min:
        message = f"{shown} is below the minimum {number(bound.min)}{bound.unit}"
        return CheckResult(name=name, result="Fail", value=value, bound=bound.text(), message=message)
    if bound.max is not None and value > bound.max:
        message = f"{shown} is above the maximum {number(bound.max)}{bound.unit}"
        return CheckResult(name=name, result="Fail", value=value, bound=bound.text(), message=message)
    message = f"{shown} satisfies {bound.text()}"
    return CheckResult(name=name, result="Pass", value=value, bound=bound.text(), message=message)


def compare_success_rate(name: str, canary: QueryResult, stable: QueryResult, max_drop: float) -> CheckResult:
    """Fail when the canary's success rate is more than max_drop below the stable's."""
    bound = Bound(max=max_drop)
    values = _both_values(name, "success rate", canary, stable, bound)
    if isinstance(values, CheckResult):
        return values
    canary_rate, stable_rate = values
    drop = round(stable_rate - canary_rate, 4)
    change = f"a drop of {number(drop)}" if drop > 0 else "no drop"
    summary = f"canary success rate {number(round(canary_rate, 4))} vs stable {number(round(stable_rate, 4))}: {change}"
    if drop > max_drop:
        message = f"{summary}, more than the allowed {number(max_drop)}"
        return CheckResult(name=name, result="Fail", value=drop, bound=bound.text(), message=message)
    message = f"{summary}, within the allowed {number(max_drop)}"
    return CheckResult(name=name, result="Pass", value=drop, bound=bound.text(), message=message)


def compare_latency(name: str, canary: QueryResult, stable: QueryResult, max_increase_percent: float) -> CheckResult:
    """Fail when the canary's mean latency exceeds the stable's by more than the percentage."""
    bound = Bound(max=max_increase_percent, unit="%")
    values = _both_values(name, "mean latency", canary, stable, bound)
    if isinstance(values, CheckResult):
        return values
    canary_ms, stable_ms = values
    if stable_ms <= 0:
        message = "stable mean latency is 0ms, so no relative increase can be computed"
        return unjudged(name, "NoData", bound, message)
    increase = round((canary_ms - stable_ms) / stable_ms * 100, 1)
    change = f"{number(increase)}% higher" if increase >= 0 else f"{number(-increase)}% lower"
    summary = f"canary mean latency {number(round(canary_ms, 2))}ms vs stable {number(round(stable_ms, 2))}ms: {change}"
    if increase > max_increase_percent:
        message = f"{summary}, more than the allowed {number(max_increase_percent)}%"
        return CheckResult(name=name, result="Fail", value=increase, bound=bound.text(), message=message)
    message = f"{summary}, within the allowed {number(max_increase_percent)}%"
    return CheckResult(name=name, result="Pass", value=increase, bound=bound.text(), message=message)


GIB = 2**30
GIB_DIGITS = 3  # GiB to three decimals: about a MiB
NO_GPU_METRICS = (
    "Triton exports nv_gpu_memory_used_bytes only with its GPU metrics on (tritonop turns them on when "
    "triton.gpus is above 0) and DCGM working in the pod"
)


def gib(value_bytes: float) -> float:
    """Bytes in GiB, rounded as the GPU memory checks show and compare them."""
    return round(value_bytes / GIB, GIB_DIGITS)


def increase_percent(canary: float, stable: float) -> float | None:
    """How much more the canary has than the stable, in percent to one decimal; None when stable <= 0."""
    return None if stable <= 0 else round((canary - stable) / stable * 100, 1)


def judge_gpu_memory(name: str, reading: QueryResult, max_bytes: float) -> CheckResult:
    """Fail when the canary's worst pod uses more GPU memory than max_bytes; shown in GiB."""
    bound = Bound(max=max_bytes / GIB, unit="GiB")
    if reading.value is not None:
        return judge(name, "canary GPU memory per pod", QueryResult.of(reading.value / GIB), bound, GIB_DIGITS)
    return _no_gpu_metrics(_unjudged(name, "canary GPU memory per pod", reading, bound))


def compare_gpu_memory(name: str, canary: QueryResult, stable: QueryResult, max_increase_percent: float) -> CheckResult:
    """Fail when the canary's worst pod uses more GPU memory than the stable's worst pod, by
    more than the percentage."""
    bound = Bound(max=max_increase_percent, unit="%")
    values = _both_values(name, "GPU memory per pod", canary, stable, bound)
    if isinstance(values, CheckResult):
        return _no_gpu_metrics(values)
    canary_bytes, stable_bytes = values
    increase = increase_percent(canary_bytes, stable_bytes)
    if increase is None:
        message = "stable GPU memory per pod is 0GiB, so no relative increase can be computed"
        return unjudged(name, "NoData", bound, message)
    change = f"{number(increase)}% more" if increase >= 0 else f"{number(-increase)}% less"
    summary = f"canary GPU memory per pod {number(gib(canary_bytes))}GiB vs stable {number(gib(stable_bytes))}GiB"
    if increase > max_increase_percent:
        message = f"{summary}: {change}, more than the allowed {number(max_increase_percent)}%"
        return CheckResult(name=name, result="Fail", value=increase, bound=bound.text(), message=message)
    message = f"{summary}: {change}, within the allowed {number(max_increase_percent)}%"
    return CheckResult(name=name, result="Pass", value=increase, bound=bound.text(), message=message)


def _no_gpu_metrics(result: CheckResult) -> CheckResult:
    """A GPU memory check without data says what exports the gauge (an error says its own cause)."""
    if result.result != "NoData":
        return result
    return result.model_copy(update={"message": f"{result.message}; {NO_GPU_METRICS}"})


def unjudged(name: str, result: Literal["NoData", "Error"], bound: Bound, message: str) -> CheckResult:
    """A check that could not be judged, e.g. because the window had too few requests."""
    return CheckResult(name=name, result=result, bound=bound.text(), message=message)


def combine(results: Iterable[CheckResult]) -> Verdict:
    """Any Fail fails; else any Error is an error; else any NoData is no data; else Pass."""
    seen = {r.result for r in results}
    precedence: tuple[Verdict, ...] = ("Fail", "Error", "NoData")
    return next((verdict for verdict in precedence if verdict in seen), "Pass")


def _unjudged(name: str, subject: str, reading: QueryResult, bound: Bound) -> CheckResult:
    if reading.status == "error":
        return unjudged(name, "Error", bound, f"{subject}: query failed: {reading.message}")
    return unjudged(name, "NoData", bound, f"{subject}: no data: {reading.message}")


def _both_values(
    name: str, subject: str, canary: QueryResult, stable: QueryResult, bound: Bound
) -> tuple[float, float] | CheckResult:
    """Both sides' numbers, or the result that says why they cannot be compared."""
    if canary.value is not None and stable.value is not None:
        return canary.value, stable.value
    missing = [(side, r) for side, r in (("canary", canary), ("stable", stable)) if r.value is None]
    # Errors outrank missing data: an unreachable Prometheus must not read as "no traffic".
    side, reading = min(missing, key=lambda pair: pair[1].status != "error")
    return _unjudged(name, f"{side} {subject}", reading, bound)
