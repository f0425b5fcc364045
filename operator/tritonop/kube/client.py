"""A small async Kubernetes client for the kinds tritonop manages.

Why not the official client: its calls are blocking, and kopf's handlers, watches and
peering share one event loop. This client speaks plain HTTP with httpx, takes its
credentials from kopf's own login functions (service account, then kubeconfig), and
knows exactly the resources the operator touches, which is also what RBAC grants.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tritonop import FIELD_MANAGER, __version__
from tritonop.kinds import kind_of


class KubeError(Exception):
    """An API error: status code and the server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


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


def discover_connection() -> Connection:
    """In-cluster service account first, then kubeconfig, as kopf itself does."""
    import kopf  # local: keep the module importable without kopf's side effects

    settings = kopf.OperatorSettings()
    for login in (kopf.login_with_service_account, kopf.login_with_kubeconfig):
        info = login(settings=settings)
        if info is not None:
            return connection_from_kopf(info)
    raise RuntimeError("no Kubernetes credentials: neither a service account nor a kubeconfig was found")


class KubeClient:
    """CRUD for namespaced objects. Every write goes through here, so it is easy to count."""

    def __init__(self, connection: Connection, *, timeout_s: float = 15.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=connection.server,
            headers={"User-Agent": f"tritonop/{__version__}", **connection.headers},
            verify=connection.verify,
            cert=connection.cert,
            timeout=timeout_s,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KubeError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise NotFound(404, f"{method} {path}: not found")
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, f"{method} {path}: {message}")
        return response.json() if response.content else {}

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", object_path(api_version, kind, namespace, name))
        except NotFound:
            return None

    async def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        path = object_path(api_version, kind, namespace)
        return (await self._request("GET", path, params={"labelSelector": label_selector})).get("items") or []

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"])
        return await self._request("POST", path, params={"fieldManager": FIELD_MANAGER}, json=obj)

    async def server_side_apply(
        self, obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        params = {"fieldManager": field_manager, **({"force": "true"} if force else {})}
        return await self._request(
            "PATCH",
            path,
            params=params,
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
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
        return await self._request(
            "PATCH",
            path,
            params={"fieldManager": FIELD_MANAGER},
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        try:
            await self._request(
                "DELETE",
                object_path(api_version, kind, namespace, name),
                params={"propagationPolicy": "Background"},
            )
        except NotFound:
            return False
        return True
