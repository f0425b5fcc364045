"""Sequential analysis in the real Controller: direct metrics judged every tick (FakeDirect)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.controller_harness import NAME, Harness, model_spec
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}


def rev(spec: dict[str, Any], h: Harness) -> str:
    return revision_of(InferenceServiceSpec.model_validate(spec), h.config.triton_image)


async def canary_at_first_step(analysis: dict[str, Any] | None = None) -> tuple[Harness, str, str]:
    rollout = {"steps": [20, 50], "interval": "10s", "failureThreshold": 2, "analysis": analysis or {}}
    v1_spec = model_spec(traffic=GATEWAY, rollout=rollout)
    v2_spec = model_spec("s3://models/v2", traffic=GATEWAY, rollout=rollout)
    h = Harness(T0)
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()  # the gate opens: step 1 at 20%
    v1, v2 = rev(v1_spec, h), rev(v2_spec, h)
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    return h, v1, v2


async def test_a_conclusively_failing_canary_is_rolled_back_at_the_next_tick_not_at_the_interval() -> None:
    h, v1, v2 = await canary_at_first_step()
    h.direct.mode = "fail"
    h.advance(1)  # far from the 10 s interval
    await h.tick()
    status = h.status()
    assert status["phase"] == "RolledBack"
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert h.reasons().count("AnalysisFailed") == 0  # no failureThreshold to wait for
    assert status["message"].startswith(
        f"rolled back revision {v2}: successRate: 500 of 1000 canary requests failed (50%): conclusively more than "
        "the 1% a success rate of 0.99 allows"
    )
    assert not h.prometheus.queries  # judged without Prometheus


async def test_a_healthy_canary_still_dwells_each_interval_and_shows_its_evidence() -> None:
    h, _, v2 = await canary_at_first_step()
    h.direct.mode = "pass"
    h.advance(5)
    await h.tick()
    assert h.status()["canary"]["step"] == 0  # Pass evidence does not shorten the step
    h.advance(5)
    await h.tick()
    canary = h.status()["canary"]
    assert canary["step"] == 1
    (check,) = canary["lastAnalysis"]
    assert check["source"] == "direct" and check["result"] == "Pass"
    evidence = check["evidence"]
    assert evidence["decision"] == "Pass" and evidence["canaryRequests"] == 1000 and evidence["canaryFailures"] == 0
    assert evidence["threshold"] == 1000 and evidence["statistic"] < 1
    assert 0.01 < evidence["detectable"] < 0.04  # 1000 requests catch ~3% failures with 80% power
    h.advance(10)
    await h.tick()
    assert h.status()["stableRevision"] == v2


async def test_unreachable_pods_fall_back_to_prometheus_in_auto() -> None:
    h, _, _ = await canary_at_first_step()
    h.direct.mode = "off"
    h.prometheus.mode = "fail"
    h.advance(10)
    await h.tick()
    assert h.reasons().count("AnalysisFailed") == 1  # interval judging, failureThreshold 2
    assert h.status()["canary"]["lastAnalysis"][0]["source"] == "prometheus"


async def test_source_direct_never_reads_prometheus_and_holds_without_data() -> None:
    h, _, _ = await canary_at_first_step({"source": "direct"})
    h.direct.mode = "off"
    h.advance(10)
    await h.tick()
    status = h.status()
    assert status["phase"] == "Progressing" and "AnalysisNoData" in h.reasons()
    (check,) = status["canary"]["lastAnalysis"]
    assert check["result"] == "Error" and "direct metrics incomplete: pod" in check["message"]
    assert not h.prometheus.queries


async def test_interval_mode_judges_as_before_and_reads_no_pods() -> None:
    h, _, _ = await canary_at_first_step({"mode": "interval"})
    h.direct.mode = "fail"
    samples = h.direct.samples
    h.advance(1)
    await h.tick()
    assert h.status()["phase"] == "Progressing" and h.direct.samples == samples
    h.advance(9)
    await h.tick()
    assert h.status()["canary"]["lastAnalysis"][0]["source"] == "prometheus"


async def test_a_paused_canary_is_not_rolled_back_by_a_conclusive_failure() -> None:
    h, _, _ = await canary_at_first_step()
    h.direct.mode = "fail"
    spec = h.body()["spec"]
    spec["rollout"]["paused"] = True
    h.apply(spec)
    await h.reconcile()
    h.advance(1)
    await h.tick()
    assert h.status()["phase"] == "Progressing"
