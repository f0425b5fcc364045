"""A fault-injecting, request-recording reverse proxy in front of a real kube-apiserver.

``FaultProxy(cp)`` listens on plain HTTP at ``127.0.0.1:<free port>`` (``.url``) and
forwards every request to the ControlPlane's API server over TLS, verified with its CA.
A request with an ``Authorization`` header (a bearer token) is forwarded with that header
and no client certificate; a request without one is forwarded with the admin client
certificate (group system:masters), so a kubeconfig without credentials is admin.

Responses are streamed chunk by chunk (a ``?watch=true`` request is a long-lived stream)
with status, headers (less the hop-by-hop ones) and bytes unchanged: the upstream body is
not decompressed or re-encoded.

Every answered request is recorded in ``.requests`` (a list of ``Recorded``, appended from
the proxy's thread under a lock) once its response status is known; ``.mark()`` is the
current count, for "requests since" filtering.

Faults, each consuming one matching request (``times`` of them), matched by method (``*``
for any) and ``path_pattern``, searched as a regular expression in the request path
(without the query) or found in it as a plain substring:

- ``fail_next(method, path_pattern, status=500, times=1, retry_after=None, reason=None)``:
  answered by the proxy with a Kubernetes ``Status`` body (kind Status, code, reason,
  message "injected by fault proxy") and a ``Retry-After`` header when given; the request
  never reaches the API server;
- ``delay_next(method, path_pattern, seconds, times=1)``: forwarded after ``seconds``;
- ``drop_watches()``: every open watch stream is cut now (the client's connection ends
  mid-stream, with no final chunk);
- ``gone_next_watch(path_pattern, times=1)``: the next matching watch is answered with a
  200 stream holding one ``ERROR`` event (Status 410 Gone, reason Expired), then closed,
  as a real server answers a watch from a resourceVersion it no longer has.

``fail_next`` and ``delay_next`` match non-watch requests only unless ``watch=True`` (then
watch requests only), so a fault meant for a GET is not taken by a watch of the same path.

Typical use::

    with FaultProxy(cp) as proxy:
        proxy.kubeconfig(tmp / "kubeconfig", token=token)
        proxy.fail_next("PATCH", r"/inferenceservices/[^/]+/status$", status=409)
        ...
        assert [r for r in proxy.requests if r.injected]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from tests.support.control_plane import ControlPlane

__all__ = ["FaultProxy", "Recorded"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
INJECTED_MESSAGE = "injected by fault proxy"
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Recorded:
    """One request the proxy answered."""

    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]  # the request's headers, names in canonical form ("User-Agent", "Content-Type")
    body: Any  # the request body as parsed JSON, or None (empty or not JSON)
    status: int  # the status the client got
    injected: str | None  # which fault answered or delayed it: "fail", "delay", "gone"; None if none
    at: float  # time.monotonic() when the request arrived

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


@dataclass
class _Fault:
    kind: str  # fail | delay | gone
    method: str
    pattern: str
    remaining: int
    watch: bool  # matches watch requests (True) or the others (False)
    status: int = 500
    reason: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    regex: re.Pattern[str] | None = field(default=None)

    def matches(self, method: str, path: str, watch: bool) -> bool:
        if self.remaining <= 0 or watch != self.watch:
            return False
        if self.method != "*" and self.method != method:
            return False
        return self.pattern in path or (self.regex is not None and self.regex.search(path) is not None)


def canonical(name: str) -> str:
    """A header name as Go's http.CanonicalHeaderKey writes it: "user-agent" -> "User-Agent"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _is_watch(query: dict[str, str]) -> bool:
    return query.get("watch") in ("true", "1")


