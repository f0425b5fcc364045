"""analyse() against a real Prometheus scraping two real Triton servers.

Revision "stable1" serves a healthy model; revision "canary1" serves the same model
failing 30% of requests, plus a model that sleeps 50 ms per request. Traffic is sent
once per module with tritonclient, then every test judges the same window ending at
the same instant, so the tests only differ in what they ask.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import tritonclient.http.aio as triton_http
from tritonclient.utils import InferenceServerException

from tests.support.prometheus import PrometheusServer, ScrapeTarget, prometheus_binary
from tests.support.triton import TritonServer, free_port, write_model
from tritonop.analysis import PrometheusClient, analyse
from tritonop.analysis.checks import AnalysisOutcome
from tritonop.analysis.per_model import analyse_models
from tritonop.api.models import Analysis
from tritonop.config import OperatorConfig

pytestmark = [pytest.mark.prometheus, pytest.mark.triton]

NAMESPACE, ISVC = "ml", "resnet"
STABLE, CANARY = "stable1", "canary1"
MODEL, SLOW_MODEL = "classifier", "slow"
CANARY_FAILURE_RATE = 0.3
SLOW_DELAY_MS = 50.0
LOAD_SECONDS, REQUESTS_PER_SECOND = 15.0, 20.0
CONFIG = OperatorConfig()


@dataclass(frozen=True)
class Load:
    """What one paced request loop sent to one model."""

    successes: int
    failures: int

    @property
    def total(self) -> int:
        return self.successes + self.failures


@dataclass(frozen=True)
class Traffic:
    prometheus_url: str
    at: datetime  # every analysis judges the window ending here ...
    window_s: float  # ... and reaching back to just before the load began
    loads: dict[tuple[str, str], Load]  # (revision, model) -> what was sent


async def paced_requests(http_port: int, model: str) -> Load:
    """REQUESTS_PER_SECOND requests for LOAD_SECONDS, one at a time, to 127.0.0.1 only."""
    successes = failures = 0
    client = triton_http.InferenceServerClient(url=f"127.0.0.1:{http_port}")
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(int(LOAD_SECONDS * REQUESTS_PER_SECOND)):
            await asyncio.sleep(max(0.0, start + i / REQUESTS_PER_SECOND - loop.time()))
            tensor = triton_http.InferInput("INPUT0", [4], "FP32")
            tensor.set_data_from_numpy(np.ones(4, dtype=np.float32))
            try:
                await client.infer(model, [tensor])
                successes += 1
            except InferenceServerException:
                failures += 1
    finally:
        await client.close()
    return Load(successes, failures)


def instant_value(prometheus_url: str, promql: str) -> float | None:
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5.0) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_until_scraped(prometheus_url: str, revision: str, model: str, load: Load, timeout: float = 15.0) -> None:
    """Block until Prometheus holds Triton's final counters for what load sent."""
    selector = f'revision="{revision}",model="{model}"'
    promql = f"sum(nv_inference_request_success{{{selector}}}) + (sum(nv_inference_request_failure{{{selector}}}) or vector(0))"
    deadline = time.monotonic() + timeout
    while (seen := instant_value(prometheus_url, promql)) != load.total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Prometheus shows {seen} requests for {revision}/{model}, sent {load.total}")
        time.sleep(0.25)


def revision_labels(revision: str) -> dict[str, str]:
    return {CONFIG.label_namespace: NAMESPACE, CONFIG.label_isvc: ISVC, CONFIG.label_revision: revision}


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    prometheus_binary()  # skip before starting anything when Prometheus is missing
    stable_repo, canary_repo = tmp_path_factory.mktemp("stable"), tmp_path_factory.mktemp("canary")
    write_model(stable_repo, MODEL)
    write_model(canary_repo, MODEL, failure_rate=CANARY_FAILURE_RATE)
    write_model(canary_repo, SLOW_MODEL, delay_ms=SLOW_DELAY_MS)
    summaries = ["--metrics-config=summary_latencies=true"]
    with (
        TritonServer(stable_repo, [MODEL], extra_args=summaries) as stable,
        TritonServer(canary_repo, [MODEL, SLOW_MODEL], extra_args=summaries) as canary,
    ):
        targets = {
            STABLE: ScrapeTarget(f"127.0.0.1:{stable.metrics_port}", revision_labels(STABLE)),
            CANARY: ScrapeTarget(f"127.0.0.1:{canary.metrics_port}", revision_labels(CANARY)),
        }
        with PrometheusServer(targets.values()) as prometheus:
            for server in (stable, canary):
                assert server.wait_ready(60), server.recent_output()
            for target in targets.values():
                prometheus.wait_for_target(target.address)

            async def send_all() -> tuple[Load, Load, Load]:
                return await asyncio.gather(
                    paced_requests(stable.http_port, MODEL),
                    paced_requests(canary.http_port, MODEL),
                    paced_requests(canary.http_port, SLOW_MODEL),
                )

            # A sample of every counter at 0 before the load: increase() over the window needs one
            # from before the first request, or it counts only what came after its first sample.
            for revision, model in ((STABLE, MODEL), (CANARY, MODEL), (CANARY, SLOW_MODEL)):
                wait_until_scraped(prometheus.url, revision, model, Load(0, 0))
            load_started = time.monotonic()
            sent = asyncio.run(send_all())
            loads = dict(zip([(STABLE, MODEL), (CANARY, MODEL), (CANARY, SLOW_MODEL)], sent, strict=True))
            for (revision, model), load in loads.items():
                wait_until_scraped(prometheus.url, revision, model, load)
            window_s = math.ceil(time.monotonic() - load_started) + 2.0
            yield Traffic(prometheus.url, datetime.now(UTC), window_s, loads)


