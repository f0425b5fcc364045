"""The experiment's figures and statistics: queries per variant, Newcombe and paired t intervals
against published values, and the statements status carries."""

from __future__ import annotations

import math

import promql_parser
import pytest

from tritonop.analysis.experiment import (
    PairedLatency,
    VariantFigures,
    compare,
    figures,
    latency_step_s,
    paired_interval,
    paired_latency,
    paired_latency_queries,
    proportion_difference,
    regularized_beta,
    student_t_quantile,
    variant_queries,
    wilson_interval,
)
from tritonop.analysis.promql import RevisionSeries
from tritonop.analysis.result import QueryResult
from tritonop.api.models import ExperimentMetric
from tritonop.config import OperatorConfig

CONFIG = OperatorConfig()
A = RevisionSeries("ml", "resnet", "aaaa", "resnet50")
B = RevisionSeries("ml", "resnet", "bbbb", "resnet50")
KPI = ExperimentMetric(
    name="conversion",
    query='sum(increase(orders_total{revision="{{revision}}"}[{{interval}}])) / sum(increase(visits_total{ {{selector}} }[{{interval}}]))',
)


def revisions_in(query: str) -> set[str]:
    found: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.update(m.value for m in node.matchers.matchers if m.name == "revision")

    promql_parser.walk(promql_parser.parse(query), pre_visit=visit)
    return found


def test_each_variant_s_queries_parse_and_select_only_that_variant_over_the_window() -> None:
    queries = variant_queries(B, [KPI], 3600, CONFIG)
    for query in queries.all():
        assert revisions_in(query) == {"bbbb"}, query
    assert "[3600s]" in queries.requests and "[3600s]" in queries.mean_latency_ms
    assert queries.metrics["conversion"].startswith('sum(increase(orders_total{revision="bbbb"}[3600s]))')
    assert queries.problems == {}


def test_a_metric_with_an_unknown_placeholder_is_left_out_with_the_reason() -> None:
    bad = ExperimentMetric(name="typo", query="sum(x{ {{selektor}} })")
    queries = variant_queries(A, [bad], 600, CONFIG)
    assert "typo" not in queries.metrics
    assert queries.problems["typo"].startswith("unknown placeholder {{selektor}}")


def test_paired_latency_queries_difference_b_minus_a_per_window() -> None:
    paired = paired_latency_queries(A, B, 3600, 60, CONFIG)
    for query in paired.all():
        assert revisions_in(query) == {"aaaa", "bbbb"}
        assert query.index('"bbbb"') < query.index('"aaaa"')  # B minus A
        assert "[3600s:60s]" in query
    assert paired.mean.startswith("avg_over_time(") and paired.count.startswith("count_over_time(")


@pytest.mark.parametrize(
    "window_s, interval_s, step_s", [(600, 60, 60), (3600, 1, 4), (30 * 86400, 60, 2592), (10, 0.5, 1)]
)
def test_paired_windows_are_the_interval_unless_there_would_be_more_than_a_thousand(
    window_s: float, interval_s: float, step_s: float
) -> None:
    assert latency_step_s(window_s, interval_s) == step_s


def test_figures_read_each_answer_and_say_why_one_is_missing() -> None:
    queries = variant_queries(A, [KPI], 600, CONFIG)
    answers = {
        queries.requests: QueryResult.of(1999.6),
        queries.success_rate: QueryResult.of(0.995),
        queries.mean_latency_ms: QueryResult.of(12.5),
        queries.metrics["conversion"]: QueryResult.error("Prometheus at http://p:9090 unreachable"),
    }
    seen = figures(queries, answers)
    assert (seen.requests, seen.success_rate, seen.mean_latency_ms, seen.metrics) == (2000, 0.995, 12.5, {})
    assert seen.problems == ("conversion: Prometheus at http://p:9090 unreachable",)


def test_a_variant_without_requests_has_no_rate_or_latency() -> None:
    queries = variant_queries(A, [], 600, CONFIG)
    nan = QueryResult.no_data("NaN")
    answers = {queries.requests: QueryResult.of(0.0), queries.success_rate: nan, queries.mean_latency_ms: nan}
    assert figures(queries, answers) == VariantFigures(requests=0)


