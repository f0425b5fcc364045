"""A small async Kubernetes client for the kinds tritonop manages.

Why not the official client: its calls are blocking, and kopf's handlers, watches and
peering share one event loop. This client speaks plain HTTP with httpx, takes its
credentials as kopf's login handler does (service account, then kubeconfig with exec
plugins: tritonop/kube/credentials.py), and
knows exactly the resources the operator touches, which is also what RBAC grants.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tritonop import FIELD_MANAGER, __version__
from tritonop.kinds import POD, kind_of
from tritonop.kube.cache import ObjectCache, State
from tritonop.kube.credentials import CredentialAuth, CredentialError, Credentials, discover
from tritonop.kube.transport import AiohttpTransport, ssl_context

# Retry-After: the API server answers 429 (API priority and fairness, max-in-flight) and
# some 5xx with a Retry-After header, meaning the request was not processed and may be sent
# again after that many seconds. The client waits and retries, as client-go does, within a
# bounded total wait per request; a longer wait is left to the caller's own retry.
RETRY_AFTER_BUDGET_S = 10.0
RETRY_AFTER_ATTEMPTS = 3

# At most this many requests in flight per client (--api-concurrency): the rest wait their
# turn before httpx sees them, so a burst (thousands of objects created at once) queues in
# order instead of piling into httpx's pool, whose timeout would count the wait in line and
# time requests out into retried passes (issue 13). The pool has a connection per slot.
DEFAULT_CONCURRENCY = 32
CONNECT_TIMEOUT_S = 5.0


class KubeError(Exception):
    """An API error: status code and the server's message (and its Retry-After, if any)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class NotFound(KubeError):
    pass


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    plural = kind_of(api_version, kind).plural
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass(frozen=True)
class Connection:
    server: str
    headers: dict[str, str]
    verify: ssl.SSLContext | bool
    cert: tuple[str, str] | None
    auth: httpx.Auth | None = None  # per-request credentials that refresh (exec plugins, rotated tokens)


def connection_from_kopf(info: Any) -> Connection:
    """Turn kopf's ConnectionInfo into what httpx needs."""
    verify: ssl.SSLContext | bool = True
    if info.insecure:
        verify = False
    elif info.ca_path or info.ca_data:
        ctx = ssl.create_default_context()
        if info.ca_path:
            ctx.load_verify_locations(cafile=os.fspath(info.ca_path))
        else:
            data = info.ca_data if isinstance(info.ca_data, str) else info.ca_data.decode()
            ctx.load_verify_locations(cadata=base64.b64decode(data).decode())
        verify = ctx
    cert = None
    if info.certificate_path or info.certificate_data:
        cert = (
            _as_file(info.certificate_path, info.certificate_data),
            _as_file(info.private_key_path, info.private_key_data),
        )
    headers = info.as_http_headers() if hasattr(info, "as_http_headers") else {}
    return Connection(server=info.server.rstrip("/"), headers=headers, verify=verify, cert=cert)


def _as_file(path: Any, data: Any) -> str:
    if path:
        return str(os.fspath(path))
    raw = base64.b64decode(data if isinstance(data, (bytes, str)) else b"")
    fd, name = tempfile.mkstemp(prefix="tritonop-cred-")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return name


def connection_from_credentials(credentials: Credentials) -> Connection:
    """A connection whose token is fetched per request (exec plugins, rotated token files)."""
    return Connection(
        server=credentials.server,
        headers={},
        verify=credentials.ssl_context(),
        cert=None,
        auth=CredentialAuth(credentials),
    )


def discover_connection() -> Connection:
    """In-cluster service account first, then kubeconfig, as kopf itself does; the kubeconfig
    as kubectl reads it (merged KUBECONFIG, exec plugins: tritonop/kube/credentials.py)."""
    try:
        return connection_from_credentials(discover(in_cluster_first=True))
    except CredentialError as err:
        raise RuntimeError(str(err)) from err


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before sending the request again: a 429 or 5xx answer's Retry-After
    header in seconds (an HTTP-date, or anything else, is ignored); None for no retry."""
    if response.status_code != 429 and response.status_code < 500:
        return None
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def http_client(
    connection: Connection,
    *,
    timeout: httpx.Timeout,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client that talks to the API server as ``connection`` says, over aiohttp
    (kube/transport.py) unless a test passes its own transport."""
    limits = limits or httpx.Limits()
    if transport is None:
        transport = AiohttpTransport(
            ssl_context(connection.verify, connection.cert), max_connections=limits.max_connections
        )
    return httpx.AsyncClient(
        base_url=connection.server,
        headers={"User-Agent": f"tritonop/{__version__}", **connection.headers},
        auth=connection.auth,
        timeout=timeout,
        transport=transport,
    )