def status_body(code: int, reason: str, message: str = INJECTED_MESSAGE, retry_after: float | None = None) -> bytes:
    """A Kubernetes ``Status`` (v1) failure, as the API server writes one."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if retry_after is not None:
        status["details"] = {"retryAfterSeconds": math.ceil(retry_after)}
    return json.dumps(status).encode()


class FaultProxy:
    """See the module docstring. A context manager; ``start()``/``stop()`` work too."""

    def __init__(self, cp: ControlPlane) -> None:
        assert cp.workdir is not None, "start the ControlPlane first"
        self.cp = cp
        self.upstream = cp.url
        self.url = ""
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.BaseRunner | None = None
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._watches: dict[int, tuple[web.BaseRequest, aiohttp.ClientResponse]] = {}  # by id(request)
        pki = cp.workdir / "pki"
        self._ca = str(pki / "ca.crt")
        self._admin_cert = (str(pki / "admin.crt"), str(pki / "admin.key"))

    # -------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("this FaultProxy was already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        port = self._call(self._start(), timeout=30)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._stop(), timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -------------------------------------------------------------- use

    def kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """Write a kubeconfig for the proxy to ``path``: a bearer ``token`` user, or (None) a
        user with no credentials, whom the proxy forwards as the admin. Returns ``path``."""
        assert self.url, "start the FaultProxy first"
        user: dict[str, Any] = {"token": token} if token is not None else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fault-proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "fault-proxy", "context": {"cluster": "fault-proxy", "user": "user",
                                                             "namespace": "default"}}],
            "current-context": "fault-proxy",
        }  # fmt: skip
        path.write_text(json.dumps(config, indent=2))
        return path

    def mark(self) -> int:
        """How many requests were recorded so far: ``proxy.requests[mark:]`` are the newer ones."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Recorded]:
        with self._lock:
            return list(self.requests[mark:])

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        reason: str | None = None,
        *,
        watch: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a Status body."""
        self._add(_Fault("fail", method.upper(), path_pattern, times, watch, status=status,
                         reason=reason or REASONS.get(status, "InternalError"), retry_after=retry_after))  # fmt: skip

    def delay_next(
        self, method: str, path_pattern: str, seconds: float, times: int = 1, *, watch: bool = False
    ) -> None:
        """Forward the next ``times`` matching requests only after ``seconds``."""
        self._add(_Fault("delay", method.upper(), path_pattern, times, watch, seconds=seconds))

    def gone_next_watch(self, path_pattern: str, times: int = 1) -> None:
        """Answer the next ``times`` matching watches with one 410 Gone ERROR event, then close."""
        self._add(_Fault("gone", "GET", path_pattern, times, True, status=410, reason="Expired"))

    def drop_watches(self) -> int:
        """Cut every open watch stream now; returns how many were cut."""
        return int(self._call(self._drop_watches(), timeout=10))

    def pending_faults(self) -> int:
        """How many injections are still waiting for a matching request."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    # -------------------------------------------------------------- internals

    def _add(self, fault: _Fault) -> None:
        with contextlib.suppress(re.error):
            fault.regex = re.compile(fault.pattern)
        with self._lock:
            self._faults.append(fault)

    def _take(self, method: str, path: str, watch: bool) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, watch):
                    fault.remaining -= 1
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return fault
        return None

    def _record(self, request: web.BaseRequest, body: bytes, status: int, injected: str | None, at: float) -> None:
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={canonical(k): v for k, v in request.headers.items()},
            body=parsed,
            status=status,
            injected=injected,
            at=at,
        )
        with self._lock:
            self.requests.append(recorded)

    def _call(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> int:
        for with_cert in (False, True):
            context = ssl.create_default_context(cafile=self._ca)
            if with_cert:
                context.load_cert_chain(*self._admin_cert)
            connector = aiohttp.TCPConnector(ssl=context, limit=0)
            self._sessions[with_cert] = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
            )
        server = web.Server(self._handle)
        runner = self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    async def _stop(self) -> None:
        await self._drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        for session in self._sessions.values():
            await session.close()

    async def _drop_watches(self) -> int:
        watches = list(self._watches.values())
        self._watches.clear()
        for request, upstream in watches:
            if request.transport is not None:
                request.transport.abort()
            upstream.close()
        return len(watches)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        at = time.monotonic()
        body = await request.read()
        query = dict(request.query)
        watch = _is_watch(query)
        fault = self._take(request.method, request.path, watch)
        if fault is not None and fault.kind == "fail":
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(fault.retry_after))
            response = web.Response(
                status=fault.status, body=status_body(fault.status, fault.reason, retry_after=fault.retry_after),
                headers=headers,
            )  # fmt: skip
            self._record(request, body, fault.status, "fail", at)
            return response
        if fault is not None and fault.kind == "gone":
            return await self._gone(request, body, at)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        return await self._forward(request, body, at, "delay" if fault is not None else None, watch)

    async def _gone(self, request: web.BaseRequest, body: bytes, at: float) -> web.StreamResponse:
        event = {
            "type": "ERROR",
            "object": json.loads(status_body(410, "Expired", "too old resource version (injected by fault proxy)")),
        }
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._record(request, body, 200, "gone", at)
        await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response

    async def _forward(
        self, request: web.BaseRequest, body: bytes, at: float, injected: str | None, watch: bool
    ) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"host", "content-length"}}
        session = self._sessions["Authorization" not in request.headers]
        url = self.upstream + request.rel_url.raw_path_qs
        try:
            upstream = await session.request(
                request.method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except aiohttp.ClientError as err:
            self._record(request, body, 502, injected, at)
            return web.Response(status=502, text=f"fault proxy: upstream failed: {err}")
        try:
            out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in out_headers:
                response.headers.add(key, value)
            if "Content-Length" not in upstream.headers:
                response.enable_chunked_encoding()
            self._record(request, body, upstream.status, injected, at)
            if watch:
                self._watches[id(request)] = (request, upstream)
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                # The client went away, drop_watches cut the stream, or the upstream broke
                # mid-body: end the client's connection abruptly as well (no final chunk).
                if request.transport is not None:
                    request.transport.abort()
            finally:
                self._watches.pop(id(request), None)
            return response
        finally:
            upstream.release()
