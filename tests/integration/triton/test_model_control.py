"""Switching a model's versions live in a real tritonserver (rollout.strategy InPlace's primitive).

One server, model ``m`` with three versions: 1 fails to load, 2 doubles, 3 triples. Started in
explicit mode with the repository API restricted to the InferenceService's key, as the
operator starts Triton. Four clients send requests that name no version the whole time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import tritonclient.http.aio as triton_http

from tests.support.triton import TritonServer, expand_env_references, free_port, write_model
from tritonop.children.triton_key import KEY_ENV, restricted_api_args
from tritonop.rollout.in_place import next_load
from tritonop.triton.model_control import ModelControlError, load_versions, ready_versions, server_ready

pytestmark = pytest.mark.triton

KEY = "in-place-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    repo = tmp_path_factory.mktemp("versions-repo")
    write_model(
        repo,
        "m",
        versions=(1, 2, 3),
        delay_ms=2,
        per_version={1: {"fail_load": True}, 2: {"scale": 2.0}, 3: {"scale": 3.0}},
    )
    restricted = expand_env_references(restricted_api_args(), {KEY_ENV: KEY})  # as the kubelet would
    with TritonServer(repo, ["m"], extra_args=restricted) as triton:
        assert triton.wait_ready(60), triton.recent_output()
        yield triton


@dataclass
class Load:
    """Requests naming no version, sent back to back by a few clients: outcomes by served version."""

    served: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def load_on(url: str, clients: int = 4) -> AsyncIterator[Load]:
    load = Load()
    stop = asyncio.Event()
    client = triton_http.InferenceServerClient(url.removeprefix("http://"))
    tensor = triton_http.InferInput("INPUT0", [1], "FP32")
    tensor.set_data_from_numpy(np.array([1.0], dtype=np.float32))

    async def send() -> None:
        while not stop.is_set():
            try:
                response = await client.infer("m", [tensor])
                load.served[str(response.get_response()["model_version"])] += 1
            except Exception as err:  # every failure counts, whatever its kind
                load.failures.append(str(err)[:200])

    tasks = [asyncio.create_task(send()) for _ in range(clients)]
    try:
        yield load
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await client.close()


async def switch(url: str, ready: tuple[str, ...], target: tuple[str, ...]) -> tuple[str, ...]:
    """What the operator does to one pod: the union first, then the target."""
    while (step := next_load(ready, target)) is not None:
        await load_versions(url, "m", step, key=KEY)
        assert tuple(await ready_versions(url, "m", key=KEY)) == step
        ready = step
    return ready


async def served_by(load: Load, version: str, count: int = 20) -> None:
    """Until ``count`` more requests were answered by ``version`` (no fixed sleep)."""
    start = load.served[version]
    async with asyncio.timeout(30):
        while load.served[version] < start + count:
            await asyncio.sleep(0.01)


async def test_server_ready_is_tritons_own_readiness(server: TritonServer) -> None:
    """What the operator asks a pod before taking it for wedged: True from a ready server, None
    when nothing answers (never False for a server it cannot reach). First in this module: a
    failed load (below) leaves the server not ready (strict readiness)."""
    assert await server_ready(server.http_url, key=KEY) is True
    assert await server_ready(f"http://127.0.0.1:{free_port()}", key=KEY, timeout_s=2.0) is None


async def test_versions_switch_under_load_without_a_failed_request(server: TritonServer) -> None:
    url = server.http_url
    assert await ready_versions(url, "m", key=KEY) == ["3"]  # the repository's policy: the latest
    async with load_on(url) as load:
        await served_by(load, "3")
        await switch(url, ("3",), ("2",))  # through ("2", "3")
        await served_by(load, "2")
        await switch(url, ("2",), ("3",))
        await served_by(load, "3")
    assert load.failures == []
    assert load.served["2"] >= 20 and load.served["3"] >= 40


async def test_a_version_that_fails_to_load_leaves_the_served_one(server: TritonServer) -> None:
    url = server.http_url
    ready = await switch(url, tuple(await ready_versions(url, "m", key=KEY)), ("3",))
    async with load_on(url) as load:
        with pytest.raises(ModelControlError) as failed:
            await load_versions(url, "m", ("1", *ready), key=KEY)
        await served_by(load, "3")
    assert "loading 'm' versions [1, 3] failed" in str(failed.value), failed.value
    assert await ready_versions(url, "m", key=KEY) == ["3"]
    assert load.failures == []


async def test_the_repository_api_needs_the_key(server: TritonServer) -> None:
    with pytest.raises(ModelControlError, match="refused"):
        await ready_versions(server.http_url, "m", key=None)
    with pytest.raises(ModelControlError, match="failed"):
        await load_versions(server.http_url, "m", ("3",), key="wrong")
