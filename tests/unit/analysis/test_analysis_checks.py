"""analyse(): request-count gate, which checks run, and how their results combine.

Prometheus is replaced by a table of answers keyed by the exact PromQL the
analysis must send; a query missing from the table fails the test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tritonop.analysis import promql
from tritonop.analysis.checks import AnalysisOutcome, analyse
from tritonop.analysis.promql import RevisionSeries
from tritonop.analysis.result import QueryResult
from tritonop.api.models import Analysis
from tritonop.config import OperatorConfig

CONFIG = OperatorConfig()
WINDOW_S = 60.0
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CANARY = RevisionSeries("ml", "resnet", "canary1", "resnet50")
STABLE = RevisionSeries("ml", "resnet", "stable1", "resnet50")


class AnswerTable:
    def __init__(self, answers: dict[str, QueryResult]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        assert at == AT
        self.asked.append(promql)
        return self.answers[promql]


def count(series: RevisionSeries) -> str:
    return promql.request_count(series, WINDOW_S, CONFIG)


def rate(series: RevisionSeries) -> str:
    return promql.success_rate(series, WINDOW_S, CONFIG)


def mean_ms(series: RevisionSeries) -> str:
    return promql.mean_latency_ms(series, WINDOW_S, CONFIG)


async def run(
    spec: dict[str, Any], answers: dict[str, QueryResult], stable: str | None = "stable1"
) -> tuple[AnalysisOutcome, AnswerTable]:
    client = AnswerTable(answers)
    outcome = await analyse(
        client,
        Analysis.model_validate(spec),
        namespace="ml",
        name="resnet",
        model="resnet50",
        canary_revision="canary1",
        stable_revision=stable,
        window_s=WINDOW_S,
        config=CONFIG,
        at=AT,
    )
    return outcome, client


FULL_SPEC = {
    "successRate": {"min": 0.99},
    "latency": {"maxMs": 100},
    "comparative": {"maxSuccessRateDrop": 0.05, "maxLatencyIncreasePercent": 50},
    "checks": [{"name": "queue-ms", "query": "max(nv_inference_queue_duration_us{ {{selector}} })", "max": 5}],
}
QUEUE = promql.render_custom("max(nv_inference_queue_duration_us{ {{selector}} })", CANARY, WINDOW_S, CONFIG)
HEALTHY = {
    count(CANARY): QueryResult.of(240.0),
    rate(CANARY): QueryResult.of(1.0),
    rate(STABLE): QueryResult.of(1.0),
    mean_ms(CANARY): QueryResult.of(12.0),
    mean_ms(STABLE): QueryResult.of(10.0),
    QUEUE: QueryResult.of(1.0),
}


async def test_healthy_canary_passes_every_check_each_query_asked_once() -> None:
    outcome, client = await run(FULL_SPEC, HEALTHY)
    assert outcome.verdict == "Pass"
    assert outcome.canary_requests == 240.0
    assert [(c.name, c.result) for c in outcome.checks] == [
        ("successRate", "Pass"),
        ("latency", "Pass"),
        ("successRateVsStable", "Pass"),
        ("latencyVsStable", "Pass"),
        ("queue-ms", "Pass"),
    ]
    assert client.asked[0] == count(CANARY)
    assert sorted(client.asked) == sorted(HEALTHY)  # the canary's own queries are shared with comparisons


async def test_failing_canary_fails_with_actionable_messages() -> None:
    answers = HEALTHY | {rate(CANARY): QueryResult.of(0.7), mean_ms(CANARY): QueryResult.of(180.0)}
    outcome, _ = await run(FULL_SPEC, answers)
    assert outcome.verdict == "Fail"
    by_name = {c.name: c for c in outcome.checks}
    assert by_name["successRate"].message == "success rate 0.7 is below the minimum 0.99"
    assert by_name["successRate"].bound == ">= 0.99"
    assert by_name["latency"].message == "mean latency 180ms is above the maximum 100ms"
    assert by_name["latency"].bound == "<= 100ms"
    assert (by_name["successRateVsStable"].result, by_name["successRateVsStable"].value) == ("Fail", 0.3)
    assert (by_name["latencyVsStable"].result, by_name["latencyVsStable"].value) == ("Fail", 1700.0)
    assert by_name["queue-ms"].result == "Pass"


@pytest.mark.parametrize(
    ("requests", "min_requests", "message"),
    [(12.4, 20, "12 requests < minRequests 20"), (0.0, 1, "0 requests < minRequests 1")],
)
async def test_too_few_requests_is_no_data_for_every_check(requests: float, min_requests: int, message: str) -> None:
    outcome, client = await run(FULL_SPEC | {"minRequests": min_requests}, {count(CANARY): QueryResult.of(requests)})
    assert outcome.verdict == "NoData"
    assert outcome.canary_requests == requests
    assert [c.result for c in outcome.checks] == ["NoData"] * 5
    assert {c.message for c in outcome.checks} == {message}
    assert client.asked == [count(CANARY)]


async def test_min_requests_is_inclusive() -> None:
    outcome, _ = await run(FULL_SPEC | {"minRequests": 240}, HEALTHY)
    assert outcome.verdict == "Pass"


async def test_prometheus_down_is_error_not_no_data() -> None:
    down = QueryResult.error("Prometheus at http://127.0.0.1:9 unreachable: connection refused")
    outcome, _ = await run(FULL_SPEC, {count(CANARY): down})
    assert outcome.verdict == "Error"
    assert outcome.canary_requests is None
    assert {c.result for c in outcome.checks} == {"Error"}
    assert "unreachable" in outcome.checks[0].message


async def test_count_error_is_error_even_without_checks() -> None:
    down = QueryResult.error("Prometheus at http://127.0.0.1:9 timed out")
    outcome, _ = await run({"successRate": None}, {count(CANARY): down})
    assert (outcome.verdict, outcome.checks) == ("Error", [])


async def test_stable_without_data_makes_comparisons_no_data() -> None:
    empty = QueryResult.no_data("query returned no series")
    answers = HEALTHY | {rate(STABLE): empty, mean_ms(STABLE): empty}
    outcome, _ = await run(FULL_SPEC, answers)
    assert outcome.verdict == "NoData"
    results = {c.name: c.result for c in outcome.checks}
    assert results == {
        "successRate": "Pass",
        "latency": "Pass",
        "successRateVsStable": "NoData",
        "latencyVsStable": "NoData",
        "queue-ms": "Pass",
    }


async def test_no_stable_revision_makes_comparisons_no_data_without_querying_it() -> None:
    outcome, client = await run(FULL_SPEC, HEALTHY, stable=None)
    assert outcome.verdict == "NoData"
    comparisons = [c for c in outcome.checks if c.name.endswith("VsStable")]
    assert [(c.result, c.message) for c in comparisons] == [("NoData", "no stable revision to compare with")] * 2
    assert rate(STABLE) not in client.asked and mean_ms(STABLE) not in client.asked


async def test_a_failure_outranks_an_error_elsewhere() -> None:
    answers = HEALTHY | {rate(CANARY): QueryResult.of(0.5), QUEUE: QueryResult.error("query returned 3 series")}
    outcome, _ = await run(FULL_SPEC, answers)
    assert outcome.verdict == "Fail"
    assert {c.name: c.result for c in outcome.checks}["queue-ms"] == "Error"


async def test_quantile_latency_uses_the_summary_query() -> None:
    p99 = promql.quantile_latency_ms(CANARY, 0.99, WINDOW_S, CONFIG)
    spec = {"successRate": None, "latency": {"maxMs": 250, "quantile": 0.99}}
    outcome, client = await run(spec, {count(CANARY): QueryResult.of(100.0), p99: QueryResult.of(300.0)})
    assert client.asked == [count(CANARY), p99]
    (check,) = outcome.checks
    assert (check.name, check.result, check.message) == (
        "latency",
        "Fail",
        "p99 latency 300ms is above the maximum 250ms",
    )


async def test_bad_custom_template_is_an_error_for_that_check_only() -> None:
    spec = {"checks": [{"name": "typo", "query": "x{ {{selectr}} }", "min": 1}]}
    answers = {count(CANARY): QueryResult.of(100.0), rate(CANARY): QueryResult.of(1.0)}
    outcome, client = await run(spec, answers)
    assert outcome.verdict == "Error"
    assert [(c.name, c.result) for c in outcome.checks] == [("successRate", "Pass"), ("typo", "Error")]
    assert "{{selectr}}" in outcome.checks[1].message
    assert client.asked == [count(CANARY), rate(CANARY)]
