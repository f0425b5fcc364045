"""rollout.strategy Experiment in the real Controller (FakeKube, FakeTriton, FakePrometheus with
per-revision answers): status reports both variants' figures, the split is held past the
duration, the annotations pick the winner, and a B that breaks the SLO is still rolled back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.controller_harness import NAME, Harness, VariantAnswers, model_spec
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
KPI = 'sum(increase(orders_total{revision="{{revision}}"}[{{interval}}]))'
ROLLOUT = {
    "strategy": "Experiment",
    "interval": "10s",
    "failureThreshold": 2,
    "experiment": {"weight": 20, "duration": "60s", "metrics": [{"name": "orders", "query": KPI}]},
}
A_ANSWERS = VariantAnswers(requests=8000, success_rate=0.9995, latency_ms=10.0, metric=120)
B_ANSWERS = VariantAnswers(requests=2000, success_rate=0.995, latency_ms=14.0, metric=45)


def spec_of(uri: str) -> dict[str, Any]:
    return model_spec(uri, traffic=GATEWAY, rollout=ROLLOUT)


async def experiment_running(b: VariantAnswers = B_ANSWERS) -> tuple[Harness, str, str]:
    """v1 serving, v2 started as B and weighted (the gate opened), Prometheus answering per revision."""
    h = Harness(T0)
    v1_spec, v2_spec = spec_of("s3://models/v1"), spec_of("s3://models/v2")
    v1, v2 = (revision_of(InferenceServiceSpec.model_validate(s), h.config.triton_image) for s in (v1_spec, v2_spec))
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.prometheus.variants = {v1: A_ANSWERS, v2: b}
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()  # the gate opens: B gets 20%
    return h, v1, v2


async def test_status_reports_both_variants_figures_and_the_comparison() -> None:
    h, v1, v2 = await experiment_running()
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    assert h.status()["experiment"]["variants"] == [
        {"name": "A", "revision": v1, "weight": 80, "metrics": {}},
        {"name": "B", "revision": v2, "weight": 20, "metrics": {}},
    ]
    h.advance(10)
    await h.tick()  # an analysis: B passes its checks, and the figures are recorded

    experiment = h.status()["experiment"]
    assert experiment["resultsAt"] == "2026-11-30T12:00:10Z"
    assert experiment["variants"] == [
        {"name": "A", "revision": v1, "weight": 80, "requests": 8000, "successRate": 0.9995,
         "meanLatencyMs": 10.0, "metrics": {"orders": 120.0}},
        {"name": "B", "revision": v2, "weight": 20, "requests": 2000, "successRate": 0.995,
         "meanLatencyMs": 14.0, "metrics": {"orders": 45.0}},
    ]  # fmt: skip
    rate, latency = experiment["comparison"]
    assert rate["metric"] == "successRate" and rate["significant"] and rate["difference"] == -0.45
    assert rate["statement"].startswith("B's success rate is lower than A's by 0.45 points (95% CI -")
    assert latency["statement"].startswith("B's mean latency is higher than A's by 4 ms (95% CI +3.8")
    # The experiment's queries named each variant over its window so far, and the custom metric per variant.
    assert f'sum(increase(orders_total{{revision="{v2}"}}[10s]))' in h.prometheus.queries
    assert f'sum(increase(orders_total{{revision="{v1}"}}[10s]))' in h.prometheus.queries


async def test_the_split_is_held_past_the_duration_and_the_promote_annotation_picks_b() -> None:
    h, v1, v2 = await experiment_running()
    for _ in range(7):  # 70 s of passing analyses: a canary of one step would have been promoted
        h.advance(10)
        await h.tick()
    assert "Promoted" not in h.reasons()
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    experiment = h.status()["experiment"]
    assert experiment["concluded"] and experiment["resultsAt"] == experiment["endsAt"] == "2026-11-30T12:01:00Z"
    assert h.reasons().count("ExperimentConcluded") == 1
    assert h.status()["message"].startswith("experiment concluded at 2026-11-30T12:01:00Z; held at 20%")

    h.annotate({PROMOTE_ANNOTATION: v2})
    await h.tick()
    assert h.status()["stableRevision"] == v2 and "canaryRevision" not in h.status()
    assert h.route_weights() == {f"{NAME}-{v2}": 100}
    experiment = h.status()["experiment"]
    assert (experiment["winner"], experiment["ended"]) == ("B", True)
    assert [v["requests"] for v in experiment["variants"]] == [8000, 2000]  # the figures stay on show
    assert h.events[-1].reason == "Promoted" and "experiment decided for B" in h.events[-1].message


async def test_the_abort_annotation_picks_a_without_a_failure() -> None:
    h, v1, v2 = await experiment_running()
    h.advance(70)
    await h.tick()
    h.annotate({ABORT_ANNOTATION: v2})
    await h.tick()
    status = h.status()
    assert (status["phase"], status["stableRevision"], status["failedRevision"]) == ("Ready", v1, v2)
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert h.deployments()[f"{NAME}-{v2}"]["spec"]["replicas"] == 0
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert status["experiment"]["winner"] == "A"
    assert [e.type for e in h.events if e.reason in ("ExperimentDecided", "Aborted", "RolledBack")] == ["Normal"]
    # The spec still names B: it is not started again.
    await h.reconcile()
    assert "canaryRevision" not in h.status()


async def test_a_b_that_breaks_the_slo_is_rolled_back_and_the_experiment_ends_without_a_decision() -> None:
    failing = VariantAnswers(requests=2000, success_rate=0.5, latency_ms=14.0)
    h, v1, v2 = await experiment_running(failing)
    for _ in range(2):  # failureThreshold 2
        h.advance(10)
        await h.tick()
    status = h.status()
    assert (status["phase"], status["failedRevision"]) == ("RolledBack", v2)
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    experiment = status["experiment"]
    assert experiment["ended"] and "winner" not in experiment
    assert experiment["message"].startswith(f"ended without a decision: rolled back revision {v2}")
    assert experiment["variants"][1]["successRate"] == 0.5