async def judge(
    traffic: Traffic, spec: dict[str, Any], *, canary: str, stable: str, model: str = MODEL
) -> AnalysisOutcome:
    """analyse() over the traffic's window, as the operator would call it."""
    async with PrometheusClient(traffic.prometheus_url, timeout_s=CONFIG.prometheus_timeout_seconds) as client:
        return await analyse(
            client,
            Analysis.model_validate(spec),
            namespace=NAMESPACE,
            name=ISVC,
            model=model,
            canary_revision=canary,
            stable_revision=stable,
            window_s=traffic.window_s,
            config=CONFIG,
            at=traffic.at,
        )


def test_load_reached_triton_as_planned(traffic: Traffic) -> None:
    planned = int(LOAD_SECONDS * REQUESTS_PER_SECOND)
    assert {key: load.total for key, load in traffic.loads.items()} == dict.fromkeys(traffic.loads, planned)
    # The failing model fails 3 in 10 (evenly spread), the others never.
    assert traffic.loads[(CANARY, MODEL)].failures == pytest.approx(planned * CANARY_FAILURE_RATE, abs=1)
    assert traffic.loads[(STABLE, MODEL)].failures == traffic.loads[(CANARY, SLOW_MODEL)].failures == 0


async def test_stable_revision_passes(traffic: Traffic) -> None:
    spec = {"successRate": {"min": 0.99}, "comparative": {"maxSuccessRateDrop": 0.05}}
    outcome = await judge(traffic, spec, canary=STABLE, stable=CANARY)
    assert outcome.verdict == "Pass", outcome.checks
    success_rate, versus = outcome.checks
    assert (success_rate.name, success_rate.result, success_rate.value) == ("successRate", "Pass", 1.0)
    assert (versus.name, versus.result) == ("successRateVsStable", "Pass")
    sent = traffic.loads[(STABLE, MODEL)].total
    assert outcome.canary_requests == pytest.approx(sent, rel=0.15)


async def test_failing_canary_fails_success_rate_and_comparison(traffic: Traffic) -> None:
    spec = {"successRate": {"min": 0.99}, "comparative": {"maxSuccessRateDrop": 0.05}}
    outcome = await judge(traffic, spec, canary=CANARY, stable=STABLE)
    assert outcome.verdict == "Fail"
    success_rate, versus = outcome.checks

    assert success_rate.result == "Fail"
    assert success_rate.value == pytest.approx(1 - CANARY_FAILURE_RATE, abs=0.05)
    assert success_rate.bound == ">= 0.99"
    assert success_rate.message == f"success rate {success_rate.value:g} is below the minimum 0.99"

    assert versus.result == "Fail"
    assert versus.value == pytest.approx(CANARY_FAILURE_RATE, abs=0.05)
    assert versus.message.endswith(f"a drop of {versus.value:g}, more than the allowed 0.05")


async def test_slow_model_fails_mean_and_quantile_latency(traffic: Traffic) -> None:
    for latency, subject in (({"maxMs": 20}, "mean latency"), ({"maxMs": 20, "quantile": 0.99}, "p99 latency")):
        spec = {"successRate": None, "latency": latency}
        outcome = await judge(traffic, spec, canary=CANARY, stable=STABLE, model=SLOW_MODEL)
        assert outcome.verdict == "Fail", outcome.checks
        (check,) = outcome.checks
        assert check.result == "Fail"
        assert check.value is not None and check.value >= SLOW_DELAY_MS
        assert check.bound == "<= 20ms"
        assert check.message.startswith(f"{subject} {check.value:g}ms is above the maximum 20ms")


