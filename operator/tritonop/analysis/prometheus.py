"""Async Prometheus instant-query client. Never raises for what a check must report.

Unreachable servers, timeouts, HTTP errors, ``status: error`` answers and results
that are not one number all come back as ``QueryResult.error``; an empty vector
or NaN comes back as ``QueryResult.no_data``.

Error texts end up in status, so they are bounded and sanitised: the URL is redacted,
Prometheus' own error text is cut to a line of printable characters, credential values
are scrubbed, and every way of not getting a Prometheus answer (refused, timed out, not
HTTP, not JSON) reads the same, so the messages say nothing about which ports are open
where. Failed TLS and refused credentials are named: the URL is one the operator's
administrator allowed (operator_policy.py), and the fix is theirs.

How the operator reaches Prometheus is operator-wide (``PrometheusAccess``, from the
``--prometheus-*`` flags) and the same for every URL it queries: a bearer token or
basic-auth credentials read from files and read again when a file changes (rotated
Secrets, projected ServiceAccount tokens), a CA bundle, a client certificate, extra
headers. docs/prometheus.md.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import ssl
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from tritonop.analysis.result import QueryResult
from tritonop.config import OperatorConfig
from tritonop.redact import REDACTED, redact_uri

log = logging.getLogger(__name__)


class PrometheusAccessError(Exception):
    """A credential or TLS file the operator cannot use, in one line: its path, never its content."""


# ---------------------------------------------------------------- settings


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by the client itself, or by the credential files: an Authorization header on the
# command line would show in the pod spec and in `ps`.
RESERVED_HEADERS = frozenset(
    {"authorization", "host", "content-length", "content-type", "transfer-encoding", "connection"}
)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as (name, value); ValueError otherwise, naming the header, never echoing its value."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not HEADER_NAME.fullmatch(name):
        raise ValueError("a Prometheus header is 'Name: value': a header name, a colon, the value")
    if name.lower() == "authorization":
        raise ValueError(
            "the Prometheus Authorization header comes from --prometheus-bearer-token-file or "
            "--prometheus-basic-auth-*-file, not from --prometheus-header (the pod spec would show it)"
        )
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"the Prometheus header {name} is set by the operator itself")
    if not value or not (value.isascii() and value.isprintable()):
        raise ValueError(f"the Prometheus header {name} needs a value of printable ASCII characters")
    return name, value


@dataclass(frozen=True)
class PrometheusAccess:
    """How the operator authenticates to every Prometheus it queries, and how it verifies them.

    Credentials live in files (a mounted Secret, a projected ServiceAccount token), read
    again whenever they change. ValueError for settings that contradict each other.
    """

    bearer_token_file: str | None = None
    basic_auth_username: str | None = None
    basic_auth_username_file: str | None = None
    basic_auth_password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    tls_server_name: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        basic = self.basic_auth_username or self.basic_auth_username_file or self.basic_auth_password_file
        if self.bearer_token_file and basic:
            raise ValueError("Prometheus gets a bearer token or basic auth, not both")
        if self.basic_auth_username and self.basic_auth_username_file:
            raise ValueError("set --prometheus-basic-auth-username or --prometheus-basic-auth-username-file, not both")
        if basic and not self.basic_auth_password_file:
            raise ValueError("Prometheus basic auth needs --prometheus-basic-auth-password-file")
        if basic and not (self.basic_auth_username or self.basic_auth_username_file):
            raise ValueError(
                "Prometheus basic auth needs --prometheus-basic-auth-username or --prometheus-basic-auth-username-file"
            )
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError(
                "a Prometheus client certificate needs both --prometheus-cert-file and --prometheus-key-file"
            )
        if self.insecure_skip_verify and self.ca_file:
            raise ValueError("--prometheus-insecure-skip-verify ignores --prometheus-ca-file: set one of them")
        if self.tls_server_name is not None and not self.tls_server_name.strip():
            raise ValueError("--prometheus-tls-server-name must not be empty")
        names = [name.lower() for name, _ in self.headers]
        if len(names) != len(set(names)):
            raise ValueError("a Prometheus header is given twice")

    @classmethod
    def from_config(cls, config: OperatorConfig) -> PrometheusAccess:
        return cls(
            bearer_token_file=config.prometheus_bearer_token_file,
            basic_auth_username=config.prometheus_basic_auth_username,
            basic_auth_username_file=config.prometheus_basic_auth_username_file,
            basic_auth_password_file=config.prometheus_basic_auth_password_file,
            ca_file=config.prometheus_ca_file,
            cert_file=config.prometheus_cert_file,
            key_file=config.prometheus_key_file,
            insecure_skip_verify=config.prometheus_insecure_skip_verify,
            tls_server_name=config.prometheus_tls_server_name,
            headers=tuple(parse_header(h) for h in config.prometheus_headers),
        )

    @property
    def sends_credentials(self) -> bool:
        return bool(self.bearer_token_file or self.basic_auth_password_file)

    @property
    def tls_files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.ca_file, self.cert_file, self.key_file) if f)

    def check(self) -> None:
        """Read every file once (PrometheusAccessError), so a wrong path stops `tritonop run` at start."""
        PrometheusAuth(self).authorization()
        ssl_context(self)

    def warnings(self, urls: Iterable[str]) -> list[str]:
        """What an operator's administrator should hear at start."""
        said = []
        if self.insecure_skip_verify:
            said.append(
                "--prometheus-insecure-skip-verify: Prometheus' TLS certificate is not verified; anyone on the "
                "network path can read the credentials and forge the answers canary analysis acts on"
            )
        plain = [redact_uri(u) for u in urls if urlsplit(u).scheme == "http"]
        if self.sends_credentials and plain:
            said.append(f"Prometheus credentials are sent over plain HTTP to {', '.join(plain)}")
        return said


