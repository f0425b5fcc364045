"""The aiohttp transport under httpx (tritonop/kube/transport.py) against a real local HTTP
server (aiohttp.web): bodies both ways, headers, streamed responses, compressed bodies,
timeouts and refused connections as httpx's errors. Its TLS path is what every
operator test against the real API server uses."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from tritonop.kube.transport import AiohttpTransport


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "agent": request.headers.get("User-Agent"),
                "body": (await request.read()).decode(),
            },
            headers={"Retry-After": "2"},
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await response.write(json.dumps({"type": "ADDED", "i": i}).encode() + b"\n")
            await asyncio.sleep(0.01)
        return response

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/gzip", compressed)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def client(base: str, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        transport=AiohttpTransport(False, max_connections=4),
        headers={"User-Agent": "tritonop/test"},
        **kwargs,  # type: ignore[arg-type]
    )


async def test_requests_and_answers_pass_through(server: str) -> None:
    async with client(server) as http:
        response = await http.patch(
            "/echo",
            params={"fieldManager": "tritonop"},
            content=b'{"a": 1}',
            headers={"Content-Type": "application/apply-patch+yaml", "Authorization": "Bearer t"},
        )
        assert response.status_code == 200 and response.headers["Retry-After"] == "2"
        assert response.json() == {
            "method": "PATCH",
            "query": {"fieldManager": "tritonop"},
            "type": "application/apply-patch+yaml",
            "auth": "Bearer t",
            "agent": "tritonop/test",
            "body": '{"a": 1}',
        }
        got = (await http.get("/echo")).json()
        assert got["method"] == "GET" and got["body"] == ""
        assert (await http.get("/gzip")).json() == {"ok": True}  # decoded once, by httpx
        assert (await http.get("/nowhere")).status_code == 404


async def test_streamed_lines_arrive_as_they_are_written(server: str) -> None:
    async with client(server, timeout=httpx.Timeout(5, read=None)) as http, http.stream("GET", "/stream") as response:
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [e["i"] for e in lines] == [0, 1, 2]


async def test_many_concurrent_requests_share_the_bounded_pool(server: str) -> None:
    async with client(server) as http:
        answers = await asyncio.gather(*(http.get("/echo", params={"i": str(i)}) for i in range(40)))
    assert sorted(int(a.json()["query"]["i"]) for a in answers) == list(range(40))


async def test_timeouts_and_refused_connections_are_httpx_errors(server: str) -> None:
    async with client(server, timeout=httpx.Timeout(0.2)) as http:
        with pytest.raises(httpx.TimeoutException):
            await http.get("/slow")
    async with client("http://127.0.0.1:9") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/echo")