async def test_fast_model_passes_latency_against_slow_bound(traffic: Traffic) -> None:
    spec = {"latency": {"maxMs": SLOW_DELAY_MS}}
    outcome = await judge(traffic, spec, canary=STABLE, stable=CANARY)
    assert outcome.verdict == "Pass", outcome.checks
    assert outcome.checks[1].value is not None and outcome.checks[1].value < SLOW_DELAY_MS


async def test_too_few_requests_is_no_data(traffic: Traffic) -> None:
    sent = traffic.loads[(CANARY, MODEL)].total
    outcome = await judge(traffic, {"minRequests": 100_000}, canary=CANARY, stable=STABLE)
    assert outcome.verdict == "NoData"
    (check,) = outcome.checks
    assert check.result == "NoData"
    assert check.message.endswith(" requests < minRequests 100000")
    assert float(check.message.split()[0]) == pytest.approx(sent, rel=0.15)


async def test_revision_without_traffic_is_no_data(traffic: Traffic) -> None:
    outcome = await judge(traffic, {}, canary="nosuch", stable=STABLE)
    assert (outcome.verdict, outcome.canary_requests) == ("NoData", 0.0)
    assert outcome.checks[0].message == "0 requests < minRequests 20"


async def test_custom_checks_against_real_series(traffic: Traffic) -> None:
    spec = {
        "successRate": None,
        "checks": [
            {
                "name": "backend-failures",
                "query": 'sum(increase(nv_inference_request_failure{ {{selector}}, reason="BACKEND" }[{{interval}}]))',
                "max": 0,
            },
            {"name": "every-target", "query": "up", "min": 1},  # one series per target: not one number
            {"name": "typo", "query": "sum(rate(x[{{interval}}])", "min": 0},
        ],
    }
    outcome = await judge(traffic, spec, canary=CANARY, stable=STABLE)
    failures, every_target, typo = outcome.checks
    assert failures.result == "Fail"
    assert failures.value == pytest.approx(traffic.loads[(CANARY, MODEL)].failures, rel=0.15)
    assert (every_target.result, typo.result) == ("Error", "Error")
    assert "returned 2 series" in every_target.message
    assert "bad_data" in typo.message
    assert outcome.verdict == "Fail"


async def test_several_models_are_each_judged_and_the_worst_named(traffic: Traffic) -> None:
    """model.models: the canary's failing model decides the success rate, its slow one the latency;
    a model neither revision served is idle and left out."""
    spec = Analysis.model_validate({"successRate": {"min": 0.99}, "latency": {"maxMs": 20}})
    async with PrometheusClient(traffic.prometheus_url, timeout_s=CONFIG.prometheus_timeout_seconds) as client:
        outcome = await analyse_models(
            client,
            spec,
            namespace=NAMESPACE,
            name=ISVC,
            models=[MODEL, SLOW_MODEL, "unused"],
            canary_revision=CANARY,
            stable_revision=STABLE,
            window_s=traffic.window_s,
            config=CONFIG,
            at=traffic.at,
        )
    assert outcome.verdict == "Fail"
    success_rate, latency = outcome.checks
    assert (success_rate.name, success_rate.result) == (f"successRate[{MODEL}]", "Fail")
    assert success_rate.value == pytest.approx(1 - CANARY_FAILURE_RATE, abs=0.05)
    assert (latency.name, latency.result) == (f"latency[{SLOW_MODEL}]", "Fail")
    assert latency.value is not None and latency.value >= SLOW_DELAY_MS
    assert success_rate.message.endswith("(worst of 2 models; idle: unused)")
    sent = traffic.loads[(CANARY, MODEL)].total + traffic.loads[(CANARY, SLOW_MODEL)].total
    assert outcome.canary_requests == pytest.approx(sent, rel=0.15)


async def test_unreachable_prometheus_is_error() -> None:
    spec = {"successRate": {"min": 0.99}, "latency": {"maxMs": 100}}
    nowhere = Traffic(f"http://127.0.0.1:{free_port()}", datetime.now(UTC), 60.0, {})
    outcome = await judge(nowhere, spec, canary=CANARY, stable=STABLE)
    assert outcome.verdict == "Error"
    assert outcome.canary_requests is None
    assert [c.result for c in outcome.checks] == ["Error", "Error"]
    assert all("no Prometheus answer" in c.message for c in outcome.checks)
