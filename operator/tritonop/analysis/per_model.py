"""Several models in one InferenceService (model.models): each judged on its own, the worst decides.

Triton labels its metrics by ``model``, so every check is judged once per model served, and
each check's result in status is the worst model's: Fail, then Error, then NoData, then the
one with the most evidence against it or nearest its bound. Its name carries the model
(``successRate[post]``, so rollback messages and Events name it too) and its message ends with
``(worst of 3 models)``; a check whose result is the same for every model (GPU memory is a
pod's, not a model's; a custom query that ignores ``{{model}}``) is shown as it is.

A model that served no request on either revision during the window (Prometheus) or since
sampling began (direct) is idle and not judged, unless every model is: nobody called it, so no
user saw it, and holding the rollout for it would hold it forever. A model with some requests
but fewer than minRequests holds the canary (NoData), as one model does.

Sequential judging splits ``alpha`` over the models as well as the checks, so the
false-rollback rate of all models' checks together stays at most ``alpha``. With one model
every result is exactly the one-model analysis'. Pure, except ``analyse_models``, which only
runs ``analyse`` per model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

from tritonop.analysis import promql
from tritonop.analysis.checks import AnalysisOutcome, QueryClient, analyse, plan
from tritonop.analysis.direct import DirectOutcome, judge_direct, sequential_checks
from tritonop.analysis.judge import Bound, combine, unjudged
from tritonop.analysis.promql import RevisionSeries
from tritonop.analysis.triton_metrics import DirectTally
from tritonop.api.models import Analysis, CheckResult
from tritonop.config import OperatorConfig

_SEVERITY = {"Fail": 0, "Error": 1, "NoData": 2, "Pass": 3}


def worst_per_check(by_model: Mapping[str, Sequence[CheckResult]], idle: Sequence[str] = ()) -> list[CheckResult]:
    """Each check's worst result over the models (every model's results list the same checks
    in the same order), its name suffixed with the model's when the models' results differ."""
    models = list(by_model)
    if len(models) == 1 and not idle:
        return list(by_model[models[0]])
    note = f"worst of {len(models)} model{'s' if len(models) > 1 else ''}"
    note += f"; idle: {', '.join(idle)}" if idle else ""
    worst = []
    for results in zip(*(by_model[m] for m in models), strict=True):
        if len(results) > 1 and all(r == results[0] for r in results):
            worst.append(results[0])
            continue
        i = min(range(len(results)), key=lambda i: _badness(results[i]))
        decided = results[i]
        message = f"{decided.message} ({note})" if decided.message else f"({note})"
        worst.append(decided.model_copy(update={"name": f"{decided.name}[{models[i]}]", "message": message}))
    return worst


def _badness(result: CheckResult) -> tuple[int, float, float]:
    """Smaller is worse: the verdict, then the evidence against the canary, then the value's
    nearness to its bound (a minimum: lower is worse; a maximum: higher is worse)."""
    statistic = result.evidence.statistic if result.evidence is not None else 0.0
    nearness = 0.0
    if result.value is not None and result.bound:
        if result.bound.startswith(">=") and "<=" not in result.bound:
            nearness = -result.value
        elif result.bound.startswith("<="):
            nearness = result.value
    return _SEVERITY[result.result], -statistic, -nearness


def _judged(models: Sequence[str], idle: Sequence[str]) -> tuple[list[str], list[str]]:
    """The models to judge and those left out as idle (all are judged when all are idle)."""
    active = [m for m in models if m not in idle]
    return (active, list(idle)) if active else (list(models), [])


# ---------------------------------------------------------------- direct (sequential)


def judge_direct_models(spec: Analysis, tallies: Mapping[str, DirectTally], *, power: bool = True) -> DirectOutcome:
    """``judge_direct`` per model, alpha split over the models, the worst result per check."""
    if not tallies:
        message = "no served model found in Triton's metrics"
        checks = [unjudged(name, "NoData", Bound(), message) for name in sequential_checks(spec)]
        return DirectOutcome("NoData", [c.model_copy(update={"source": "direct"}) for c in checks])
    if len(tallies) == 1:
        return judge_direct(spec, next(iter(tallies.values())), power=power)
    share = spec.model_copy(update={"alpha": spec.alpha / len(tallies)})
    idle = [m for m, t in tallies.items() if t.canary.requests == 0 and t.stable.requests == 0]
    judged, idle = _judged(list(tallies), idle)
    checks = worst_per_check({m: judge_direct(share, tallies[m], power=power).checks for m in judged}, idle)
    return DirectOutcome(combine(checks), checks)


# ---------------------------------------------------------------- Prometheus (per interval)


async def analyse_models(
    client: QueryClient,
    spec_analysis: Analysis,
    *,
    namespace: str,
    name: str,
    models: Sequence[str],
    canary_revision: str,
    stable_revision: str | None,
    window_s: float,
    config: OperatorConfig,
    at: datetime | None = None,
) -> AnalysisOutcome:
    """``analyse`` per model (concurrently), the worst result per check.

    No model (the canary's Triton could not list what it loaded, for ``"*"``) is an Error for
    every check: there is nothing to judge it on.
    """

    async def one(model: str) -> AnalysisOutcome:
        return await analyse(
            client,
            spec_analysis,
            namespace=namespace,
            name=name,
            model=model,
            canary_revision=canary_revision,
            stable_revision=stable_revision,
            window_s=window_s,
            config=config,
            at=at,
        )

    if not models:
        message = "cannot tell which models the canary serves: its Triton did not list them"
        planned = plan(spec_analysis, RevisionSeries(namespace, name, canary_revision, ""), None, window_s, config)
        return AnalysisOutcome("Error", [unjudged(c.name, "Error", c.bound, message) for c in planned], None)
    outcomes = dict(zip(models, await asyncio.gather(*(one(m) for m in models)), strict=True))
    if len(models) == 1:
        return outcomes[models[0]]
    idle: list[str] = []
    if stable_revision is not None:
        stable_counts = await asyncio.gather(
            *(
                client.query(
                    promql.request_count(RevisionSeries(namespace, name, stable_revision, m), window_s, config), at
                )
                for m in models
            )
        )
        idle = [
            m
            for m, counted in zip(models, stable_counts, strict=True)
            if outcomes[m].canary_requests == 0 and counted.value == 0
        ]
    judged, idle = _judged(models, idle)
    checks = worst_per_check({m: outcomes[m].checks for m in judged}, idle)
    requests = [outcomes[m].canary_requests for m in judged]
    total = None if any(r is None for r in requests) else sum(r for r in requests if r is not None)
    return AnalysisOutcome(combine(checks), checks, total)
