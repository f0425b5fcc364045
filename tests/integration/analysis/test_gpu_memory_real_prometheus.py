"""The gpuMemory checks against a real Prometheus, and read directly from the same pods.

No GPU runs here, so each "Triton pod" is a local HTTP exporter serving Triton's metrics text
with GPU gauges (tests/support/gpu_exporter.py stands in for Triton's GPU metrics):

- stable1: one pod, one GPU at 10 GiB;
- big: pod big-0 with two GPUs at 6 GiB each (12 GiB, the worst pod) and pod big-1 at 8 GiB;
- small: one pod at 9 GiB;
- cpu: one pod exporting Triton's counters and no GPU metric (Triton on CPU).

Prometheus scrapes them with the labels the chart's PodMonitor gives (namespace,
inferenceservice, revision, pod); analyse() judges as the operator does. DirectMetrics reads
the same exporters over HTTP, as the operator reads pods' port 8002.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_kube import FakeKube
from tests.support.gpu_exporter import GIB, MetricsExporter, triton_metrics_text
from tests.support.prometheus import PrometheusServer, ScrapeTarget, prometheus_binary
from tritonop.analysis import PrometheusClient, analyse
from tritonop.analysis.checks import AnalysisOutcome
from tritonop.analysis.direct import judge_direct
from tritonop.api.models import Analysis
from tritonop.children import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.controller.direct_metrics import DirectMetrics
from tritonop.endpoints import TritonEndpoints

pytestmark = [pytest.mark.prometheus]

NAMESPACE, ISVC, MODEL = "ml", "resnet", "resnet50"
CONFIG = OperatorConfig()
WINDOW_S = 30.0
# revision -> pod -> each GPU's memory in use
PODS: dict[str, dict[str, list[float]]] = {
    "stable1": {"stable1-0": [10 * GIB]},
    "big": {"big-0": [6 * GIB, 6 * GIB], "big-1": [8 * GIB]},
    "small": {"small-0": [9 * GIB]},
    "cpu": {"cpu-0": []},
}
GPU_SERIES = sum(len(gpus) for pods in PODS.values() for gpus in pods.values())
# Judge only GPU memory: no request-count gate, no success-rate check.
ONLY_GPU: dict[str, Any] = {"successRate": {"enabled": False}, "minRequests": 0}


@dataclass(frozen=True)
class Scraped:
    prometheus_url: str
    exporters: dict[str, MetricsExporter]  # pod -> its exporter
    at: datetime


def instant_value(prometheus_url: str, promql: str) -> float | None:
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5.0) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    prometheus_binary()  # skip before starting anything when Prometheus is missing
    with ExitStack() as stack:
        exporters: dict[str, MetricsExporter] = {}
        targets = []
        for revision, pods in PODS.items():
            for pod, gpus in pods.items():
                exporter = stack.enter_context(MetricsExporter(triton_metrics_text(gpus, model=MODEL, pod=pod)))
                exporters[pod] = exporter
                labels = {"namespace": NAMESPACE, "inferenceservice": ISVC, "revision": revision, "pod": pod}
                targets.append(ScrapeTarget(exporter.address, labels))
        prometheus = stack.enter_context(PrometheusServer(targets))
        for target in targets:
            prometheus.wait_for_target(target.address)
        deadline = time.monotonic() + 15
        while instant_value(prometheus.url, "count(nv_gpu_memory_used_bytes)") != GPU_SERIES:
            assert time.monotonic() < deadline, "Prometheus did not store every GPU series"
            time.sleep(0.2)
        yield Scraped(prometheus.url, exporters, datetime.now(UTC))


async def judge(scraped: Scraped, gpu_memory: dict[str, Any], *, canary: str, stable: str) -> AnalysisOutcome:
    async with PrometheusClient(scraped.prometheus_url, timeout_s=CONFIG.prometheus_timeout_seconds) as client:
        return await analyse(
            client,
            Analysis.model_validate({**ONLY_GPU, "gpuMemory": gpu_memory}),
            namespace=NAMESPACE,
            name=ISVC,
            model=MODEL,
            canary_revision=canary,
            stable_revision=stable,
            window_s=WINDOW_S,
            config=CONFIG,
            at=scraped.at,
        )


async def test_canary_over_max_bytes_fails_on_its_worst_pod(scraped: Scraped) -> None:
    outcome = await judge(scraped, {"maxBytes": "11Gi"}, canary="big", stable="stable1")
    assert outcome.verdict == "Fail", outcome.checks
    (check,) = outcome.checks
    # big-0's two GPUs summed (12 GiB), not big-1 (8 GiB) nor one GPU (6 GiB).
    assert (check.name, check.result, check.value, check.bound) == ("gpuMemory", "Fail", 12.0, "<= 11GiB")
    assert check.message == "canary GPU memory per pod 12GiB is above the maximum 11GiB"


async def test_canary_within_max_bytes_passes(scraped: Scraped) -> None:
    outcome = await judge(scraped, {"maxBytes": 10 * GIB}, canary="small", stable="stable1")
    assert outcome.verdict == "Pass", outcome.checks
    assert [(c.name, c.value, c.bound) for c in outcome.checks] == [("gpuMemory", 9.0, "<= 10GiB")]


async def test_increase_over_the_stable_beyond_the_percentage_fails(scraped: Scraped) -> None:
    outcome = await judge(scraped, {"maxIncreasePercent": 10}, canary="big", stable="stable1")
    assert outcome.verdict == "Fail", outcome.checks
    (check,) = outcome.checks
    assert (check.name, check.result, check.value, check.bound) == ("gpuMemoryVsStable", "Fail", 20.0, "<= 10%")
    assert check.message == "canary GPU memory per pod 12GiB vs stable 10GiB: 20% more, more than the allowed 10%"
    within = await judge(scraped, {"maxIncreasePercent": 10}, canary="small", stable="stable1")
    assert within.verdict == "Pass" and within.checks[0].value == -10.0, within.checks


async def test_canary_without_gpu_metrics_is_no_data_and_says_why(scraped: Scraped) -> None:
    outcome = await judge(scraped, {"maxBytes": "20Gi", "maxIncreasePercent": 10}, canary="cpu", stable="stable1")
    assert outcome.verdict == "NoData"
    assert [c.result for c in outcome.checks] == ["NoData", "NoData"]
    assert outcome.checks[0].message.startswith("canary GPU memory per pod: no data: query returned no series; ")
    assert all("triton.gpus is above 0" in c.message for c in outcome.checks)


async def test_direct_reads_of_the_same_pods_fail_at_the_second_sample_over_the_bound(
    scraped: Scraped, tmp_path: Path
) -> None:
    kube = FakeKube()
    mapping = {}
    for index, (revision, pods) in enumerate(PODS.items()):
        for number, pod in enumerate(pods):
            kube.put(running_pod(pod, revision, f"10.0.{index}.{number}"))
            mapping[f"{NAMESPACE}/pod/{pod}/metrics"] = scraped.exporters[pod].url
    endpoints_file = tmp_path / "endpoints.json"
    endpoints_file.write_text(json.dumps(mapping))
    direct = DirectMetrics(kube, TritonEndpoints("http://unused", str(endpoints_file)))  # type: ignore[arg-type]
    ref = IsvcRef(namespace=NAMESPACE, name=ISVC, uid="u1")
    spec = Analysis.model_validate({**ONLY_GPU, "gpuMemory": {"maxBytes": "11Gi", "maxIncreasePercent": 10}})
    try:
        first = await direct.sample(ref, (MODEL,), "big", "stable1")
        assert first.complete, first.problem
        held = judge_direct(spec, first.tally)
        assert held.verdict == "NoData" and not held.conclusive_failure
        assert [c.value for c in held.checks] == [12.0, 20.0]
        second = await direct.sample(ref, (MODEL,), "big", "stable1")
        failed = judge_direct(spec, second.tally)
        assert failed.conclusive_failure
        assert [(c.name, c.result, c.source) for c in failed.checks] == [
            ("gpuMemory", "Fail", "direct"),
            ("gpuMemoryVsStable", "Fail", "direct"),
        ]
        assert failed.checks[0].message.endswith("above the maximum 11GiB, at 2 samples in a row")
        small = await direct.sample(ref, (MODEL,), "small", "stable1")
        assert judge_direct(spec, small.tally).verdict == "Pass"
        cpu = await direct.sample(ref, (MODEL,), "cpu", "stable1")
        no_gpu = judge_direct(spec, cpu.tally)
        assert cpu.complete and no_gpu.verdict == "NoData"
        assert no_gpu.checks[0].message.startswith("canary GPU memory per pod: no data: no canary pod reported ")
    finally:
        await direct.aclose()


def running_pod(name: str, revision: str, ip: str) -> dict[str, Any]:
    labels = {"serving.tritonop.dev/inferenceservice": ISVC, "serving.tritonop.dev/revision": revision}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}", "labels": labels},
        "status": {"phase": "Running", "podIP": ip},
    }
