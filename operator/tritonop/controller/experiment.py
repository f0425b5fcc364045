"""rollout.strategy Experiment at the edge: every variant's figures from Prometheus.

Each tick (orchestrator ``_tick``, after the machine decided): when figures are due
(``rollout.experiment.figures_due``: every interval while the experiment runs, once more at
its end), query Prometheus for every variant (A, B and any beyond) over the experiment's window so
far and each one's paired latency differences with A (``analysis.experiment``), then let the pure
``rollout.experiment.follow`` tell the decision as the experiment's and build
``status.experiment``. A failed fetch is retried after an interval, never on every tick.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from tritonop.analysis.checks import QueryClient
from tritonop.analysis.experiment import (
    ExperimentFigures,
    compare,
    figures,
    latency_step_s,
    paired_latency,
    paired_latency_queries,
    variant_queries,
)
from tritonop.analysis.prometheus import PrometheusClients
from tritonop.analysis.promql import RevisionSeries
from tritonop.api.models import ExperimentStatus, InferenceServiceSpec, RolloutStrategy
from tritonop.children.names import triton_models
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.rollout import Decision, RolloutPolicy, RolloutState
from tritonop.rollout.experiment import figures_due, follow
from tritonop.timestamps import parse_time


@dataclass(frozen=True)
class ExperimentTick:
    """The decision as the experiment tells it, and the ``status.experiment`` to store with it."""

    decision: Decision
    status: ExperimentStatus | None


class Experiments:
    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self._tried: dict[tuple[str, str], datetime] = {}  # last failed fetch, per object

    async def decide(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        before: RolloutState,
        decision: Decision,
        record: ExperimentStatus | None,
        prometheus: PrometheusClients,
        now: datetime,
    ) -> ExperimentTick | None:
        """None when there is no experiment to tell of (status.experiment is left as it is)."""
        experiment = spec.rollout.experiment if spec.rollout.strategy == RolloutStrategy.experiment else None
        if experiment is None and record is None:
            return None
        interval_s = RolloutPolicy.from_spec(spec.rollout).interval_s
        at = figures_due(record, now, interval_s)
        tried = self._tried.get((ref.namespace, ref.name))
        fetched = None
        if (
            at is not None
            and experiment is not None
            and (tried is None or now - tried >= timedelta(seconds=interval_s))
        ):
            assert record is not None and record.started_at is not None
            url = spec.rollout.analysis.prometheus_url or self.config.prometheus_url
            client = await prometheus.for_url(url)
            fetched = await self._fetch(client, ref, spec, record, at, interval_s)
            if fetched.complete:
                self._tried.pop((ref.namespace, ref.name), None)
            else:
                self._tried[(ref.namespace, ref.name)] = now
        told, status = follow(record, before, decision, experiment, now, figures=fetched)
        return ExperimentTick(told, status)

    def forget(self, namespace: str, name: str) -> None:
        self._tried.pop((namespace, name), None)

    async def _fetch(
        self,
        client: QueryClient,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        record: ExperimentStatus,
        at: datetime,
        interval_s: float,
    ) -> ExperimentFigures:
        assert spec.rollout.experiment is not None and record.started_at is not None
        revisions = {v.name: v.revision for v in record.variants}
        model = triton_models(ref, spec)[0]
        series = {
            name: RevisionSeries(ref.namespace, ref.name, revision, model) for name, revision in revisions.items()
        }
        a = series["A"]
        window_s = (at - parse_time(record.started_at)).total_seconds()
        metrics = spec.rollout.experiment.metrics
        queries = {name: variant_queries(s, metrics, window_s, self.config) for name, s in series.items()}
        step_s = latency_step_s(window_s, interval_s)
        others = [name for name in series if name != "A"]  # B first, then the variants beyond it
        paired = {name: paired_latency_queries(a, series[name], window_s, step_s, self.config) for name in others}
        asked = [*(q for v in queries.values() for q in v.all()), *(q for p in paired.values() for q in p.all())]
        distinct = list(dict.fromkeys(asked))
        answers = dict(zip(distinct, await asyncio.gather(*(client.query(q, at) for q in distinct)), strict=True))
        figured = {name: figures(q, answers) for name, q in queries.items()}
        comparison = [
            c
            for name in others
            for c in compare(
                figured["A"],
                figured[name],
                paired_latency(paired[name], answers, step_s),
                variant=name,
                compared=len(others),
            )
        ]
        beyond = {name: f for name, f in figured.items() if name not in ("A", "B")}
        return ExperimentFigures(at, figured["A"], figured["B"], comparison, beyond)
