"""One analysis of a canary step: plan the checks, run their queries, judge the results.

Planning and judging are pure (``plan``, ``judge``); ``analyse`` only runs queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from tritonop.analysis import promql
from tritonop.analysis.judge import (
    GIB,
    Bound,
    combine,
    compare_gpu_memory,
    compare_latency,
    compare_success_rate,
    judge,
    judge_gpu_memory,
    unjudged,
)
from tritonop.analysis.promql import RevisionSeries, TemplateError
from tritonop.analysis.result import QueryResult
from tritonop.api.models import Analysis, CheckResult, Verdict
from tritonop.config import OperatorConfig

SUCCESS_RATE = "successRate"
LATENCY = "latency"
SUCCESS_RATE_VS_STABLE = "successRateVsStable"
LATENCY_VS_STABLE = "latencyVsStable"
GPU_MEMORY = "gpuMemory"
GPU_MEMORY_VS_STABLE = "gpuMemoryVsStable"


class QueryClient(Protocol):
    async def query(self, promql: str, at: datetime | None = None) -> QueryResult: ...


@dataclass(frozen=True)
class AnalysisOutcome:
    """The verdict, every check's result in status order, and the canary's requests in the window."""

    verdict: Verdict
    checks: list[CheckResult]
    canary_requests: float | None


@dataclass(frozen=True)
class PlannedCheck:
    """A check with the queries it needs; decide turns their results (same order) into a CheckResult."""

    name: str
    bound: Bound
    queries: tuple[str, ...]
    decide: Callable[[Sequence[QueryResult]], CheckResult]


def plan(
    spec: Analysis, canary: RevisionSeries, stable: RevisionSeries | None, window_s: float, config: OperatorConfig
) -> list[PlannedCheck]:
    """The checks spec asks for, in status order: built-ins, comparisons, GPU memory, then custom checks."""
    checks: list[PlannedCheck] = []
    if spec.success_rate is not None:
        bound = Bound(min=spec.success_rate.min)
        query = promql.success_rate(canary, window_s, config)
        checks.append(
            PlannedCheck(SUCCESS_RATE, bound, (query,), partial(_single, SUCCESS_RATE, "success rate", bound, 4))
        )
    if spec.latency is not None:
        bound = Bound(max=spec.latency.max_ms, unit="ms")
        quantile = spec.latency.quantile
        if quantile is None:
            subject, query = "mean latency", promql.mean_latency_ms(canary, window_s, config)
        else:
            subject = f"p{format(quantile * 100, '.6g')} latency"
            query = promql.quantile_latency_ms(canary, quantile, window_s, config)
        checks.append(PlannedCheck(LATENCY, bound, (query,), partial(_single, LATENCY, subject, bound, 2)))
    comparative = spec.comparative
    max_drop = comparative.max_success_rate_drop if comparative else None
    max_increase = comparative.max_latency_increase_percent if comparative else None
    comparisons = (
        (SUCCESS_RATE_VS_STABLE, max_drop, "", promql.success_rate, compare_success_rate),
        (LATENCY_VS_STABLE, max_increase, "%", promql.mean_latency_ms, compare_latency),
    )
    for check_name, limit, unit, render, compare in comparisons:
        if limit is None:
            continue
        bound = Bound(max=limit, unit=unit)
        if stable is None:
            missing = unjudged(check_name, "NoData", bound, "no stable revision to compare with")
            checks.append(PlannedCheck(check_name, bound, (), partial(_fixed, missing)))
            continue
        queries = (render(canary, window_s, config), render(stable, window_s, config))
        checks.append(PlannedCheck(check_name, bound, queries, partial(_pair, compare, check_name, limit)))
    checks.extend(_gpu_memory_checks(spec, canary, stable, window_s, config))
    for custom in spec.checks:
        bound = Bound(min=custom.min, max=custom.max)
        try:
            query = promql.render_custom(custom.query, canary, window_s, config)
        except TemplateError as exc:
            failure = unjudged(custom.name, "Error", bound, f"{custom.name}: {exc}")
            checks.append(PlannedCheck(custom.name, bound, (), partial(_fixed, failure)))
            continue
        checks.append(
            PlannedCheck(custom.name, bound, (query,), partial(_single, custom.name, custom.name, bound, None))
        )
    return checks


def _gpu_memory_checks(
    spec: Analysis, canary: RevisionSeries, stable: RevisionSeries | None, window_s: float, config: OperatorConfig
) -> list[PlannedCheck]:
    gpu = spec.gpu_memory
    checks: list[PlannedCheck] = []
    if gpu is None:
        return checks
    max_bytes = gpu.max_bytes_value
    if max_bytes is not None:
        bound = Bound(max=max_bytes / GIB, unit="GiB")
        query = promql.gpu_memory_bytes(canary, window_s, config)
        checks.append(PlannedCheck(GPU_MEMORY, bound, (query,), partial(_gpu_memory, max_bytes)))
    if gpu.max_increase_percent is not None:
        bound = Bound(max=gpu.max_increase_percent, unit="%")
        if stable is None:
            missing = unjudged(GPU_MEMORY_VS_STABLE, "NoData", bound, "no stable revision to compare with")
            checks.append(PlannedCheck(GPU_MEMORY_VS_STABLE, bound, (), partial(_fixed, missing)))
        else:
            queries = tuple(promql.gpu_memory_bytes(side, window_s, config) for side in (canary, stable))
            compare = partial(_pair, compare_gpu_memory, GPU_MEMORY_VS_STABLE, gpu.max_increase_percent)
            checks.append(PlannedCheck(GPU_MEMORY_VS_STABLE, bound, queries, compare))
    return checks


def gate(
    checks: Sequence[PlannedCheck], requests: QueryResult, min_requests: int
) -> tuple[Verdict, list[CheckResult]] | None:
    """The verdict and every check's result when the canary's request count forbids judging, else None."""
    if requests.status == "error":
        message = f"request count: query failed: {requests.message}"
        return "Error", [unjudged(c.name, "Error", c.bound, message) for c in checks]
    if requests.value is None:
        message = f"request count: no data: {requests.message}"
        return "NoData", [unjudged(c.name, "NoData", c.bound, message) for c in checks]
    if requests.value < min_requests:
        message = f"{round(requests.value)} requests < minRequests {min_requests}"
        return "NoData", [unjudged(c.name, "NoData", c.bound, message) for c in checks]
    return None


def _single(name: str, subject: str, bound: Bound, digits: int | None, results: Sequence[QueryResult]) -> CheckResult:
    return judge(name, subject, results[0], bound, digits)


def _pair(
    compare: Callable[[str, QueryResult, QueryResult, float], CheckResult],
    name: str,
    limit: float,
    results: Sequence[QueryResult],
) -> CheckResult:
    canary, stable = results
    return compare(name, canary, stable, limit)


def _gpu_memory(max_bytes: float, results: Sequence[QueryResult]) -> CheckResult:
    return judge_gpu_memory(GPU_MEMORY, results[0], max_bytes)


def _fixed(result: CheckResult, _results: Sequence[QueryResult]) -> CheckResult:
    return result


async def analyse(
    client: QueryClient,
    spec_analysis: Analysis,
    *,
    namespace: str,
    name: str,
    model: str,
    canary_revision: str,
    stable_revision: str | None,
    window_s: float,
    config: OperatorConfig,
    at: datetime | None = None,
) -> AnalysisOutcome:
    """Judge the canary revision over the window ending at ``at`` (default: Prometheus' now).

    Without a stable revision, comparisons with it are NoData.
    """
    canary = RevisionSeries(namespace, name, canary_revision, model)
    stable = None if stable_revision is None else RevisionSeries(namespace, name, stable_revision, model)
    checks = plan(spec_analysis, canary, stable, window_s, config)

    requests = await client.query(promql.request_count(canary, window_s, config), at)
    gated = gate(checks, requests, spec_analysis.min_requests)
    if gated is not None:
        verdict, results = gated
        return AnalysisOutcome(verdict, results, requests.value)

    # Each distinct query runs once, concurrently (comparisons reuse the canary's own queries).
    distinct = list(dict.fromkeys(q for check in checks for q in check.queries))
    answers = dict(zip(distinct, await asyncio.gather(*(client.query(q, at) for q in distinct)), strict=True))
    results = [check.decide([answers[q] for q in check.queries]) for check in checks]
    return AnalysisOutcome(combine(results), results, requests.value)
