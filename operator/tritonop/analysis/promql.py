"""PromQL for one revision's Triton series. Pure: strings in, strings out.

Triton exports per model (labels ``model``, ``version``):
- ``nv_inference_request_success`` and ``nv_inference_request_failure`` counters; failures
  carry an extra ``reason`` label (OTHER, BACKEND, CANCELED, REJECTED), so each side is
  summed before the two are combined, or the vectors would never match;
- ``nv_inference_request_duration_us``, a counter of the summed duration of successful
  requests;
- with ``--metrics-config summary_latencies=true``, the summary
  ``nv_inference_request_summary_us{quantile="0.5|0.9|0.95|0.99|0.999"}`` (those are
  Triton 2.51's default quantiles; others need ``--metrics-config summary_quantiles=...``).
  Its quantiles cover Triton's own sliding window, not the analysis window, so the query
  takes the worst value reported during the window.

Prometheus attaches the revision's pod labels under the names configured in
``OperatorConfig`` (``label_namespace``, ``label_isvc``, ``label_revision``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tritonop.config import OperatorConfig
from tritonop.durations import prometheus_duration

SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
DURATION_US = "nv_inference_request_duration_us"
SUMMARY_US = "nv_inference_request_summary_us"

PLACEHOLDERS = ("namespace", "name", "revision", "model", "interval", "selector")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    """A custom check query names a placeholder we do not know."""


@dataclass(frozen=True)
class RevisionSeries:
    """Identifies the Triton series of one model in one revision of an InferenceService."""

    namespace: str
    name: str
    revision: str
    model: str


def quote(value: str) -> str:
    """A PromQL double-quoted string literal holding value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def label_matchers(pairs: Iterable[tuple[str, str]]) -> str:
    """``label="value"`` equality matchers, comma-separated, without braces; each value quoted."""
    return ",".join(f"{label}={quote(value)}" for label, value in pairs)


def matchers(series: RevisionSeries, config: OperatorConfig) -> str:
    """The label matchers of the revision's series, comma-separated, without braces."""
    pairs = (
        (config.label_namespace, series.namespace),
        (config.label_isvc, series.name),
        (config.label_revision, series.revision),
        ("model", series.model),
    )
    return label_matchers(pairs)


def _increase(metric: str, selector: str, window: str) -> str:
    # An absent series (no failures ever recorded, or no traffic yet) counts as zero.
    return f"(sum(increase({metric}{{{selector}}}[{window}])) or vector(0))"


def request_count(series: RevisionSeries, window_s: float, config: OperatorConfig) -> str:
    """Requests (successful plus failed) the revision served in the window."""
    sel, window = matchers(series, config), prometheus_duration(window_s)
    return f"{_increase(SUCCESS, sel, window)} + {_increase(FAILURE, sel, window)}"


def success_rate(series: RevisionSeries, window_s: float, config: OperatorConfig) -> str:
    """Share of the window's requests that succeeded; NaN (no data) without requests."""
    sel, window = matchers(series, config), prometheus_duration(window_s)
    successes = _increase(SUCCESS, sel, window)
    return f"{successes} / ({successes} + {_increase(FAILURE, sel, window)})"


def mean_latency_ms(series: RevisionSeries, window_s: float, config: OperatorConfig) -> str:
    """Mean duration of the window's successful requests in milliseconds.

    The duration counter only accumulates successful requests, so it is divided by
    the success rate, not by all requests.
    """
    sel, window = matchers(series, config), prometheus_duration(window_s)
    return f"sum(rate({DURATION_US}{{{sel}}}[{window}])) / sum(rate({SUCCESS}{{{sel}}}[{window}])) / 1000"


def quantile_latency_ms(series: RevisionSeries, quantile: float, window_s: float, config: OperatorConfig) -> str:
    """The worst value of Triton's latency summary quantile seen in the window, in milliseconds.

    Quantiles cannot be averaged across pods, so the highest pod's value is taken.
    """
    sel, window = matchers(series, config), prometheus_duration(window_s)
    sel = f"{sel},quantile={quote(format(quantile, 'g'))}"
    return f"max(max_over_time({SUMMARY_US}{{{sel}}}[{window}])) / 1000"


def render_custom(template: str, series: RevisionSeries, window_s: float, config: OperatorConfig) -> str:
    """Fill a custom check's placeholders.

    ``{{selector}}`` becomes the matchers without braces, so a query reads
    ``metric{ {{selector}} }`` or adds matchers: ``metric{ {{selector}}, reason="BACKEND" }``.
    ``{{interval}}`` is the window as a Prometheus duration (``60s``). The other
    placeholders are raw values for use inside quotes or label_replace.
    """
    values = {
        "namespace": series.namespace,
        "name": series.name,
        "revision": series.revision,
        "model": series.model,
        "interval": prometheus_duration(window_s),
        "selector": matchers(series, config),
    }

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            known = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
            raise TemplateError(f"unknown placeholder {{{{{key}}}}}; known: {known}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)


# ---------------------------------------------------------------- GPU memory (per pod, not per model)

GPU_MEMORY_USED = "nv_gpu_memory_used_bytes"


def pod_matchers(series: RevisionSeries, config: OperatorConfig) -> str:
    """The revision's matchers without ``model``: Triton's GPU metrics are per GPU (``gpu_uuid``)."""
    pairs = (
        (config.label_namespace, series.namespace),
        (config.label_isvc, series.name),
        (config.label_revision, series.revision),
    )
    return label_matchers(pairs)


def gpu_memory_bytes(series: RevisionSeries, window_s: float, config: OperatorConfig) -> str:
    """The GPU memory of the revision's worst pod in bytes: each GPU's highest level in the
    window, summed over the pod's GPUs (a pod is its ``pod`` and ``instance`` labels), the
    highest pod. The model is not part of it: the memory is the whole server's."""
    sel, window = pod_matchers(series, config), prometheus_duration(window_s)
    return f"max(sum by (pod, instance) (max_over_time({GPU_MEMORY_USED}{{{sel}}}[{window}])))"
