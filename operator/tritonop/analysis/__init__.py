"""Canary analysis: PromQL for a revision's Triton series, a Prometheus client, check evaluation."""

from tritonop.analysis.checks import AnalysisOutcome, analyse
from tritonop.analysis.prometheus import PrometheusClient
from tritonop.analysis.result import QueryResult

__all__ = ["AnalysisOutcome", "PrometheusClient", "QueryResult", "analyse"]
