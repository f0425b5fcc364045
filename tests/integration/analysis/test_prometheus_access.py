"""The Prometheus client sends the configured auth, CA and headers to a real local listener.

A local HTTPS server (certificates made with openssl per module) answers Prometheus' query
API and records what each request carried: headers, the client certificate. Credential
files are laid out as a kubelet lays out a mounted Secret (``..data`` swapped atomically),
so a rotation is the real thing. The last tests put a real Prometheus behind TLS, client
certificates and basic auth (its own --web.config.file) and query it as the operator does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controller_harness import Harness, model_spec
from tests.support.prometheus import prometheus_binary
from tests.support.triton import free_port
from tritonop.analysis.prometheus import (
    PrometheusAccess,
    PrometheusAccessError,
    PrometheusClient,
    PrometheusClients,
)
from tritonop.analysis.result import QueryResult
from tritonop.config import OperatorConfig
from tritonop.controller import Controller

TOKEN = "s3cr3t-token-value-1"
ROTATED = "s3cr3t-token-value-2"
PASSWORD = "pa55-w0rd-value"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ONE = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "1"]}]}}

# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca: Path  # signs the servers and the client
    other_ca: Path  # signs nothing here: an unknown CA
    server: tuple[Path, Path]  # for 127.0.0.1
    named: tuple[Path, Path]  # for the name prometheus.test only
    client: tuple[Path, Path]  # CN=tritonop-operator, client auth


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not on PATH")
    out = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                 "-subj", f"/CN=tritonop-test-{ca}", cwd=out)  # fmt: skip
    leaves = {
        "server": ("/CN=prometheus", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        "named": ("/CN=prometheus", "subjectAltName=DNS:prometheus.test\nextendedKeyUsage=serverAuth"),
        "client": ("/CN=tritonop-operator", "extendedKeyUsage=clientAuth"),
    }
    for name, (subject, extensions) in leaves.items():
        (out / f"{name}.ext").write_text(extensions + "\n")
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=out)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=out)  # fmt: skip
    pair = {name: (out / f"{name}.crt", out / f"{name}.key") for name in leaves}
    return Pki(out / "ca.crt", out / "other-ca.crt", pair["server"], pair["named"], pair["client"])


# ---------------------------------------------------------------- the listener


@dataclass(frozen=True)
class Seen:
    headers: dict[str, str]  # lower-case names
    body: str
    client_cn: str | None


Responder = Callable[[dict[str, str]], tuple[int, str]]


@dataclass
class Listener:
    """An HTTPS server on 127.0.0.1 answering POST /api/v1/query, recording every request."""

    cert: tuple[Path, Path]
    client_ca: Path | None = None  # set: a client certificate signed by it is required
    respond: Responder = field(default=lambda headers: (200, json.dumps(ONE)))
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, self.cert))
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(self.client_ca))
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                peer = self.request.getpeercert() if isinstance(self.request, ssl.SSLSocket) else None
                cn = next((v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"), None)
                listener.seen.append(Seen(headers, body, cn))
                status, text = listener.respond(headers)
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def listener(pki: Pki) -> Iterator[Listener]:
    server = Listener(pki.server)
    yield server
    server.close()


def project(directory: Path, files: dict[str, str]) -> dict[str, str]:
    """Write files as the kubelet writes a Secret volume: a new timestamped folder, then the
    ``..data`` link swapped atomically; each name links through ``..data``. Returns name -> path."""
    directory.mkdir(exist_ok=True)
    stamp = directory / f"..{time.time_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_text(content)
    (directory / "..data_tmp").symlink_to(stamp.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    return {name: str(directory / name) for name in files}


async def query(url: str, access: PrometheusAccess) -> QueryResult:
    async with PrometheusClient(url, access=access, timeout_s=10) as client:
        return await client.query("up")


# ---------------------------------------------------------------- credentials and headers


async def test_bearer_token_is_sent_and_a_rotated_token_is_picked_up(
    pki: Pki, listener: Listener, tmp_path: Path
) -> None:
    files = project(tmp_path / "auth", {"token": TOKEN + "\n"})
    access = PrometheusAccess(bearer_token_file=files["token"], ca_file=str(pki.ca))
    async with PrometheusClient(listener.url, access=access) as client:
        assert await client.query("up") == QueryResult.of(1.0)
        project(tmp_path / "auth", {"token": ROTATED})  # the kubelet updates the Secret
        assert await client.query("up") == QueryResult.of(1.0)
    assert [s.headers["authorization"] for s in listener.seen] == [f"Bearer {TOKEN}", f"Bearer {ROTATED}"]


async def test_basic_auth_from_files_and_from_a_username_flag(pki: Pki, listener: Listener, tmp_path: Path) -> None:
    files = project(tmp_path / "auth", {"username": "tenant-a\n", "password": PASSWORD + "\n"})
    from_files = PrometheusAccess(
        basic_auth_username_file=files["username"], basic_auth_password_file=files["password"], ca_file=str(pki.ca)
    )
    from_flag = PrometheusAccess(
        basic_auth_username="tenant-b", basic_auth_password_file=files["password"], ca_file=str(pki.ca)
    )
    assert await query(listener.url, from_files) == QueryResult.of(1.0)
    assert await query(listener.url, from_flag) == QueryResult.of(1.0)
    sent = [base64.b64decode(s.headers["authorization"].removeprefix("Basic ")).decode() for s in listener.seen]
    assert sent == [f"tenant-a:{PASSWORD}", f"tenant-b:{PASSWORD}"]


async def test_extra_headers_reach_every_prometheus_through_the_shared_clients(pki: Pki, listener: Listener) -> None:
    other = Listener(pki.server)
    access = PrometheusAccess(ca_file=str(pki.ca), headers=(("X-Scope-OrgID", "team-a"), ("X-Trace", "a, b")))
    clients = PrometheusClients(timeout_s=10, access=access)
    try:
        for url in (listener.url, other.url):
            assert await (await clients.for_url(url)).query("up") == QueryResult.of(1.0)
    finally:
        await clients.aclose()
        other.close()
    for seen in (*listener.seen, *other.seen):
        assert seen.headers["x-scope-orgid"] == "team-a" and seen.headers["x-trace"] == "a, b"
        assert "authorization" not in seen.headers
        assert "query=up" in seen.body


# ---------------------------------------------------------------- TLS


async def test_the_ca_is_required_and_an_unknown_ca_fails_clearly(pki: Pki, listener: Listener) -> None:
    for access in (PrometheusAccess(), PrometheusAccess(ca_file=str(pki.other_ca))):
        result = await query(listener.url, access)
        assert result.status == "error"
        assert result.message.startswith(f"TLS verification of Prometheus at {listener.url} failed: ")
        assert "unable to get local issuer certificate" in result.message
        assert "--prometheus-ca-file" in result.message
    assert listener.seen == []  # nothing was sent to a server that could not be verified
    assert await query(listener.url, PrometheusAccess(ca_file=str(pki.ca))) == QueryResult.of(1.0)


async def test_insecure_skip_verify_accepts_an_unknown_ca(listener: Listener) -> None:
    access = PrometheusAccess(insecure_skip_verify=True)
    assert await query(listener.url, access) == QueryResult.of(1.0)
    assert access.warnings([listener.url]) and "not verified" in access.warnings([listener.url])[0]


async def test_tls_server_name_is_checked_instead_of_the_url_host(pki: Pki) -> None:
    named = Listener(pki.named)  # its certificate names prometheus.test, not 127.0.0.1
    try:
        mismatch = await query(named.url, PrometheusAccess(ca_file=str(pki.ca)))
        assert mismatch.status == "error" and "certificate is not valid for '127.0.0.1'" in mismatch.message
        assert "--prometheus-tls-server-name" in mismatch.message
        access = PrometheusAccess(ca_file=str(pki.ca), tls_server_name="prometheus.test")
        assert await query(named.url, access) == QueryResult.of(1.0)
        wrong = PrometheusAccess(ca_file=str(pki.ca), tls_server_name="elsewhere.test")
        assert (await query(named.url, wrong)).status == "error"
    finally:
        named.close()


async def test_client_certificate_is_presented_for_mtls(pki: Pki) -> None:
    mtls = Listener(pki.server, client_ca=pki.ca)
    try:
        # TLS 1.3 refuses a missing certificate after the client's handshake: the client sees
        # its connection close, the same words as any lost answer.
        without = await query(mtls.url, PrometheusAccess(ca_file=str(pki.ca)))
        assert without == QueryResult.error(f"no Prometheus answer from {mtls.url}")
        cert, key = pki.client
        access = PrometheusAccess(ca_file=str(pki.ca), cert_file=str(cert), key_file=str(key))
        assert await query(mtls.url, access) == QueryResult.of(1.0)
    finally:
        mtls.close()
    assert [s.client_cn for s in mtls.seen] == ["tritonop-operator"]


async def test_a_renewed_ca_file_is_used_without_a_restart(pki: Pki, listener: Listener, tmp_path: Path) -> None:
    files = project(tmp_path / "ca", {"ca.crt": pki.other_ca.read_text()})
    clients = PrometheusClients(timeout_s=10, access=PrometheusAccess(ca_file=files["ca.crt"]))
    try:
        assert (await (await clients.for_url(listener.url)).query("up")).status == "error"
        project(tmp_path / "ca", {"ca.crt": pki.ca.read_text()})
        assert await (await clients.for_url(listener.url)).query("up") == QueryResult.of(1.0)
    finally:
        await clients.aclose()


# ---------------------------------------------------------------- the controller's own clients


async def test_canary_analysis_in_the_controller_queries_with_the_operator_settings(
    pki: Pki, listener: Listener, tmp_path: Path
) -> None:
    """The Controller builds its Prometheus clients from OperatorConfig: a canary analysis
    against an allowed URL carries the token and the tenant header, over the configured CA."""
    files = project(tmp_path / "auth", {"token": TOKEN})
    config = OperatorConfig(
        triton_image="tritonserver:test",
        prometheus_url="https://prometheus.monitoring:9090",
        allowed_prometheus_urls=(listener.url,),
        prometheus_bearer_token_file=files["token"],
        prometheus_ca_file=str(pki.ca),
        prometheus_headers=("X-Scope-OrgID: team-a",),
    )
    h = Harness(T0, config=config)
    operator_clients = Controller(h.kube, config, post_event=lambda body, event: None).prometheus
    h.controller.prometheus = operator_clients  # the harness' stand-in, replaced by the real thing
    rollout = {"steps": [20, 50], "interval": "10s", "analysis": {"mode": "interval", "prometheusUrl": listener.url}}
    gateway = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
    try:
        for storage in ("s3://models/v1", "s3://models/v2"):
            h.apply(model_spec(storage, traffic=gateway, rollout=rollout))
            await h.reconcile()
            await h.tick()
        h.advance(10)
        await h.tick()
    finally:
        await operator_clients.aclose()
    assert listener.seen, "the canary analysis never asked the allowed Prometheus"
    for seen in listener.seen:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["x-scope-orgid"] == "team-a"


# ---------------------------------------------------------------- secrets stay secret


async def test_secret_values_never_appear_in_error_text(pki: Pki, tmp_path: Path) -> None:
    def echo_unauthorized(headers: dict[str, str]) -> tuple[int, str]:
        return 401, f"bad credentials: {headers.get('authorization')}"

    def echo_in_prometheus_error(headers: dict[str, str]) -> tuple[int, str]:
        # Long enough that the credential straddles the cut to 200 characters.
        error = f"{'x' * 165} saw Authorization: {headers.get('authorization')}"
        return 422, json.dumps({"status": "error", "errorType": "execution", "error": error})

    files = project(tmp_path / "auth", {"token": TOKEN, "password": PASSWORD})
    bearer = PrometheusAccess(bearer_token_file=files["token"], ca_file=str(pki.ca))
    basic = PrometheusAccess(basic_auth_username="u", basic_auth_password_file=files["password"], ca_file=str(pki.ca))
    encoded = base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    messages = []
    for respond in (echo_unauthorized, echo_in_prometheus_error):
        server = Listener(pki.server, respond=respond)
        try:
            for access in (bearer, basic):
                result = await query(server.url, access)
                assert result.status == "error"
                messages.append(result.message)
        finally:
            server.close()
    assert (
        messages[0].startswith("Prometheus at https://127.0.0.1:") and "refused the request (HTTP 401)" in messages[0]
    )
    assert "Authorization: Bearer RED" in messages[2] and "Authorization: Basic RED" in messages[3]  # scrubbed
    for message in messages:
        assert TOKEN[:6] not in message and PASSWORD[:6] not in message and encoded[:6] not in message


async def test_an_unreadable_token_file_is_an_error_naming_the_file(
    pki: Pki, listener: Listener, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "token"
    result = await query(listener.url, PrometheusAccess(bearer_token_file=str(missing), ca_file=str(pki.ca)))
    assert result == QueryResult.error(
        f"cannot read the Prometheus bearer token file {missing}: No such file or directory"
    )
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PrometheusAccessError, match="is empty"):
        PrometheusAccess(bearer_token_file=str(tmp_path / "empty")).check()
    assert listener.seen == []  # no request without the credentials it should carry


# ---------------------------------------------------------------- a real Prometheus behind TLS


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt leaves the stdlib in 3.13
        import crypt

    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not hashed or not hashed.startswith("$2"):
        pytest.skip("this libcrypt has no bcrypt")
    return hashed


@pytest.fixture(scope="module")
def secured_prometheus(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real prometheus requiring TLS, a client certificate signed by the CA, and basic auth."""
    binary = prometheus_binary()
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    web = {
        "tls_server_config": {
            "cert_file": str(pki.server[0]),
            "key_file": str(pki.server[1]),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": str(pki.ca),
        },
        "basic_auth_users": {"tritonop": _bcrypt(PASSWORD)},
    }
    (work / "web.yml").write_text(yaml.safe_dump(web))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--web.config.file={work / 'web.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("wb"),
    )
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def secured_access(pki: Pki, password_file: str, **overrides: Any) -> PrometheusAccess:
    cert, key = pki.client
    settings: dict[str, Any] = {
        "basic_auth_username": "tritonop",
        "basic_auth_password_file": password_file,
        "ca_file": str(pki.ca),
        "cert_file": str(cert),
        "key_file": str(key),
    }
    return PrometheusAccess(**{**settings, **overrides})


@pytest.mark.prometheus
async def test_a_real_prometheus_behind_tls_client_certificates_and_basic_auth(
    pki: Pki, secured_prometheus: str, tmp_path: Path
) -> None:
    files = project(tmp_path / "auth", {"password": PASSWORD, "wrong": "not-the-password"})
    good = secured_access(pki, files["password"])
    async with PrometheusClient(secured_prometheus, access=good) as client:
        deadline = time.monotonic() + 30
        result = await client.query("vector(42)")
        while result.status == "error" and "no Prometheus answer" in result.message and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the process is still starting: poll until it answers
            result = await client.query("vector(42)")
        assert result == QueryResult.of(42.0)

    refused = await query(secured_prometheus, secured_access(pki, files["wrong"]))
    assert refused.status == "error" and "refused the request (HTTP 401)" in refused.message
    no_cert = await query(secured_prometheus, secured_access(pki, files["password"], cert_file=None, key_file=None))
    assert no_cert.status == "error"
    unknown_ca = await query(secured_prometheus, secured_access(pki, files["password"], ca_file=str(pki.other_ca)))
    assert unknown_ca.status == "error" and "TLS verification" in unknown_ca.message
    for result in (refused, no_cert, unknown_ca):
        assert PASSWORD not in result.message
