"""An experiment's figures (controller/experiment.py) from a real Prometheus scraping two real
Triton servers: A serves a healthy model, B the same model failing 20% of requests and 20 ms
slower. Both variants' figures, a custom metric per variant, and both comparisons (the paired
latency subqueries included) come out as the load that was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.analysis.test_analysis_real_prometheus import (
    Load,
    paced_requests,
    revision_labels,
    wait_until_scraped,
)
from tests.support.prometheus import PrometheusServer, ScrapeTarget, prometheus_binary
from tests.support.triton import TritonServer, write_model
from tritonop.analysis.prometheus import PrometheusClients
from tritonop.api.models import ExperimentStatus, ExperimentVariant, InferenceServiceSpec, Phase
from tritonop.children import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.controller.experiment import Experiments
from tritonop.rollout import Decision, RolloutState
from tritonop.timestamps import format_time

pytestmark = [pytest.mark.prometheus, pytest.mark.triton]

A, B, MODEL = "aaaa000001", "bbbb000002", "classifier"
B_FAILURE_RATE, B_DELAY_MS = 0.2, 20.0
REF = IsvcRef(name="resnet", namespace="ml", uid="u1")


@dataclass(frozen=True)
class Experiment:
    prometheus_url: str
    started: datetime
    ended: datetime
    loads: dict[str, Load]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Experiment]:
    prometheus_binary()
    a_repo, b_repo = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_model(a_repo, MODEL)
    write_model(b_repo, MODEL, failure_rate=B_FAILURE_RATE, delay_ms=B_DELAY_MS)
    with TritonServer(a_repo, [MODEL]) as a, TritonServer(b_repo, [MODEL]) as b:
        targets = [
            ScrapeTarget(f"127.0.0.1:{server.metrics_port}", revision_labels(revision))
            for server, revision in ((a, A), (b, B))
        ]
        with PrometheusServer(targets) as prometheus:
            for server in (a, b):
                assert server.wait_ready(60), server.recent_output()
            for target in targets:
                prometheus.wait_for_target(target.address)
            started = datetime.now(UTC) - timedelta(seconds=2)  # B "got its weight" just before the load

            async def send_both() -> list[Load]:
                return list(
                    await asyncio.gather(paced_requests(a.http_port, MODEL), paced_requests(b.http_port, MODEL))
                )

            loads = dict(zip((A, B), asyncio.run(send_both()), strict=True))
            for revision, load in loads.items():
                wait_until_scraped(prometheus.url, revision, MODEL, load)
            time.sleep(1.0)
            yield Experiment(prometheus.url, started, datetime.now(UTC), loads)


async def test_status_reports_both_variants_real_figures_and_the_comparison(experiment: Experiment) -> None:
    backend_failures = 'sum(increase(nv_inference_request_failure{ {{selector}}, reason="BACKEND" }[{{interval}}]))'
    spec = InferenceServiceSpec.model_validate(
        {
            "model": {"name": MODEL, "storageUri": "s3://models/repo"},
            "rollout": {
                "strategy": "Experiment",
                "interval": "3s",
                "analysis": {"prometheusUrl": experiment.prometheus_url},
                "experiment": {
                    "weight": 50,
                    "duration": f"{round((experiment.ended - experiment.started).total_seconds())}s",
                    "metrics": [{"name": "backend-failures", "query": backend_failures}],
                },
            },
        }
    )
    record = ExperimentStatus(
        started_at=format_time(experiment.started),
        ends_at=format_time(
            experiment.started + timedelta(seconds=round((experiment.ended - experiment.started).total_seconds()))
        ),
        variants=[
            ExperimentVariant(name="A", revision=A, weight=50),
            ExperimentVariant(name="B", revision=B, weight=50),
        ],
    )
    state = RolloutState(stable=A, canary=B, phase=Phase.progressing, weight=50, step_started_at=experiment.started)
    prometheus = PrometheusClients(timeout_s=10)
    try:
        tick = await Experiments(OperatorConfig()).decide(
            REF, spec, state, Decision(state), record, prometheus, experiment.ended + timedelta(seconds=5)
        )
    finally:
        await prometheus.aclose()

    assert tick is not None and tick.status is not None
    status = tick.status
    assert status.concluded and status.results_at == status.ends_at and status.problems == []
    figures = {v.name: v for v in status.variants}
    for name, revision in (("A", A), ("B", B)):
        assert figures[name].requests == pytest.approx(experiment.loads[revision].total, rel=0.15)
    assert figures["A"].success_rate == 1.0
    assert figures["B"].success_rate == pytest.approx(1 - B_FAILURE_RATE, abs=0.05)
    assert figures["A"].mean_latency_ms is not None and figures["A"].mean_latency_ms < B_DELAY_MS
    assert figures["B"].mean_latency_ms is not None and figures["B"].mean_latency_ms >= B_DELAY_MS
    assert figures["A"].metrics == {"backend-failures": 0.0}
    assert figures["B"].metrics["backend-failures"] == pytest.approx(experiment.loads[B].failures, rel=0.15)

    rate, latency = status.comparison
    assert rate.metric == "successRate" and rate.significant and rate.high < 0
    assert rate.difference == pytest.approx(-100 * B_FAILURE_RATE, abs=5)
    assert rate.statement.startswith("B's success rate is lower than A's by ")
    assert latency.metric == "meanLatencyMs" and latency.significant and latency.low > 0
    assert latency.difference == pytest.approx(B_DELAY_MS, abs=10)
    assert latency.statement.startswith("B's mean latency is higher than A's by ")
    assert "paired t over " in latency.statement and "windows of 3s" in latency.statement
