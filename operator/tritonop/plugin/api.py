"""The few API calls the plugin makes, over httpx with kubectl's credentials."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from tritonop import API_VERSION, PLURAL, __version__
from tritonop.children.labels import ISVC_LABEL
from tritonop.kube.credentials import CredentialAuth, Credentials

KIND = "InferenceService"


class PluginError(Exception):
    """A one-line error for the user."""


class Api:
    def __init__(
        self, credentials: Credentials, *, timeout_s: float = 15.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.server = credentials.server
        self._http = httpx.Client(
            base_url=credentials.server,
            verify=credentials.ssl_context(),
            auth=CredentialAuth(credentials),
            headers={"User-Agent": f"kubectl-tritonop/{__version__}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise PluginError(f"cannot reach the API server at {self.server}: {err or type(err).__name__}") from err
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message") or response.text)
            except ValueError:
                message = response.text.strip() or response.reason_phrase
            if response.status_code == 401:
                raise PluginError(f"You must be logged in to the server (Unauthorized): {message}")
            raise ApiError(response.status_code, message)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    @staticmethod
    def isvc_path(namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{API_VERSION}"
        path = f"{base}/namespaces/{namespace}/{PLURAL}" if namespace else f"{base}/{PLURAL}"
        return f"{path}/{name}" if name else path

    def isvc(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.request("GET", self.isvc_path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                raise PluginError(f'inferenceservice "{name}" not found in namespace "{namespace}"') from err
            raise

    def isvcs(self, namespace: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", self.isvc_path(namespace)).get("items") or []
        return items

    def deployments(self, namespace: str, name: str) -> list[dict[str, Any]]:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        items: list[dict[str, Any]] = (
            self.request("GET", path, params={"labelSelector": f"{ISVC_LABEL}={name}"}).get("items") or []
        )
        return items

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
        items: list[dict[str, Any]] = (
            self.request("GET", f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": selector}).get(
                "items"
            )
            or []
        )
        return items

    def patch(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH",
            self.isvc_path(namespace, name),
            params={"fieldManager": "kubectl-tritonop"},
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )


class ApiError(PluginError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} ({status})" if message else f"the API server answered {status}")
        self.status = status
