"""Async Prometheus instant-query client. Never raises for what a check must report.

Unreachable servers, timeouts, HTTP errors, ``status: error`` answers and results
that are not one number all come back as ``QueryResult.error``; an empty vector
or NaN comes back as ``QueryResult.no_data``.

Error texts end up in status, so they are bounded and sanitised: the URL is redacted,
Prometheus' own error text is cut to a line of printable characters, and every way of
not getting a Prometheus answer (refused, timed out, not HTTP, not JSON) reads the same,
so the messages say nothing about which ports are open where.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx

from tritonop.analysis.result import QueryResult
from tritonop.redact import redact_uri


class PrometheusClient:
    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        """Evaluate promql at ``at`` (default: Prometheus' now); a naive ``at`` is taken as UTC."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{_as_utc(at).timestamp():.3f}"
        try:
            # POST keeps long queries out of URL length limits.
            response = await self._http.post("/api/v1/query", data=params)
        except httpx.HTTPError:
            return QueryResult.error(no_answer(self.base_url))
        return _interpret(response, self.base_url)


class PrometheusClients:
    """One client (one connection pool) per Prometheus URL, the least recently used closed
    beyond ``max_clients``: every InferenceService may name its own URL."""

    def __init__(self, *, timeout_s: float, max_clients: int = 32) -> None:
        self.timeout_s = timeout_s
        self.max_clients = max_clients
        self._clients: OrderedDict[str, PrometheusClient] = OrderedDict()

    async def for_url(self, url: str) -> PrometheusClient:
        client = self._clients.pop(url, None) or PrometheusClient(url, timeout_s=self.timeout_s)
        self._clients[url] = client
        while len(self._clients) > self.max_clients:
            _, evicted = self._clients.popitem(last=False)
            await evicted.aclose()
        return client

    async def aclose(self) -> None:
        while self._clients:
            await self._clients.popitem()[1].aclose()


def _as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


MAX_ERROR_TEXT = 200


def no_answer(base_url: str) -> str:
    return f"no Prometheus answer from {redact_uri(base_url)}"


def sanitise(text: object) -> str:
    """One line of printable characters, at most MAX_ERROR_TEXT long."""
    line = "".join(c if c.isprintable() else " " for c in str(text)).strip()
    return line if len(line) <= MAX_ERROR_TEXT else line[: MAX_ERROR_TEXT - 1] + "…"


def _interpret(response: httpx.Response, base_url: str) -> QueryResult:
    try:
        body: Any = response.json()
    except ValueError:
        return QueryResult.error(no_answer(base_url))
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        return QueryResult.error(no_answer(base_url))
    if body.get("status") != "success":
        # Prometheus puts a JSON error body on 400/422/503 too; its text is the useful part.
        detail = sanitise(body.get("error") or f"HTTP {response.status_code}")
        kind = sanitise(body.get("errorType") or "")
        return QueryResult.error(f"Prometheus query failed ({kind}): {detail}" if kind else f"Prometheus: {detail}")
    data = body.get("data") or {}
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return _number(result)
    if result_type != "vector" or not isinstance(result, list):
        return QueryResult.error(f"query returned a {result_type}, not a number; a check needs one number")
    if not result:
        return QueryResult.no_data("query returned no series")
    if len(result) > 1:
        return QueryResult.error(
            f"query returned {len(result)} series; a check needs exactly one (aggregate with sum, max or avg)"
        )
    return _number(result[0].get("value") if isinstance(result[0], dict) else None)


def _number(sample: object) -> QueryResult:
    """A [timestamp, "value"] pair as a result; NaN and infinities are no data."""
    if not isinstance(sample, list) or len(sample) != 2:
        return QueryResult.error(f"malformed sample in Prometheus answer: {sample!r}")
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        return QueryResult.error(f"malformed sample value in Prometheus answer: {sample[1]!r}")
    if not math.isfinite(value):
        return QueryResult.no_data(f"query returned {sample[1]}")
    return QueryResult.of(value)
