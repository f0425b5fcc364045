"""PromQL rendering: every query parses, selects the revision's series, and escapes label values."""

from __future__ import annotations

from pathlib import Path

import promql_parser
import pytest
import yaml

from tritonop.analysis import promql
from tritonop.analysis.promql import RevisionSeries, TemplateError
from tritonop.api.models import InferenceServiceSpec
from tritonop.config import OperatorConfig
from tritonop.durations import prometheus_duration

CONFIG = OperatorConfig()
SERIES = RevisionSeries(namespace="ml", name="resnet", revision="1d0e44", model="resnet50")
EXPECTED_MATCHERS = {"namespace": "ml", "inferenceservice": "resnet", "revision": "1d0e44", "model": "resnet50"}
REPO = Path(__file__).resolve().parents[3]

# Custom check queries as users would write them; the CustomCheck.query description points here.
EXAMPLE_CUSTOM_QUERIES = [
    (
        "sum(rate(nv_inference_queue_duration_us{ {{selector}} }[{{interval}}]))"
        " / sum(rate(nv_inference_request_success{ {{selector}} }[{{interval}}])) / 1000"
    ),
    'sum(increase(nv_inference_request_failure{ {{selector}}, reason="BACKEND" }[{{interval}}]))',
    'sum(rate(nv_inference_count{namespace="{{namespace}}",revision="{{revision}}",model="{{model}}"}[{{interval}}]))',
    "max(nv_inference_pending_request_count{{{selector}}})",
    'max(max_over_time(nv_inference_queue_summary_us{ {{selector}}, quantile="0.99" }[{{interval}}])) / 1000',
]


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        expr, pre_visit=lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None
    )
    return found


def matcher_map(selector: promql_parser.VectorSelector) -> dict[str, str]:
    return {m.name: m.value for m in selector.matchers.matchers}


BUILT_IN = {
    "request_count": promql.request_count(SERIES, 60, CONFIG),
    "success_rate": promql.success_rate(SERIES, 60, CONFIG),
    "mean_latency_ms": promql.mean_latency_ms(SERIES, 60, CONFIG),
    "quantile_latency_ms": promql.quantile_latency_ms(SERIES, 0.99, 60, CONFIG),
}


