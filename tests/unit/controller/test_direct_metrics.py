"""DirectMetrics: pods listed, each pod's metrics read over HTTP, problems reported, never raised."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.fake_kube import FakeKube
from tritonop.children import IsvcRef
from tritonop.controller.direct_metrics import DirectMetrics
from tritonop.endpoints import TritonEndpoints

REF = IsvcRef(namespace="ml", name="resnet", uid="u1")


def pod(name: str, revision: str, ip: str | None, phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": f"uid-{name}",
            "labels": {"serving.tritonop.dev/inferenceservice": "resnet", "serving.tritonop.dev/revision": revision},
        },
        "status": {"phase": phase, **({"podIP": ip} if ip else {})},
    }


def metrics_text(success: int, failure: int) -> str:
    return (
        f'nv_inference_request_success{{model="resnet",version="1"}} {success}\n'
        f'nv_inference_request_failure{{model="resnet",reason="BACKEND",version="1"}} {failure}\n'
    )


async def test_scrapes_both_revisions_and_reports_a_pod_that_does_not_answer(tmp_path: Path) -> None:
    kube = FakeKube()
    for obj in (pod("c-0", "c", "10.0.0.1"), pod("s-0", "s", "10.0.0.2"), pod("s-1", "s", "10.0.0.3")):
        kube.put(obj)
    kube.put(pod("c-pending", "c", None, phase="Pending"))  # not running: not asked
    counts = {"10.0.0.1": [0, 0], "10.0.0.2": [0, 0]}
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        asked.append(f"{host}:{request.url.port}{request.url.path}")
        if host not in counts:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(200, text=metrics_text(*counts[host]))

    direct = DirectMetrics(kube, TritonEndpoints("http://x"), transport=httpx.MockTransport(answer))  # type: ignore[arg-type]
    first = await direct.sample(REF, ("resnet",), "c", "s")
    assert not first.complete and first.problem == "pod s-1: no metrics answer"
    counts["10.0.0.1"] = [9, 3]
    counts["10.0.0.2"] = [100, 0]
    second = await direct.sample(REF, ("resnet",), "c", "s")
    assert (second.tally.canary.requests, second.tally.canary.failures) == (12, 3)
    assert second.tally.stable.requests == 100
    assert "10.0.0.1:8002/metrics" in asked and not any("pending" in a for a in asked)
    # Another canary starts a fresh tally.
    third = await direct.sample(REF, ("resnet",), "c2", "s")
    assert third.tally.canary.requests == 0 and third.tally is not second.tally
    await direct.aclose()


async def test_the_endpoints_file_maps_a_pods_metrics(tmp_path: Path) -> None:
    mapping = tmp_path / "endpoints.json"
    mapping.write_text(json.dumps({"ml/pod/c-0/metrics": "http://127.0.0.1:9/metrics"}))
    endpoints = TritonEndpoints("http://x", str(mapping))
    assert endpoints.metrics_url_for_pod("ml", "c-0", "10.0.0.1") == "http://127.0.0.1:9/metrics"
    assert endpoints.metrics_url_for_pod("ml", "c-1", "fd00::5") == "http://[fd00::5]:8002/metrics"
    assert endpoints.metrics_url_for_pod("ml", "c-1", None) is None


async def test_no_running_pod_and_bad_text_are_problems_not_errors() -> None:
    kube = FakeKube()
    kube.put(pod("s-0", "s", "10.0.0.2"))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>oops</html>")

    direct = DirectMetrics(kube, TritonEndpoints("http://x"), transport=httpx.MockTransport(answer))  # type: ignore[arg-type]
    sample = await direct.sample(REF, ("resnet",), "c", "s")
    assert sample.problem.startswith("revision c: no running pod")
    kube.put(pod("c-0", "c", "10.0.0.1"))
    sample = await direct.sample(REF, ("resnet",), "c", "s")
    assert "pod c-0: metrics unreadable (line 1 is not a sample" in sample.problem
    await direct.aclose()


async def test_reads_in_flight_are_bounded() -> None:
    kube = FakeKube()
    for i in range(12):
        kube.put(pod(f"c-{i}", "c", f"10.0.1.{i}"))
        kube.put(pod(f"s-{i}", "s", f"10.0.2.{i}"))
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # a request's latency: unbounded, all 24 would be in flight here
        in_flight -= 1
        return httpx.Response(200, text=metrics_text(1, 0))

    direct = DirectMetrics(kube, TritonEndpoints("http://x"), concurrency=3, transport=httpx.MockTransport(answer))  # type: ignore[arg-type]
    sample = await asyncio.wait_for(direct.sample(REF, ("resnet",), "c", "s"), 10)
    assert sample.complete and peak == 3
    await direct.aclose()
