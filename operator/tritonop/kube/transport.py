"""An httpx transport that sends requests with aiohttp (already kopf's HTTP client).

Why: under a burst of creations, httpcore's connection pool was most of the operator's CPU:
it re-checks every pooled connection (a select() per connection) each time a request is
queued or finished (docs/benchmarks.md, "Scale"). aiohttp's pool hands out a free
connection in constant time and parses HTTP in C. httpx stays the client API (auth flows
that refresh credentials, timeouts, and test transports), only the wire changes.

Timeouts follow httpx's per-request ``timeout`` extension: connect and read (a watch passes
read=None). aiohttp's errors are raised as httpx's, so callers catch one family.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx

CHUNK = 64 * 1024


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """At most ``max_connections`` connections (None: unbounded), kept alive between requests."""

    def __init__(self, ssl_context: ssl.SSLContext | bool, *, max_connections: int | None) -> None:
        self._ssl = ssl_context
        self._limit = max_connections or 0  # aiohttp: 0 is no limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created inside the running loop, on first use
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._limit, limit_per_host=0)
            # Bodies are decoded by httpx from Content-Encoding, as with its own transport.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        body = request.content if request.method not in ("GET", "HEAD") else None
        try:
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body,
                timeout=timeout,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(f"{type(exc).__name__}: {exc}") from exc
        return httpx.Response(
            response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_Body(response),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def ssl_context(verify: ssl.SSLContext | bool, cert: tuple[str, str] | None) -> ssl.SSLContext | bool:
    """What aiohttp takes for ``ssl``: the context (with a client certificate loaded), or False."""
    if verify is False:
        if cert is None:
            return False
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = ssl.create_default_context()
    if cert is not None:
        context.load_cert_chain(*cert)
    return context