def test_wilson_and_newcombe_intervals_match_the_published_values() -> None:
    # Newcombe (1998), Stat Med 17:873, Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339.
    difference, low, high = proportion_difference(56, 70, 48, 80)
    assert (round(difference, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    # Example (c): 5/56 - 0/29, method 10: -0.0381 to 0.1926 (a zero count, where the Wald interval breaks).
    _, low, high = proportion_difference(5, 56, 0, 29)
    assert (round(low, 4), round(high, 4)) == (-0.0381, 0.1926)
    low, high = wilson_interval(0, 10)  # 0 of 10: 0 to 0.2775
    assert (round(low, 4), round(high, 4)) == (0.0, 0.2775)


@pytest.mark.parametrize("df, t", [(1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (30, 2.0423), (120, 1.9799)])
def test_student_t_quantiles_match_the_table(df: int, t: float) -> None:
    assert round(student_t_quantile(0.975, df), 4) == t


def test_regularized_beta_matches_closed_forms() -> None:
    assert regularized_beta(0.3, 1, 1) == pytest.approx(0.3)
    assert regularized_beta(0.3, 2, 3) == pytest.approx(1 - (0.7**4 + 4 * 0.3 * 0.7**3))
    assert regularized_beta(0.8, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.8)))


def test_the_paired_interval_is_the_t_interval_of_the_per_window_differences() -> None:
    differences = [2.0, 3.0, 1.0, 4.0, 2.5, 3.5, 2.0, 3.0]
    mean = sum(differences) / len(differences)
    population_sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / len(differences))
    paired = PairedLatency(mean, population_sd, len(differences), 60)
    sample_sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    half = 2.3646 * sample_sd / math.sqrt(len(differences))  # t(0.975, 7)
    low, high = paired_interval(paired) or (0.0, 0.0)
    assert (low, high) == (pytest.approx(mean - half, abs=1e-3), pytest.approx(mean + half, abs=1e-3))
    assert paired_interval(PairedLatency(2.0, 0.0, 1, 60)) is None


def test_paired_latency_needs_every_answer() -> None:
    queries = paired_latency_queries(A, B, 600, 60, CONFIG)
    answers = dict(zip(queries.all(), (QueryResult.of(2.0), QueryResult.of(1.0), QueryResult.of(10.0)), strict=True))
    assert paired_latency(queries, answers, 60) == PairedLatency(2.0, 1.0, 10, 60)
    answers[queries.count] = QueryResult.no_data("empty")
    assert paired_latency(queries, answers, 60) is None


def test_statements_say_which_way_and_by_how_much_with_the_interval_and_the_test() -> None:
    a = VariantFigures(requests=48_000, success_rate=0.999, mean_latency_ms=10.0)
    worse = VariantFigures(requests=12_000, success_rate=0.995, mean_latency_ms=13.0)
    latency = PairedLatency(3.2, 2.0, 30, 60)
    rate, slower = compare(a, worse, latency)
    assert rate.metric == "successRate" and rate.significant and rate.difference == pytest.approx(-0.4)
    assert rate.statement.startswith("B's success rate is lower than A's by 0.4 points (95% CI -0.")
    assert rate.statement.endswith("; Newcombe-Wilson interval, 12000 vs 48000 requests)")
    assert rate.low < rate.difference < rate.high < 0
    assert slower.significant and slower.low > 0
    assert slower.statement.startswith(
        "B's mean latency is higher than A's by 3.2 ms (95% CI +2.44..+3.96 ms"
    )  # 3.2 +- t(29) 2.045 x 2 sqrt(30/29) / sqrt(30)
    assert slower.statement.endswith("paired t over 30 windows of 1m)")

    same = VariantFigures(requests=1000, success_rate=0.999, mean_latency_ms=10.0)
    (rate,) = compare(a, same, PairedLatency(0.1, 2.0, 1, 60))  # one window: no latency interval
    assert not rate.significant and rate.low < 0 < rate.high
    assert rate.statement.startswith("no significant difference in success rate: B - A = +0 points (95% CI -")


def test_no_comparison_without_requests_on_both_sides() -> None:
    a = VariantFigures(requests=1000, success_rate=1.0)
    assert compare(a, VariantFigures(requests=0), None) == []
    assert compare(VariantFigures(), a, None) == []