# ---------------------------------------------------------------- credentials and TLS


class _FileValue:
    """A file's content, whitespace stripped (as Prometheus reads its own credential files),
    read again when the file changes: a kubelet swaps Secret and projected volumes atomically,
    so the inode or mtime differs. One stat per request: far cheaper than the request."""

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what = path, what
        self.value = ""
        self._key: tuple[int, int, int] | None = None

    def read(self) -> str:
        try:
            st = os.stat(self.path)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if key != self._key:
                self.value, self._key = Path(self.path).read_text(encoding="utf-8").strip(), key
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "not readable UTF-8 text"
            raise PrometheusAccessError(f"cannot read the {self.what} {self.path}: {reason}") from None
        if not self.value:
            raise PrometheusAccessError(f"the {self.what} {self.path} is empty")
        return self.value


# A secret this short would turn ordinary words of an error text into REDACTED.
MIN_SCRUBBED_LENGTH = 4


class PrometheusAuth(httpx.Auth):
    """The Authorization header from the credential files, current at every request."""

    def __init__(self, access: PrometheusAccess) -> None:
        self.access = access
        self._token = _file(access.bearer_token_file, "Prometheus bearer token file")
        self._username = _file(access.basic_auth_username_file, "Prometheus basic-auth username file")
        self._password = _file(access.basic_auth_password_file, "Prometheus basic-auth password file")

    def authorization(self) -> str | None:
        if self._token is not None:
            return f"Bearer {self._token.read()}"
        if self._password is not None:
            username = self._username.read() if self._username is not None else self.access.basic_auth_username
            pair = f"{username}:{self._password.read()}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = self.authorization()
        if value is not None:
            request.headers["Authorization"] = value
        yield request

    def scrub(self, text: str) -> str:
        """``text`` with every credential value read so far replaced."""
        secrets = [f.value for f in (self._token, self._password) if f is not None]
        if self._password is not None and self._password.value:
            username = self._username.value if self._username is not None else self.access.basic_auth_username
            secrets.append(base64.b64encode(f"{username}:{self._password.value}".encode()).decode())
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= MIN_SCRUBBED_LENGTH:
                text = text.replace(secret, REDACTED)
        return text


def _file(path: str | None, what: str) -> _FileValue | None:
    return _FileValue(path, what) if path else None


def _no_passphrase() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on a terminal


def ssl_context(access: PrometheusAccess) -> ssl.SSLContext:
    """What Prometheus' certificate is verified with (the CA file replaces the system's CAs,
    as in Prometheus' own tls_config), with the client certificate loaded."""
    if access.insecure_skip_verify:
        ctx = httpx.create_ssl_context(verify=False)
    elif access.ca_file:
        try:
            ctx = ssl.create_default_context(cafile=access.ca_file)
        except (OSError, ssl.SSLError) as err:
            raise PrometheusAccessError(f"the Prometheus CA file {access.ca_file}: {_reason(err)}") from None
    else:
        ctx = httpx.create_ssl_context()
    if access.cert_file and access.key_file:
        try:
            ctx.load_cert_chain(access.cert_file, access.key_file, password=_no_passphrase)
        except (OSError, ssl.SSLError) as err:
            raise PrometheusAccessError(
                f"the Prometheus client certificate {access.cert_file} and key {access.key_file}: {_reason(err)}"
            ) from None
    return ctx


def _reason(err: OSError) -> str:
    if isinstance(err, ssl.SSLError):
        return sanitise(getattr(err, "reason", None) or err)
    return err.strerror or type(err).__name__


