"""The client keeps at most `concurrency` requests in flight (--api-concurrency); the rest wait
their turn before httpx sees them, so its pool timeout never counts time spent in line."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tritonop.cli import _parser, _run_config
from tritonop.config import OperatorConfig
from tritonop.kube.client import DEFAULT_CONCURRENCY, Connection, KubeClient

CONNECTION = Connection(server="http://kube.test", headers={}, verify=True, cert=None)
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ml"}}


class Recorder:
    """An httpx handler that answers after a short wait and records how many requests were
    being answered at once."""

    def __init__(self, answer_s: float = 0.01) -> None:
        self.answer_s = answer_s
        self.in_flight = 0
        self.most = 0
        self.answered = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.answer_s)
        finally:
            self.in_flight -= 1
        self.answered += 1
        return httpx.Response(200, json=DEPLOYMENT)


@pytest.mark.parametrize("limit", [1, 5, 32])
async def test_at_most_the_limit_of_requests_is_in_flight(limit: int) -> None:
    recorder = Recorder()
    kube = KubeClient(CONNECTION, concurrency=limit, transport=httpx.MockTransport(recorder))
    try:
        found = await asyncio.gather(*(kube.get("apps/v1", "Deployment", "ml", f"web-{i}") for i in range(100)))
    finally:
        await kube.aclose()
    assert recorder.answered == 100 and all(found)
    assert recorder.most == limit  # bounded, and the slots are all used


async def test_a_failed_request_gives_its_slot_back() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=DEPLOYMENT)

    kube = KubeClient(CONNECTION, concurrency=1, transport=httpx.MockTransport(handler))
    try:
        for _ in range(3):
            with pytest.raises(Exception, match="ConnectError"):
                await kube.get("apps/v1", "Deployment", "ml", "web")
        assert await asyncio.wait_for(kube.get("apps/v1", "Deployment", "ml", "web"), 1) == DEPLOYMENT
    finally:
        await kube.aclose()


async def test_a_retry_after_wait_holds_no_slot() -> None:
    """While one request waits out a 429's Retry-After, another is sent with the only slot."""
    release = asyncio.Event()
    order: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        order.append(request.url.path.rsplit("/", 1)[-1])
        if request.url.path.endswith("/slow") and order.count("slow") == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"message": "busy"})
        return httpx.Response(200, json=DEPLOYMENT)

    async def sleep(seconds: float) -> None:
        await release.wait()

    kube = KubeClient(CONNECTION, concurrency=1, transport=httpx.MockTransport(handler), sleep=sleep)
    try:
        slow = asyncio.create_task(kube.get("apps/v1", "Deployment", "ml", "slow"))
        await asyncio.sleep(0.01)
        assert await asyncio.wait_for(kube.get("apps/v1", "Deployment", "ml", "fast"), 1) == DEPLOYMENT
        release.set()
        assert await asyncio.wait_for(slow, 1) == DEPLOYMENT
    finally:
        await kube.aclose()
    assert order == ["slow", "fast", "slow"]


@pytest.mark.parametrize("limit", [0, -1])
def test_the_limit_is_at_least_one(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KubeClient(CONNECTION, concurrency=limit)
    with pytest.raises(ValueError, match="api_concurrency must be at least 1"):
        OperatorConfig(api_concurrency=limit)


def test_the_flag_and_the_variable_set_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert OperatorConfig().api_concurrency == DEFAULT_CONCURRENCY
    assert _run_config(_parser().parse_args(["run", "--api-concurrency", "8"])).api_concurrency == 8
    assert OperatorConfig.from_env({"TRITONOP_API_CONCURRENCY": "4"}).api_concurrency == 4
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--api-concurrency", "0"])
    assert "--api-concurrency: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="api_concurrency must be at least 1"):
        OperatorConfig.from_env({"TRITONOP_API_CONCURRENCY": "0"})
