"""tests/support/fault_proxy.py against a real kube-apiserver (no controllers needed).

Checked: requests pass through unchanged (GET/POST/PATCH answers equal the direct ones),
a bearer token is forwarded without the admin certificate while a request with no
credentials is the admin, every request is recorded, and each fault is seen by a client as
specified: a 409 Status body that never reached the server, a 429 with Retry-After, a 503,
a delay at least as long as asked, a watch stream cut by drop_watches, and a watch answered
with one 410 Gone ERROR event.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.control_plane import APIError, ControlPlane, eventually
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.slow

NS = "proxied"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        plane.request_json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": NS}})  # fmt: skip
        yield plane


@pytest.fixture(scope="module")
def proxy(cp: ControlPlane) -> Iterator[FaultProxy]:
    with FaultProxy(cp) as running:
        yield running


@pytest.fixture(autouse=True)
def no_leftover_faults(proxy: FaultProxy) -> Iterator[None]:
    yield
    left = proxy.pending_faults()
    proxy.clear_faults()
    assert left == 0, f"{left} injected faults were never hit"


class Answer:
    def __init__(self, status: int, headers: Mapping[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.raw = raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def call(
    proxy: FaultProxy,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    sent = {"Accept": "application/json", "User-Agent": "fault-proxy-test/1"} | dict(headers or {})
    if data is not None:
        sent["Content-Type"] = content_type
    request = urllib.request.Request(proxy.url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers.items()), err.read())


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}


def direct_get(cp: ControlPlane, path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cp.request_json("GET", path)
    except APIError as err:
        if err.status == 404:
            return None
        raise
    return found


# ------------------------------------------------------------------ pass-through and recording


def test_get_post_patch_pass_through_unchanged(cp: ControlPlane, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    got = call(proxy, "GET", f"/api/v1/namespaces/{NS}")
    assert got.status == 200 and got.headers["Content-Type"] == "application/json"
    assert got.headers.get("Audit-Id"), got.headers
    assert got.json == cp.request_json("GET", f"/api/v1/namespaces/{NS}")

    created = call(proxy, "POST", CONFIGMAPS, configmap("plain", a="1"), headers={"X-Extra": "kept"})
    assert created.status == 201, created.raw
    assert created.json == direct_get(cp, f"{CONFIGMAPS}/plain")

    patched = call(proxy, "PATCH", f"{CONFIGMAPS}/plain?fieldManager=proxytest", {"data": {"b": "2"}},
                   content_type="application/merge-patch+json")  # fmt: skip
    assert patched.status == 200, patched.raw
    assert patched.json["data"] == {"a": "1", "b": "2"}
    assert patched.json == direct_get(cp, f"{CONFIGMAPS}/plain")

    missing = call(proxy, "GET", f"{CONFIGMAPS}/absent")
    assert missing.status == 404 and missing.json["reason"] == "NotFound"  # errors pass through too

    get, post, patch, absent = proxy.since(mark)
    assert (get.method, get.path, get.status, get.injected, get.body) == ("GET", f"/api/v1/namespaces/{NS}", 200,
                                                                          None, None)  # fmt: skip
    assert get.headers["User-Agent"] == "fault-proxy-test/1"
    assert (post.method, post.path, post.status) == ("POST", CONFIGMAPS, 201)
    assert post.body == configmap("plain", a="1") and post.headers["X-Extra"] == "kept"
    assert (patch.method, patch.query, patch.body) == ("PATCH", {"fieldManager": "proxytest"}, {"data": {"b": "2"}})
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert (absent.status, absent.injected) == (404, None)
    assert get.at <= post.at <= patch.at <= absent.at <= time.monotonic()


def test_a_bearer_token_is_forwarded_without_the_admin_certificate(cp: ControlPlane, proxy: FaultProxy) -> None:
    eventually(lambda: direct_get(cp, f"/api/v1/namespaces/{NS}/serviceaccounts/default") or _create_default_sa(cp),
               "the default ServiceAccount")  # fmt: skip
    token = cp.kubectl("create", "token", "default", "-n", NS, "--duration=10m").stdout.strip()
    as_sa = call(proxy, "GET", CONFIGMAPS, headers={"Authorization": f"Bearer {token}"})
    assert as_sa.status == 403, as_sa.raw  # authenticated as the ServiceAccount, which may not list
    assert f"system:serviceaccount:{NS}:default" in as_sa.json["message"]
    assert call(proxy, "GET", CONFIGMAPS).status == 200  # no credentials: the admin


def _create_default_sa(cp: ControlPlane) -> bool:
    # No serviceaccount controller in this plane: make the account by hand.
    cp.request_json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts",
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})  # fmt: skip
    return True


def test_the_kubeconfig_serves_kubectl(cp: ControlPlane, proxy: FaultProxy, tmp_path: Path) -> None:
    config = proxy.kubeconfig(tmp_path / "kubeconfig")
    mark = proxy.mark()
    out = cp.kubectl(f"--kubeconfig={config}", "get", "configmaps", "-n", NS, "-o", "name")
    assert "configmap/plain" in out.stdout.split()
    assert any(r.path == CONFIGMAPS and "kubectl" in r.headers.get("User-Agent", "") for r in proxy.since(mark))


# ------------------------------------------------------------------ faults


def test_a_409_is_a_conflict_status_and_never_reaches_the_server(cp: ControlPlane, proxy: FaultProxy) -> None:
    proxy.fail_next("POST", "/configmaps$", status=409)
    mark = proxy.mark()
    answer = call(proxy, "POST", CONFIGMAPS, configmap("conflicted"))
    assert answer.status == 409
    assert answer.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "injected by fault proxy", "reason": "Conflict", "code": 409}  # fmt: skip
    assert direct_get(cp, f"{CONFIGMAPS}/conflicted") is None
    (recorded,) = proxy.since(mark)
    assert (recorded.status, recorded.injected, recorded.body["metadata"]["name"]) == (409, "fail", "conflicted")
    # One only: the next one goes through.
    assert call(proxy, "POST", CONFIGMAPS, configmap("conflicted")).status == 201


def test_a_429_carries_retry_after(proxy: FaultProxy) -> None:
    proxy.fail_next("GET", CONFIGMAPS, status=429, retry_after=3, times=2)
    for _ in range(2):
        answer = call(proxy, "GET", CONFIGMAPS)
        assert answer.status == 429 and answer.headers["Retry-After"] == "3"
        assert answer.json["reason"] == "TooManyRequests" and answer.json["details"] == {"retryAfterSeconds": 3}
    assert call(proxy, "GET", CONFIGMAPS).status == 200


def test_a_503_and_a_500_by_regex_and_method(proxy: FaultProxy) -> None:
    proxy.fail_next("GET", r"/configmaps/[^/]+$", status=503)
    assert call(proxy, "GET", CONFIGMAPS).status == 200  # the collection does not match
    assert call(proxy, "DELETE", f"{CONFIGMAPS}/absent").status == 404  # nor another method
    answer = call(proxy, "GET", f"{CONFIGMAPS}/plain")
    assert (answer.status, answer.json["reason"]) == (503, "ServiceUnavailable")
    assert "Retry-After" not in answer.headers
    proxy.fail_next("*", "configmaps/plain", status=500, reason="InternalError")
    answer = call(proxy, "PATCH", f"{CONFIGMAPS}/plain", {}, content_type="application/merge-patch+json")
    assert (answer.status, answer.json["reason"], answer.json["code"]) == (500, "InternalError", 500)


def test_a_delayed_request_is_answered_no_sooner_than_asked(cp: ControlPlane, proxy: FaultProxy) -> None:
    proxy.delay_next("GET", f"{CONFIGMAPS}/plain", seconds=1.5)
    started = time.monotonic()
    answer = call(proxy, "GET", f"{CONFIGMAPS}/plain")
    assert time.monotonic() - started >= 1.5
    assert answer.status == 200 and answer.json == direct_get(cp, f"{CONFIGMAPS}/plain")
    assert proxy.requests[-1].injected == "delay"
    started = time.monotonic()
    assert call(proxy, "GET", f"{CONFIGMAPS}/plain").status == 200
    assert time.monotonic() - started < 1.5  # once only


def _open_watch(proxy: FaultProxy, path: str) -> http.client.HTTPResponse:
    parsed = urllib.parse.urlsplit(proxy.url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=20)
    conn.request("GET", path, headers={"Accept": "application/json"})
    return conn.getresponse()


def test_drop_watches_cuts_an_open_stream(cp: ControlPlane, proxy: FaultProxy) -> None:
    response = _open_watch(proxy, f"{CONFIGMAPS}?watch=true&resourceVersion=0")
    assert response.status == 200
    first = json.loads(response.readline())  # resourceVersion=0: the existing objects as ADDED
    assert first["type"] == "ADDED"
    eventually(lambda: proxy.open_watches == 1, "the watch registered as open")
    # Events still stream through: one made now arrives.
    cp.request_json("POST", CONFIGMAPS, configmap("during-watch"))
    while json.loads(response.readline())["object"]["metadata"]["name"] != "during-watch":
        pass
    assert proxy.drop_watches() == 1
    started = time.monotonic()
    with pytest.raises((http.client.IncompleteRead, ConnectionError, http.client.HTTPException)):
        while True:  # the chunked stream ends with no final chunk
            line = response.readline()
            if not line:
                raise ConnectionError("the stream ended")
    assert time.monotonic() - started < 15, "the client waited for the socket timeout, not a cut"
    assert proxy.open_watches == 0
    watches = [r for r in proxy.requests if r.is_watch and r.path == CONFIGMAPS]
    assert watches and watches[-1].status == 200


def test_gone_next_watch_sends_one_410_error_event(proxy: FaultProxy) -> None:
    proxy.gone_next_watch(CONFIGMAPS)
    assert call(proxy, "GET", CONFIGMAPS).status == 200  # not a watch: a plain GET of the path is left alone
    mark = proxy.mark()
    response = _open_watch(proxy, f"{CONFIGMAPS}?watch=true&resourceVersion=1")
    assert response.status == 200
    lines = response.read().splitlines()  # ends by itself
    assert [json.loads(line) for line in lines] == [
        {
            "type": "ERROR",
            "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "too old resource version (injected by fault proxy)", "reason": "Expired",
                       "code": 410},
        }
    ]  # fmt: skip
    (recorded,) = proxy.since(mark)
    assert (recorded.status, recorded.injected, recorded.query["watch"]) == (200, "gone", "true")