def _files_state(paths: Iterable[str]) -> tuple[tuple[int, int, int] | None, ...]:
    def state(path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    return tuple(state(p) for p in paths)


# ---------------------------------------------------------------- clients


class PrometheusClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        access: PrometheusAccess | None = None,
        auth: PrometheusAuth | None = None,
        verify: ssl.SSLContext | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``auth`` and ``verify`` default to what ``access`` says; PrometheusClients shares them."""
        access = access or PrometheusAccess()
        self.base_url = base_url.rstrip("/")
        self._auth = auth or PrometheusAuth(access)
        self._extensions = {"sni_hostname": access.tls_server_name} if access.tls_server_name else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout_s,
            transport=transport,
            # None keeps httpx's basic auth from a URL's userinfo, when no credential file is set.
            auth=self._auth if access.sends_credentials else None,
            headers=dict(access.headers),
            verify=verify or ssl_context(access),
            follow_redirects=False,  # credentials go only where the administrator pointed them
        )

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
            response = await self._http.post("/api/v1/query", data=params, extensions=self._extensions)
        except PrometheusAccessError as err:
            return QueryResult.error(str(err))
        except (httpx.HTTPError, OSError) as err:  # a TLS alert on read comes as a bare ssl.SSLError
            return QueryResult.error(self._auth.scrub(_failed(err, self.base_url)))
        result = _interpret(response, self.base_url, self._auth.scrub)
        return replace(result, message=self._auth.scrub(result.message)) if result.message else result


class PrometheusClients:
    """One client (one connection pool) per Prometheus URL, the least recently used closed
    beyond ``max_clients``: every InferenceService may name its own URL. All share the
    credentials; when the CA or client certificate files change (cert-manager renewing
    them), the clients are rebuilt with the new ones."""

    def __init__(self, *, timeout_s: float, access: PrometheusAccess | None = None, max_clients: int = 32) -> None:
        self.timeout_s = timeout_s
        self.access = access or PrometheusAccess()
        self.max_clients = max_clients
        self._auth = PrometheusAuth(self.access)
        self._tls_state = _files_state(self.access.tls_files)
        self._ssl = ssl_context(self.access)
        self._clients: OrderedDict[str, PrometheusClient] = OrderedDict()

    async def for_url(self, url: str) -> PrometheusClient:
        await self._reload_tls()
        client = self._clients.pop(url, None) or PrometheusClient(
            url, timeout_s=self.timeout_s, access=self.access, auth=self._auth, verify=self._ssl
        )
        self._clients[url] = client
        while len(self._clients) > self.max_clients:
            _, evicted = self._clients.popitem(last=False)
            await evicted.aclose()
        return client

    async def _reload_tls(self) -> None:
        state = _files_state(self.access.tls_files)
        if state == self._tls_state:
            return
        self._tls_state = state
        try:
            self._ssl = ssl_context(self.access)
        except PrometheusAccessError as err:
            log.warning("Prometheus TLS files changed but cannot be used; keeping the previous ones: %s", err)
            return
        await self.aclose()  # open connections keep the old certificates

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


def _failed(err: Exception, base_url: str) -> str:
    """Why a request got no answer: TLS failures by name, anything else as no answer."""
    seen: BaseException | None = err
    chain: list[BaseException] = []
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = sanitise(cause.verify_message or cause.reason).rstrip(".")
            hint = (
                "does --prometheus-tls-server-name name a host its certificate holds?"
                if "mismatch" in reason
                else "is --prometheus-ca-file the CA that signed its certificate?"
            )
            return f"TLS verification of Prometheus at {redact_uri(base_url)} failed: {reason} ({hint})"
        if isinstance(cause, ssl.SSLError):
            reason = sanitise(getattr(cause, "reason", None) or cause)
            return f"TLS with Prometheus at {redact_uri(base_url)} failed: {reason}"
    return no_answer(base_url)


def _interpret(response: httpx.Response, base_url: str, scrub: Callable[[str], str] = str) -> QueryResult:
    """``scrub`` runs on Prometheus' own texts before they are cut short, so no prefix of a
    credential survives the cut."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        if response.status_code in (401, 403):
            return QueryResult.error(
                f"Prometheus at {redact_uri(base_url)} refused the request (HTTP {response.status_code}): check the "
                "operator's Prometheus credentials and tenant header (docs/prometheus.md)"
            )
        return QueryResult.error(no_answer(base_url))
    if body.get("status") != "success":
        # Prometheus puts a JSON error body on 400/422/503 too; its text is the useful part.
        detail = sanitise(scrub(str(body.get("error") or f"HTTP {response.status_code}")))
        kind = sanitise(scrub(str(body.get("errorType") or "")))
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
