"""The real Controller judging a canary of several models (model.models): each model's metrics are
read, the worst model decides, and status names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.controller_harness import NAME, Harness, model_spec
from tritonop.analysis.result import QueryResult
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import IsvcRef, revision_of
from tritonop.controller.direct_metrics import DirectSample

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
MODELS = ["pre", "post", "pipeline"]


@dataclass
class PostFailsOnPrometheus:
    """Prometheus where every model is healthy but "post", which fails half its requests."""

    queries: list[str] = field(default_factory=list)

    async def for_url(self, url: str) -> PostFailsOnPrometheus:
        return self

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        self.queries.append(promql)
        if " / (" in promql:  # success rate
            return QueryResult.of(0.5 if 'model="post"' in promql else 1.0)
        return QueryResult.of(1000.0)  # request count

    async def aclose(self) -> None:
        pass


@dataclass
class PostFailsDirectly:
    """Direct metrics where "post" fails half its 1000 canary requests, and every other model none."""

    asked: list[tuple[str, ...]] = field(default_factory=list)

    async def sample(self, ref: IsvcRef, models: tuple[str, ...], canary: str, stable: str) -> DirectSample:
        self.asked.append(models)
        tallies = {}
        for model in models:
            tally = DirectTally(canary, stable)
            failures = 500 if model == "post" else 0
            tally.canary.total = PodCounters(success=1000 - failures, failure=failures)
            tally.stable.total = PodCounters(success=10_000)
            tallies[model] = tally
        return DirectSample(tallies[models[0]], complete=True, tallies=tallies)

    def forget(self, namespace: str, name: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def canary_at_first_step(analysis: dict[str, Any]) -> tuple[Harness, str]:
    rollout = {"steps": [20, 50], "interval": "10s", "failureThreshold": 1, "analysis": analysis}
    model = {"storageUri": "s3://models/v1", "models": MODELS}
    v1_spec = model_spec(traffic=GATEWAY, rollout=rollout, model=model)
    v2_spec = model_spec(traffic=GATEWAY, rollout=rollout, model={**model, "storageUri": "s3://models/v2"})
    h = Harness(T0)
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()  # the gate opens: step 1 at 20%
    v2 = revision_of(InferenceServiceSpec.model_validate(v2_spec), h.config.triton_image)
    assert h.status()["canaryRevision"] == v2
    return h, v2


async def test_interval_analysis_queries_every_model_and_names_the_worst() -> None:
    h, v2 = await canary_at_first_step({"mode": "interval"})
    prometheus = PostFailsOnPrometheus()
    h.controller.prometheus = prometheus  # type: ignore[assignment]
    h.advance(10)
    await h.tick()
    for model in MODELS:
        assert any(f'model="{model}"' in q for q in prometheus.queries), model
    status = h.status()
    assert status["phase"] == "RolledBack"
    assert status["message"].startswith(f"rolled back revision {v2}: successRate[post] 0.5 < 0.99")


async def test_sequential_analysis_reads_every_model_and_rolls_back_on_the_worst() -> None:
    h, v2 = await canary_at_first_step({})
    direct = PostFailsDirectly()
    h.controller.direct = direct  # type: ignore[assignment]
    h.advance(1)
    await h.tick()
    assert direct.asked == [tuple(MODELS)]
    status = h.status()
    assert status["phase"] == "RolledBack" and h.route_weights() == {f"{NAME}-{status['stableRevision']}": 100}
    assert status["message"].startswith(
        f"rolled back revision {v2}: successRate[post]: 500 of 1000 canary requests failed (50%)"
    )
    assert "(worst of 3 models)" in status["message"]
