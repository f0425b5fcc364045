"""`tritonop run`'s check before kopf starts: can this process reach and use the Kubernetes API?

kopf retries a missing or broken connection forever, one traceback after another. This asks
the API server twice, bounded by a few seconds, with the operator's own credentials (service
account, else kubeconfig): GET /version (reachable, credentials accepted), then a LIST of
InferenceServices where the operator will watch them (the CRD is installed, RBAC allows it).
What fails becomes one line for the user; 5xx and 429 answers are left to kopf's retries.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from tritonop import GROUP, PLURAL, VERSION, __version__

TIMEOUT_S = 5.0
HINT = "check KUBECONFIG or the in-cluster service account"


class PreflightError(Exception):
    """Why the operator cannot start, in one line."""


def check(namespaces: Sequence[str], timeout_s: float = TIMEOUT_S) -> None:
    """Raise PreflightError when the API cannot be used; return quietly otherwise."""
    from tritonop.kube.client import discover_connection

    try:
        connection = discover_connection()
    except Exception as err:  # kubeconfig parsing fails in many ways; each is one line here
        text = _one_line(err)
        if not text.startswith("no Kubernetes credentials"):
            text = f"no usable Kubernetes credentials: {type(err).__name__}: {text}"
        raise PreflightError(text if "KUBECONFIG" in text else f"{text} ({HINT})") from err
    asyncio.run(_ask(connection, namespaces, timeout_s))


async def _ask(connection: Any, namespaces: Sequence[str], timeout_s: float) -> None:
    server = connection.server
    async with httpx.AsyncClient(
        base_url=server,
        headers={"User-Agent": f"tritonop/{__version__}", **connection.headers},
        verify=connection.verify,
        cert=connection.cert,
        auth=getattr(connection, "auth", None),
        timeout=timeout_s,
    ) as http:
        version = await _get(http, server, "/version", timeout_s)
        if version.status_code == 401:
            raise PreflightError(_rejected(server, version))
        exact = [ns for ns in namespaces if not set(ns) & set("*?[!")]
        base = f"/apis/{GROUP}/{VERSION}"
        paths = [f"{base}/namespaces/{ns}/{PLURAL}" for ns in exact] if namespaces else [f"{base}/{PLURAL}"]
        for path in paths:
            answer = await _get(http, server, path, timeout_s, params={"limit": "1"})
            where = f"in namespace {path.split('/')[5]}" if namespaces else "in all namespaces"
            if answer.status_code == 401:
                raise PreflightError(_rejected(server, answer))
            if answer.status_code == 403:
                raise PreflightError(
                    f"the Kubernetes API at {server} refused to list {PLURAL}.{GROUP} {where} "
                    f"(403 Forbidden: {_message(answer)}); grant the operator's RBAC (the Helm chart does)"
                )
            if answer.status_code == 404:
                raise PreflightError(
                    f"the Kubernetes API at {server} does not serve {PLURAL}.{GROUP}/{VERSION} "
                    "(is the CRD installed? `tritonop crd | kubectl apply --server-side -f -`)"
                )


async def _get(
    http: httpx.AsyncClient, server: str, path: str, timeout_s: float, params: dict[str, str] | None = None
) -> httpx.Response:
    try:
        return await asyncio.wait_for(http.get(path, params=params), timeout_s + 1)
    except (httpx.HTTPError, TimeoutError, OSError, ssl.SSLError) as err:
        raise PreflightError(f"cannot reach the Kubernetes API at {server}: {_why(err, timeout_s)} ({HINT})") from err


def _why(err: BaseException, timeout_s: float) -> str:
    """The root cause of a failed request, as a person names it."""
    chain: list[BaseException] = []
    seen: BaseException | None = err
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS verification failed: {cause.verify_message or cause}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {_one_line(cause)}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    if any(isinstance(c, (TimeoutError, httpx.TimeoutException)) for c in chain):
        return f"no answer within {timeout_s:g}s"
    text = _one_line(err)
    for needle, said in (
        ("refused", "connection refused"),
        ("Name or service not known", "cannot resolve the host name"),
        ("nodename nor servname", "cannot resolve the host name"),
        ("CERTIFICATE_VERIFY_FAILED", f"TLS verification failed: {text}"),
    ):
        if needle in text:
            return said
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _rejected(server: str, answer: httpx.Response) -> str:
    return f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized: {_message(answer)}) ({HINT})"


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return _one_line(answer.text) or answer.reason_phrase
    return (
        _one_line(str(body.get("message") or answer.reason_phrase)) if isinstance(body, dict) else answer.reason_phrase
    )


def _one_line(err: object) -> str:
    return " ".join(str(err).split())
