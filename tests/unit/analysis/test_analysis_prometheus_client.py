"""PrometheusClient maps every answer Prometheus can give (or fail to give) to a QueryResult."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tritonop.analysis.prometheus import PrometheusClient
from tritonop.analysis.result import QueryResult


def answering(status: int, body: Any) -> httpx.MockTransport:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.MockTransport(lambda request: httpx.Response(status, text=text))


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"i": str(i)}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, vector("0.7"), QueryResult.of(0.7)),
        (200, vector("12"), QueryResult.of(12.0)),
        (200, {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3.5"]}}, QueryResult.of(3.5)),
        (200, vector(), QueryResult.no_data("query returned no series")),
        (200, vector("NaN"), QueryResult.no_data("query returned NaN")),
        (200, vector("+Inf"), QueryResult.no_data("query returned +Inf")),
    ],
)
async def test_numbers_and_no_data(status: int, body: Any, expected: QueryResult) -> None:
    async with PrometheusClient("http://prometheus.test", transport=answering(status, body)) as client:
        assert await client.query("up") == expected


@pytest.mark.parametrize(
    ("status", "body", "message_part"),
    [
        (200, vector("1", "2"), "returned 2 series"),
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'},
            'Prometheus query failed (bad_data): parse error: unexpected "}"',
        ),
        (503, {"status": "error", "errorType": "unavailable", "error": "not ready"}, "(unavailable): not ready"),
        # Not Prometheus talking: the same words as a refused connection (no port-scan oracle).
        (502, "<html>Bad Gateway</html>", "no Prometheus answer from http://prometheus.test"),
        (200, [1, 2], "no Prometheus answer from http://prometheus.test"),
        (200, {"hello": "world"}, "no Prometheus answer from http://prometheus.test"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "returned a matrix"),
        (200, {"status": "success", "data": {"resultType": "string", "result": [1.0, "x"]}}, "returned a string"),
        (200, {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "abc"]}}, "malformed sample"),
        (200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "malformed sample"),
    ],
)
async def test_errors_are_results_not_exceptions(status: int, body: Any, message_part: str) -> None:
    async with PrometheusClient("http://prometheus.test", transport=answering(status, body)) as client:
        result = await client.query("up")
    assert result.status == "error"
    assert result.value is None
    assert message_part in result.message


async def test_timeout_is_an_error() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    async with PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(time_out)) as client:
        assert await client.query("up") == QueryResult.error("no Prometheus answer from http://prometheus.test")


async def test_connection_refused_is_an_error() -> None:
    # A port that was just free and has no listener: the kernel refuses at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with PrometheusClient(f"http://127.0.0.1:{port}/") as client:
        result = await client.query("up")
    assert result.status == "error"
    assert result.message == f"no Prometheus answer from http://127.0.0.1:{port}"


async def test_error_text_is_bounded_printable_and_the_url_redacted() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "line1\nline2\x1b[31m" + "x" * 500}
    async with PrometheusClient("http://user:pw@prometheus.test/?token=t", transport=answering(400, body)) as client:
        result = await client.query("up")
    assert "\n" not in result.message and "\x1b" not in result.message
    assert len(result.message) < 260
    async with PrometheusClient("http://user:pw@prometheus.test/?token=t", transport=answering(502, "x")) as client:
        refused = await client.query("up")
    assert "pw" not in refused.message and "token" not in refused.message


async def test_query_and_time_are_sent() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=vector("1"))

    plus_two = timezone(timedelta(hours=2))
    async with PrometheusClient("http://prometheus.test/prom/", transport=httpx.MockTransport(record)) as client:
        await client.query('sum(x{a="b"})', at=datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=plus_two))
        await client.query("y", at=datetime(2024, 1, 1, 10, 0, 0))  # naive: UTC
        await client.query("z")

    assert [str(r.url) for r in seen] == ["http://prometheus.test/prom/api/v1/query"] * 3
    forms = [parse_qs(r.content.decode()) for r in seen]
    expected_time = f"{datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC).timestamp():.3f}"
    assert forms[0] == {"query": ['sum(x{a="b"})'], "time": [expected_time]}
    assert forms[1] == {"query": ["y"], "time": [f"{datetime(2024, 1, 1, 10, tzinfo=UTC).timestamp():.3f}"]}
    assert forms[2] == {"query": ["z"]}
