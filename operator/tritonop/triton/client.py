"""Short-lived asyncio tritonclient HTTP clients, addressed by URL.

tritonclient wants ``host:port[/prefix]`` and an ``ssl`` flag; the operator speaks in
URLs (``http://NAME-REV.NAMESPACE.svc:8000``). Every client is closed on exit: an
aiohttp session left open leaks its connector and warns at shutdown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from tritonclient.http.aio import InferenceServerClient

from tritonop.children.triton_key import KEY_HEADER

# What a request that never reached a working Triton raises (connection refused, DNS,
# reset, timeout). Triton's own error answers raise InferenceServerException instead.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# The subset that means no connection was made at all (as opposed to a slow answer).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@dataclass(frozen=True)
class ClientTarget:
    address: str  # host:port[/prefix], as tritonclient wants it
    ssl: bool


def client_target(url: str) -> ClientTarget:
    """Parse ``http(s)://host[:port][/prefix]`` (a bare ``host:port`` means http)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"Triton URL {url!r} must use http:// or https://")
    if not parts.hostname:
        raise ValueError(f"Triton URL {url!r} has no host")
    if parts.query or parts.fragment:
        raise ValueError(f"Triton URL {url!r} must not have a query or fragment")
    return ClientTarget(address=parts.netloc + parts.path.rstrip("/"), ssl=parts.scheme == "https")


class _KeyHeader:
    """A tritonclient plugin adding the InferenceService's control-API key to every request
    (docs/security.md); tritonclient calls it with each request before sending it."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: Any) -> None:
        request.headers[KEY_HEADER] = self._key

    def __repr__(self) -> str:
        return "_KeyHeader(<redacted>)"


@asynccontextmanager
async def triton_client(
    url: str, *, timeout_s: float, key: str | None = None
) -> AsyncIterator[InferenceServerClient]:
    """An aio client for ``url`` whose every request times out after ``timeout_s`` seconds,
    and carries ``key`` (the InferenceService's control-API key) when given."""
    target = client_target(url)
    client = InferenceServerClient(
        target.address,
        conn_timeout=timeout_s,
        ssl=target.ssl,
        ssl_context=ssl.create_default_context() if target.ssl else None,
    )
    if key:
        client.register_plugin(_KeyHeader(key))
    try:
        yield client
    finally:
        await client.close()
