"""The Grafana dashboard: valid JSON, PromQL that parses, and only metrics that exist."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from tests.support.helm import CHART_DIR

DASHBOARD: dict[str, Any] = json.loads((CHART_DIR / "dashboards" / "tritonop.json").read_text())

OPERATOR_METRICS = {
    "tritonop_reconciles_total",
    "tritonop_reconcile_duration_seconds",
    "tritonop_managed_inferenceservices",
    "tritonop_canary_weight_percent",
    "tritonop_inferenceservice_phase",
    "tritonop_analysis_check_value",
    "tritonop_analysis_check_bound",
    "tritonop_analysis_total",
    "tritonop_promotions_total",
    "tritonop_rollbacks_total",
    "tritonop_notifications_total",
    "tritonop_passes_total",
    "tritonop_time_driven",
}
TRITON_METRICS = {
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_count",
}
# Triton's per-GPU gauges (label gpu_uuid), exported by pods with GPUs.
TRITON_GPU_METRICS = {"nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes"}
HISTOGRAMS = {"tritonop_reconcile_duration_seconds"}
KNOWN_SERIES = (
    OPERATOR_METRICS
    | TRITON_METRICS
    | TRITON_GPU_METRICS
    | {f"{histogram}{suffix}" for histogram in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
) - HISTOGRAMS  # a histogram has no series under its bare name
GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "3h"}


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in DASHBOARD["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows nest their panels
    return found


def queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel.get("targets", [])]


def substitute_variables(expr: str) -> str:
    """Grafana variables replaced by values PromQL accepts ($var and ${var} forms)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_DURATIONS.get(name, ".*")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def series_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(substitute_variables(expr)), visit)
    return names


def test_dashboard_identity() -> None:
    assert DASHBOARD["uid"] == "tritonop-canary"
    assert DASHBOARD["title"]
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


@pytest.mark.parametrize(("title", "expr"), queries(), ids=[f"{t}-{i}" for i, (t, _) in enumerate(queries())])
def test_every_query_parses_and_uses_known_metrics(title: str, expr: str) -> None:
    names = series_names(expr)
    assert names, f"{title}: no metric"
    assert names <= KNOWN_SERIES, f"{title}: unknown metrics {names - KNOWN_SERIES}"


def test_template_variable_queries_use_known_metrics() -> None:
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
        assert match, variable["name"]
        assert series_names(match.group(1)) <= KNOWN_SERIES


def test_every_panel_queries_the_selected_datasource() -> None:
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]


def test_covers_what_a_rollout_needs_to_be_watched() -> None:
    used = set().union(*(series_names(expr) for _, expr in queries()))
    assert used >= OPERATOR_METRICS - HISTOGRAMS
    assert "tritonop_reconcile_duration_seconds_bucket" in used
    assert used >= TRITON_METRICS | TRITON_GPU_METRICS
    # Stable and canary are told apart by the revision label.
    by_revision = [expr for _, expr in queries() if "nv_" in expr]
    assert by_revision and all("revision" in expr for expr in by_revision)


def test_success_rate_sums_failures_before_dividing() -> None:
    # nv_inference_request_failure carries an extra reason label: unsummed, it never matches.
    (expr,) = [expr for title, expr in queries() if title == "Success rate"]
    assert "sum by (namespace, inferenceservice, revision) (rate(nv_inference_request_failure" in expr


def test_unknown_metric_is_caught() -> None:
    assert series_names('rate(tritonop_made_up_total{name=~"$inferenceservice"}[$__rate_interval])') == {
        "tritonop_made_up_total"
    }
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(foo[5m])")


def test_operator_metric_names_match_the_operator_registry() -> None:
    from tritonop.metrics import REGISTRY

    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    exported = {
        f"{family.name}{suffix}"
        for family in REGISTRY.collect()
        if family.name.startswith("tritonop_")
        for suffix in suffixes[family.type]
    }
    assert exported == (KNOWN_SERIES - TRITON_METRICS - TRITON_GPU_METRICS)


def podmonitor_labels() -> set[str]:
    """The labels the chart's Triton PodMonitor puts on every Triton series."""
    template = (CHART_DIR / "templates" / "podmonitor-triton.yaml").read_text()
    return set(re.findall(r"targetLabel:\s*(\w+)", template))


def aggregations(expr: str) -> list[promql_parser.AggregateExpr]:
    found: list[promql_parser.AggregateExpr] = []
    promql_parser.walk(
        promql_parser.parse(substitute_variables(expr)),
        lambda node: found.append(node) if isinstance(node, promql_parser.AggregateExpr) else None,
    )
    return found


def test_gpu_panels_show_each_pod_of_each_revision_by_the_podmonitors_labels() -> None:
    labels = podmonitor_labels()
    assert labels == {"namespace", "inferenceservice", "revision", "pod"}
    gpu = [(title, expr) for title, expr in queries() if series_names(expr) & TRITON_GPU_METRICS]
    assert {name for _, expr in gpu for name in series_names(expr)} == TRITON_GPU_METRICS
    for title, expr in gpu:
        (aggregation,) = aggregations(expr)
        # One line per pod, grouped only by labels the PodMonitor gives (gpu_uuid is summed away).
        assert set(aggregation.modifier.labels) == labels, title
        selector = aggregation.expr
        assert isinstance(selector, promql_parser.VectorSelector), title
        assert {m.name for m in selector.matchers.matchers} == {"namespace", "inferenceservice"}, title
    memory = {expr for title, expr in gpu if title == "GPU memory used and total"}
    assert {next(iter(series_names(expr))) for expr in memory} == {
        "nv_gpu_memory_used_bytes",
        "nv_gpu_memory_total_bytes",
    }