@pytest.mark.parametrize("query", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_built_in_queries_parse_and_select_only_the_revision(query: str) -> None:
    found = selectors(promql_parser.parse(query))
    assert found, "a built-in query must read Triton series"
    for selector in found:
        assert (selector.name or "").startswith("nv_inference_request_")
        assert {k: v for k, v in matcher_map(selector).items() if k != "quantile"} == EXPECTED_MATCHERS


def test_request_count_adds_both_sides_with_absent_failures_as_zero() -> None:
    query = BUILT_IN["request_count"]
    assert [s.name for s in selectors(promql_parser.parse(query))] == [promql.SUCCESS, promql.FAILURE]
    # Failures carry a "reason" label: each side must be aggregated before they are combined.
    assert query.count("sum(increase(") == 2
    assert query.count("or vector(0)") == 2


def test_success_rate_divides_successes_by_all_requests() -> None:
    expr = promql_parser.parse(BUILT_IN["success_rate"])
    assert isinstance(expr, promql_parser.BinaryExpr)
    assert [s.name for s in selectors(expr.lhs)] == [promql.SUCCESS]
    assert [s.name for s in selectors(expr.rhs)] == [promql.SUCCESS, promql.FAILURE]


def test_mean_latency_is_duration_rate_over_success_rate_in_ms() -> None:
    query = BUILT_IN["mean_latency_ms"]
    assert [s.name for s in selectors(promql_parser.parse(query))] == [promql.DURATION_US, promql.SUCCESS]
    assert query.endswith("/ 1000")


@pytest.mark.parametrize(("quantile", "label"), [(0.99, "0.99"), (0.5, "0.5"), (0.999, "0.999"), (0.9, "0.9")])
def test_quantile_matches_tritons_quantile_label(quantile: float, label: str) -> None:
    query = promql.quantile_latency_ms(SERIES, quantile, 30, CONFIG)
    (selector,) = selectors(promql_parser.parse(query))
    assert selector.name == promql.SUMMARY_US
    assert matcher_map(selector)["quantile"] == label


def test_label_names_come_from_operator_config() -> None:
    config = OperatorConfig(label_namespace="kubernetes_namespace", label_isvc="isvc", label_revision="rev")
    for selector in selectors(promql_parser.parse(promql.success_rate(SERIES, 60, config))):
        assert matcher_map(selector) == {
            "kubernetes_namespace": "ml",
            "isvc": "resnet",
            "rev": "1d0e44",
            "model": "resnet50",
        }


@pytest.mark.parametrize("value", ['quo"te', "back\\slash", 'both\\"', "new\nline", "}{,="])
def test_label_values_are_escaped(value: str) -> None:
    series = RevisionSeries(namespace="ml", name="resnet", revision="r", model=value)
    for selector in selectors(promql_parser.parse(promql.request_count(series, 60, CONFIG))):
        assert matcher_map(selector)["model"] == value


@pytest.mark.parametrize(
    ("seconds", "rendered"), [(60, "60s"), (15.0, "15s"), (1.5, "1500ms"), (0.25, "250ms"), (3600, "3600s")]
)
def test_duration(seconds: float, rendered: str) -> None:
    assert prometheus_duration(seconds) == rendered
    assert promql_parser.parse(f"rate(x[{rendered}])")


@pytest.mark.parametrize("seconds", [0, -5, 0.0001])
def test_duration_rejects_empty_windows(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        prometheus_duration(seconds)


@pytest.mark.parametrize("template", EXAMPLE_CUSTOM_QUERIES)
def test_example_custom_queries_render_and_parse(template: str) -> None:
    query = promql.render_custom(template, SERIES, 60, CONFIG)
    assert "{{" not in query
    found = selectors(promql_parser.parse(query))
    assert found
    for selector in found:
        assert {k: matcher_map(selector)[k] for k in ("revision", "model")} == {
            "revision": "1d0e44",
            "model": "resnet50",
        }


def test_custom_placeholders_substitute_raw_values() -> None:
    rendered = promql.render_custom(
        "{{namespace}} {{ name }} {{revision}} {{model}} {{interval}} {{selector}}", SERIES, 90, CONFIG
    )
    assert rendered == (
        'ml resnet 1d0e44 resnet50 90s namespace="ml",inferenceservice="resnet",revision="1d0e44",model="resnet50"'
    )


def test_selector_placeholder_can_be_extended_with_more_matchers() -> None:
    query = promql.render_custom('x{ {{selector}}, reason="BACKEND" }', SERIES, 60, CONFIG)
    (selector,) = selectors(promql_parser.parse(query))
    assert matcher_map(selector) == EXPECTED_MATCHERS | {"reason": "BACKEND"}


def test_unknown_placeholder_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateError, match=r"\{\{pod\}\}"):
        promql.render_custom("x{pod='{{pod}}'}", SERIES, 60, CONFIG)


def _example_custom_checks() -> list[tuple[str, str]]:
    """(file:check, query) of every custom check in the repository's example manifests."""
    found = []
    for path in sorted((REPO / "manifests" / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "InferenceService":
                continue
            spec = InferenceServiceSpec.model_validate(doc["spec"])
            found += [(f"{path.name}:{c.name}", c.query) for c in spec.rollout.analysis.checks]
    return found


@pytest.mark.parametrize(("where", "template"), _example_custom_checks())
def test_custom_checks_in_examples_render_and_parse(where: str, template: str) -> None:
    assert promql_parser.parse(promql.render_custom(template, SERIES, 60, CONFIG)), where
