"""gpuMemory in the real Controller's sequential analysis (pods' GPU memory levels read every
tick), and DirectMetrics' in-place samples, whose canary pod holds both versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.controller_harness import NAME, Harness, model_spec
from tests.support.fake_kube import FakeKube
from tests.support.gpu_exporter import triton_metrics_text
from tritonop.analysis.direct import judge_direct
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.api.models import Analysis, InferenceServiceSpec
from tritonop.children import IsvcRef, revision_of
from tritonop.controller.direct_metrics import DirectMetrics, DirectSample
from tritonop.endpoints import TritonEndpoints

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GIB = 2**30
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
ANALYSIS = {"successRate": {"enabled": False}, "gpuMemory": {"maxBytes": "10Gi"}}


@dataclass
class GpuPods:
    """Direct metrics from one canary and one stable pod whose GPU memory the test sets."""

    canary_bytes: float
    stable_bytes: float = 8 * GIB
    tallies: dict[tuple[str, str], DirectTally] = field(default_factory=dict)

    async def sample(self, ref: IsvcRef, models: tuple[str, ...], canary: str, stable: str) -> DirectSample:
        tally = self.tallies.setdefault((canary, stable), DirectTally(canary, stable))
        pods = {"c-0": PodCounters()}, {"s-0": PodCounters()}
        tally.observe(*pods, {"c-0": self.canary_bytes}, {"s-0": self.stable_bytes})
        return DirectSample(tally, complete=True, tallies={models[0]: tally})

    def forget(self, namespace: str, name: str) -> None:
        self.tallies.clear()

    async def aclose(self) -> None:
        pass


def rev(spec: dict[str, Any], h: Harness) -> str:
    return revision_of(InferenceServiceSpec.model_validate(spec), h.config.triton_image)


async def canary_at_first_step(pods: GpuPods) -> tuple[Harness, str, str]:
    rollout = {"steps": [20, 50], "interval": "10s", "failureThreshold": 2, "analysis": ANALYSIS}
    v1_spec = model_spec(traffic=GATEWAY, rollout=rollout, triton={"gpus": 1})
    v2_spec = model_spec("s3://models/v2", traffic=GATEWAY, rollout=rollout, triton={"gpus": 1})
    h = Harness(T0)
    h.direct = h.controller.direct = pods  # type: ignore[assignment]
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()  # the gate opens (step 1 at 20%); its sample is the first
    v1, v2 = rev(v1_spec, h), rev(v2_spec, h)
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    return h, v1, v2


async def test_a_canary_over_max_bytes_is_rolled_back_at_the_second_sample_over_it() -> None:
    h, v1, v2 = await canary_at_first_step(GpuPods(canary_bytes=12 * GIB))
    h.advance(1)  # far from the 10 s interval
    await h.tick()
    status = h.status()
    assert status["phase"] == "RolledBack"
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert h.reasons().count("AnalysisFailed") == 0  # no failureThreshold to wait for
    assert status["message"].startswith(f"rolled back revision {v2}: gpuMemory 12 > 10GiB")
    assert not h.prometheus.queries  # judged without Prometheus


async def test_a_canary_within_max_bytes_is_promoted_step_by_step() -> None:
    h, _, v2 = await canary_at_first_step(GpuPods(canary_bytes=9 * GIB))
    h.advance(10)
    await h.tick()
    canary = h.status()["canary"]
    assert canary["step"] == 1
    (check,) = canary["lastAnalysis"]
    assert (check["name"], check["result"], check["value"], check["bound"], check["source"]) == (
        "gpuMemory",
        "Pass",
        9.0,
        "<= 10GiB",
        "direct",
    )
    h.advance(10)
    await h.tick()
    assert h.status()["stableRevision"] == v2


async def test_one_sample_over_the_bound_holds_the_canary_at_its_interval() -> None:
    pods = GpuPods(canary_bytes=9 * GIB)
    h, _, _ = await canary_at_first_step(pods)
    pods.canary_bytes = 11 * GIB
    h.advance(10)  # the interval is due at this one sample over the bound
    await h.tick()
    status = h.status()
    assert status["phase"] == "Progressing" and status["canary"]["step"] == 0
    (check,) = status["canary"]["lastAnalysis"]
    assert check["result"] == "NoData" and check["message"].endswith("at the latest sample; 2 samples in a row fail")
    assert h.reasons().count("AnalysisNoData") == 1


async def test_an_in_place_canary_pod_is_judged_on_its_gpu_memory_against_the_other_pods() -> None:
    kube = FakeKube()
    levels = {"10.0.0.1": 14 * GIB, "10.0.0.2": 10 * GIB}  # r-0 loaded the candidate next to the old version
    for name, ip in (("r-0", "10.0.0.1"), ("r-1", "10.0.0.2")):
        labels = {"serving.tritonop.dev/inferenceservice": NAME, "serving.tritonop.dev/revision": "rev"}
        meta = {"name": name, "namespace": "ml", "uid": f"uid-{name}", "labels": labels}
        kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": "Running", "podIP": ip}})

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=triton_metrics_text([levels[request.url.host]], model="resnet50"))

    transport = httpx.MockTransport(answer)
    direct = DirectMetrics(kube, TritonEndpoints("http://x"), transport=transport)  # type: ignore[arg-type]
    ref = IsvcRef(namespace="ml", name=NAME, uid="u1")
    spec = Analysis.model_validate({"successRate": {"enabled": False}, "gpuMemory": {"maxIncreasePercent": 20}})
    try:
        for _ in range(2):
            sample = await direct.sample_versions(ref, "resnet50", "rev", "r-0", "2", "1")
        assert sample.complete, sample.problem
        outcome = judge_direct(spec, sample.tally)
        assert outcome.conclusive_failure
        assert outcome.checks[0].message.startswith("canary GPU memory per pod 14GiB vs stable 10GiB: 40% more")
    finally:
        await direct.aclose()
