"""Judging values against bounds and combining results: table-driven, pure."""

from __future__ import annotations

import pytest

from tritonop.analysis.judge import Bound, Verdict, combine, compare_latency, compare_success_rate, judge, rounded
from tritonop.analysis.result import QueryResult
from tritonop.api.models import CheckResult

OK = QueryResult.of
EMPTY = QueryResult.no_data("query returned no series")
DOWN = QueryResult.error("Prometheus at http://127.0.0.1:1 unreachable: connection refused")


@pytest.mark.parametrize(
    ("reading", "bound", "digits", "result", "value", "bound_text", "message"),
    [
        (OK(0.995), Bound(min=0.99), 4, "Pass", 0.995, ">= 0.99", "success rate 0.995 satisfies >= 0.99"),
        (OK(0.99), Bound(min=0.99), 4, "Pass", 0.99, ">= 0.99", "success rate 0.99 satisfies >= 0.99"),
        (OK(0.70123), Bound(min=0.99), 4, "Fail", 0.7012, ">= 0.99", "success rate 0.7012 is below the minimum 0.99"),
        # Rounding happens before comparing: what the status shows is what was judged.
        (OK(0.989996), Bound(min=0.99), 4, "Pass", 0.99, ">= 0.99", "success rate 0.99 satisfies >= 0.99"),
        (OK(0.0), Bound(min=0.99), 4, "Fail", 0.0, ">= 0.99", "success rate 0 is below the minimum 0.99"),
        (EMPTY, Bound(min=0.99), 4, "NoData", None, ">= 0.99", "success rate: no data: query returned no series"),
        (DOWN, Bound(min=0.99), 4, "Error", None, ">= 0.99", f"success rate: query failed: {DOWN.message}"),
    ],
)
def test_success_rate_table(
    reading: QueryResult,
    bound: Bound,
    digits: int,
    result: Verdict,
    value: float | None,
    bound_text: str,
    message: str,
) -> None:
    assert judge("successRate", "success rate", reading, bound, digits) == CheckResult(
        name="successRate", result=result, value=value, bound=bound_text, message=message
    )


@pytest.mark.parametrize(
    ("reading", "result", "value", "message"),
    [
        (OK(52.3149), "Fail", 52.31, "mean latency 52.31ms is above the maximum 20ms"),
        (OK(20.0), "Pass", 20.0, "mean latency 20ms satisfies <= 20ms"),
        (OK(3.456), "Pass", 3.46, "mean latency 3.46ms satisfies <= 20ms"),
        (QueryResult.no_data("query returned NaN"), "NoData", None, "mean latency: no data: query returned NaN"),
    ],
)
def test_latency_table(reading: QueryResult, result: str, value: float | None, message: str) -> None:
    check = judge("latency", "mean latency", reading, Bound(max=20, unit="ms"), 2)
    assert (check.result, check.value, check.bound, check.message) == (result, value, "<= 20ms", message)


@pytest.mark.parametrize(
    ("bound", "reading", "result", "bound_text"),
    [
        (Bound(min=1, max=5), OK(3), "Pass", ">= 1 and <= 5"),
        (Bound(min=1, max=5), OK(0.5), "Fail", ">= 1 and <= 5"),
        (Bound(min=1, max=5), OK(7), "Fail", ">= 1 and <= 5"),
        (Bound(max=0.001), OK(0.00012345678), "Pass", "<= 0.001"),
        (Bound(max=0.0001), OK(0.00012345678), "Fail", "<= 0.0001"),
        (Bound(min=1500000), OK(1234567.8), "Fail", ">= 1500000"),
    ],
)
def test_custom_bounds_table(bound: Bound, reading: QueryResult, result: str, bound_text: str) -> None:
    check = judge("queue-ms", "queue-ms", reading, bound, None)
    assert (check.result, check.bound) == (result, bound_text)
    assert check.value is not None and check.value == pytest.approx(reading.value, rel=1e-5)
    assert check.message.startswith("queue-ms ")


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [(0.70123, 4, 0.7012), (52.318, 2, 52.32), (0.000123456789, None, 0.000123457), (1234567.8, None, 1234570.0)],
)
def test_rounded(value: float, digits: int | None, expected: float) -> None:
    assert rounded(value, digits) == expected


@pytest.mark.parametrize(
    ("canary", "stable", "result", "value", "message"),
    [
        (OK(0.7), OK(1.0), "Fail", 0.3, "canary success rate 0.7 vs stable 1: a drop of 0.3, more than the allowed 0.05"),
        (OK(0.97), OK(0.99), "Pass", 0.02, "canary success rate 0.97 vs stable 0.99: a drop of 0.02, within the allowed 0.05"),
        (OK(1.0), OK(0.9), "Pass", -0.1, "canary success rate 1 vs stable 0.9: no drop, within the allowed 0.05"),
        (OK(0.7), EMPTY, "NoData", None, "stable success rate: no data: query returned no series"),
        (EMPTY, OK(1.0), "NoData", None, "canary success rate: no data: query returned no series"),
        # An error on either side outranks missing data on the other.
        (EMPTY, DOWN, "Error", None, f"stable success rate: query failed: {DOWN.message}"),
        (DOWN, EMPTY, "Error", None, f"canary success rate: query failed: {DOWN.message}"),
    ],
)  # fmt: skip
def test_success_rate_drop_table(
    canary: QueryResult, stable: QueryResult, result: str, value: float | None, message: str
) -> None:
    check = compare_success_rate("successRateVsStable", canary, stable, 0.05)
    assert (check.result, check.value, check.bound, check.message) == (result, value, "<= 0.05", message)


@pytest.mark.parametrize(
    ("canary", "stable", "result", "value", "message"),
    [
        (OK(60.0), OK(10.0), "Fail", 500.0, "canary mean latency 60ms vs stable 10ms: 500% higher, more than the allowed 20%"),
        (OK(11.0), OK(10.0), "Pass", 10.0, "canary mean latency 11ms vs stable 10ms: 10% higher, within the allowed 20%"),
        (OK(5.0), OK(10.0), "Pass", -50.0, "canary mean latency 5ms vs stable 10ms: 50% lower, within the allowed 20%"),
        (OK(5.0), OK(0.0), "NoData", None, "stable mean latency is 0ms, so no relative increase can be computed"),
        (OK(5.0), EMPTY, "NoData", None, "stable mean latency: no data: query returned no series"),
        (DOWN, OK(10.0), "Error", None, f"canary mean latency: query failed: {DOWN.message}"),
    ],
)  # fmt: skip
def test_latency_increase_table(
    canary: QueryResult, stable: QueryResult, result: str, value: float | None, message: str
) -> None:
    check = compare_latency("latencyVsStable", canary, stable, 20)
    assert (check.result, check.value, check.bound, check.message) == (result, value, "<= 20%", message)


def _results(*kinds: Verdict) -> list[CheckResult]:
    return [CheckResult(name=f"c{i}", result=kind) for i, kind in enumerate(kinds)]


@pytest.mark.parametrize(
    ("kinds", "verdict"),
    [
        ((), "Pass"),
        (("Pass", "Pass"), "Pass"),
        (("Pass", "NoData"), "NoData"),
        (("NoData", "Error", "Pass"), "Error"),
        (("Error", "Fail"), "Fail"),
        (("Fail", "NoData", "Error", "Pass"), "Fail"),
    ],
)
def test_combine_table(kinds: tuple[Verdict, ...], verdict: Verdict) -> None:
    assert combine(_results(*kinds)) == verdict