def watch_cache(
    connection: Connection,
    namespaces: tuple[str, ...] | None,
    *,
    on_change: Callable[[str, str], None],
) -> ObjectCache:
    """The informers' own connections: long-lived watches never take a request slot."""
    http = http_client(
        connection,
        timeout=httpx.Timeout(30.0, read=None, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )
    return ObjectCache(http, namespaces, on_change=on_change)


class KubeClient:
    """CRUD for namespaced objects. Every write goes through here, so it is easy to count.

    With a watch cache (``use_cache``), reads of the kinds it serves are answered from memory
    and every write's answer is written through to it (tritonop/kube/cache.py).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        timeout_s: float = 15.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._slots = asyncio.Semaphore(concurrency)
        # Each request holds a slot while it is sent and answered, and the pool has a
        # connection per slot: the pool timeout never waits, and timeout_s is the request's own
        # time (connect, write, read), not time spent in line. Connecting to the API server is
        # quick or broken: a shorter connect timeout fails fast.
        self._http = http_client(
            connection,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._sleep = sleep
        self.cache: ObjectCache | None = None

    def use_cache(self, cache: ObjectCache) -> None:
        self.cache = cache

    async def aclose(self) -> None:
        await self._http.aclose()

    def _cached(self, api_version: str, kind: str, namespace: str, *, absent_counts: bool) -> bool:
        """Whether the cache answers for this kind here. A kind the server does not serve
        answers "no objects" to reads that only look (list, prune), not to one before a create."""
        if self.cache is None:
            return False
        state = self.cache.state((api_version, kind), namespace)
        return state is State.SYNCED or (absent_counts and state is State.ABSENT)

    def _written(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if self.cache is not None and obj:
            self.cache.written(obj)
        return dict(obj)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        waited = 0.0
        for attempt in range(RETRY_AFTER_ATTEMPTS + 1):
            try:
                async with self._slots:  # not held while waiting out a Retry-After
                    response = await self._http.request(method, path, **kwargs)
            except (httpx.HTTPError, CredentialError) as exc:  # a failing exec plugin is API trouble too
                raise KubeError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            wait = retry_after(response)
            if wait is None or attempt == RETRY_AFTER_ATTEMPTS or waited + wait > RETRY_AFTER_BUDGET_S:
                return self._answer(method, path, response, wait)
            waited += wait
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _answer(method: str, path: str, response: httpx.Response, wait: float | None) -> dict[str, Any]:
        if response.status_code == 404:
            raise NotFound(404, f"{method} {path}: not found")
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, f"{method} {path}: {message}", retry_after=wait)
        return response.json() if response.content else {}

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str, *, fresh: bool = False, looking: bool = False
    ) -> dict[str, Any] | None:
        """The object, from the cache where it serves (projected, and shared: read it, never modify
        it; see kube/cache.py); ``fresh``
        asks the API server for the whole object. ``looking``: the caller only looks (prunes),
        so a kind the server does not serve is known to hold nothing."""
        if not fresh and self._cached(api_version, kind, namespace, absent_counts=looking):
            assert self.cache is not None
            return self.cache.lookup((api_version, kind), namespace, name)
        try:
            return await self._request("GET", object_path(api_version, kind, namespace, name))
        except NotFound:
            return None

    async def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        if self._cached(api_version, kind, namespace, absent_counts=True):
            assert self.cache is not None
            return self.cache.select((api_version, kind), namespace, label_selector)
        path = object_path(api_version, kind, namespace)
        return (await self._request("GET", path, params={"labelSelector": label_selector})).get("items") or []

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"])
        return self._written(await self._request("POST", path, params={"fieldManager": FIELD_MANAGER}, json=obj))

    async def server_side_apply(
        self, obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        params = {"fieldManager": field_manager, **({"force": "true"} if force else {})}
        return self._written(
            await self._request(
                "PATCH",
                path,
                params=params,
                content=json.dumps(obj),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
        )

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        path = object_path(api_version, kind, namespace, name) + (f"/{subresource}" if subresource else "")
        return self._written(
            await self._request(
                "PATCH",
                path,
                params={"fieldManager": FIELD_MANAGER},
                content=json.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            )
        )

    async def evict(self, namespace: str, name: str) -> bool:
        """Evict a pod (the eviction subresource: its PodDisruptionBudget is honoured, the pod
        terminates gracefully); False when it was already gone. A budget that refuses is a
        KubeError 429."""
        path = object_path(POD.api_version, POD.kind, namespace, name) + "/eviction"
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        try:
            await self._request("POST", path, json=eviction)
        except NotFound:
            return False
        return True

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        try:
            await self._request(
                "DELETE",
                object_path(api_version, kind, namespace, name),
                params={"propagationPolicy": "Background"},
            )
        except NotFound:
            if self.cache is not None:
                self.cache.deleted((api_version, kind), namespace, name)
            return False
        if self.cache is not None:
            self.cache.deleted((api_version, kind), namespace, name)
        return True
