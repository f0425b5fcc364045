"""Kubernetes credentials found the way kubectl finds them.

Kubeconfig: ``--kubeconfig`` (that one file), else every file in ``KUBECONFIG`` merged (the
first file to name a cluster, user or context wins, and the first ``current-context`` set
wins), else ``~/.kube/config``; ``--context`` overrides current-context. Relative paths in a
file are relative to that file. A user may have a token, a tokenFile, a client certificate
(file or data), an exec plugin (client.authentication.k8s.io v1 or v1beta1
ExecCredential), which is run again once the credential it printed has expired, or the
`oidc` auth-provider: its id-token is sent while the token's `exp` is ahead, then refreshed
with the refresh-token at the identity provider's token endpoint (found through its
discovery document), as client-go does; the refreshed tokens are kept in memory, not written
back to the kubeconfig (the operator never writes a user's files). With no
kubeconfig at all, the in-cluster service account, whose token file is read again whenever
it changes (kubelet rotates it).

``Credentials`` is one server and one user: ``token()`` and ``client_cert()`` give what is
valid now, ``ssl_context()`` what httpx verifies with, and ``CredentialAuth`` puts it on
each request (and refreshes once on a 401, as client-go does).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_TIMEOUT_S = 120.0


class CredentialError(Exception):
    """Why no usable credentials were found, in one line."""


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _now() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ExecConfig:
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    interactive_mode: str = "IfAvailable"  # Never | IfAvailable | Always
    provide_cluster_info: bool = False
    install_hint: str = ""

    @classmethod
    def from_kubeconfig(cls, raw: Mapping[str, Any], base: Path | None) -> ExecConfig:
        command = str(raw.get("command") or "")
        if not command:
            raise CredentialError("exec plugin: no command in the kubeconfig user's exec section")
        api_version = str(raw.get("apiVersion") or "")
        if api_version not in EXEC_API_VERSIONS:
            raise CredentialError(
                f"exec plugin: apiVersion {api_version!r} is not supported (want one of {', '.join(EXEC_API_VERSIONS)})"
            )
        mode = str(raw.get("interactiveMode") or "IfAvailable")
        if mode not in ("Never", "IfAvailable", "Always"):
            raise CredentialError(f"exec plugin: invalid interactiveMode {mode!r} (Never, IfAvailable or Always)")
        if base is not None and os.sep in command and not os.path.isabs(command):
            command = str(base / command)
        env = tuple((str(e["name"]), str(e.get("value", ""))) for e in raw.get("env") or ())
        return cls(
            command=command,
            args=tuple(str(a) for a in raw.get("args") or ()),
            env=env,
            api_version=api_version,
            interactive_mode=mode,
            provide_cluster_info=bool(raw.get("provideClusterInfo", False)),
            install_hint=str(raw.get("installHint") or ""),
        )


OIDC_EXPIRY_SKEW_S = 10.0  # an id-token this close to its exp counts as expired (client-go's)


@dataclass(frozen=True)
class OidcConfig:
    """A kubeconfig user's ``auth-provider: {name: oidc, config: {...}}``."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    id_token: str | None = None
    refresh_token: str | None = None
    ca_pem: bytes | None = None  # idp-certificate-authority(-data): verifies the identity provider

    @classmethod
    def from_kubeconfig(cls, raw: Mapping[str, Any], base: Path | None) -> OidcConfig:
        config = raw.get("config") or {}
        issuer, client_id = str(config.get("idp-issuer-url") or ""), str(config.get("client-id") or "")
        if not config.get("id-token") and not (issuer and client_id and config.get("refresh-token")):
            raise CredentialError(
                "oidc auth-provider: no id-token, and no idp-issuer-url, client-id and refresh-token to get one"
            )
        ca_pem = (
            _b64(config["idp-certificate-authority-data"]) if config.get("idp-certificate-authority-data") else None
        )
        if ca_pem is None and config.get("idp-certificate-authority"):
            path = Path(os.path.expanduser(str(config["idp-certificate-authority"])))
            ca_pem = Credentials._read(str(path if path.is_absolute() or base is None else base / path))
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=config.get("client-secret") or None,
            id_token=config.get("id-token") or None,
            refresh_token=config.get("refresh-token") or None,
            ca_pem=ca_pem,
        )


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` of a JWT, read without verifying it (the API server verifies); None if absent."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(float(claims["exp"]), UTC) if "exp" in claims else None
    except (IndexError, ValueError, TypeError, KeyError) as err:
        raise CredentialError(f"oidc auth-provider: the id-token is not a JWT ({err})") from err


def refresh_oidc(config: OidcConfig) -> tuple[str, str]:
    """A new (id_token, refresh_token) from the identity provider's token endpoint."""
    if not (config.refresh_token and config.issuer and config.client_id):
        raise CredentialError(
            "oidc auth-provider: the id-token expired and there is no refresh-token, idp-issuer-url and client-id "
            "to refresh it; log in again"
        )
    verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=config.ca_pem.decode()) if config.ca_pem else True
    form = {"grant_type": "refresh_token", "refresh_token": config.refresh_token, "client_id": config.client_id}
    # client_secret_basic (OIDC's default) for a confidential client; a public one names itself in the form.
    auth = httpx.BasicAuth(config.client_id, config.client_secret) if config.client_secret else None
    try:
        with httpx.Client(verify=verify, timeout=30.0) as http:
            discovery = http.get(f"{config.issuer}/.well-known/openid-configuration")
            discovery.raise_for_status()
            endpoint = str(discovery.json()["token_endpoint"])
            answer = http.post(endpoint, data=form, auth=auth) if auth else http.post(endpoint, data=form)
    except (httpx.HTTPError, KeyError, ValueError) as err:
        raise CredentialError(f"oidc auth-provider: cannot reach {config.issuer}: {_one_line(str(err))}") from err
    if answer.status_code != 200:
        raise CredentialError(
            f"oidc auth-provider: {endpoint} refused the refresh ({answer.status_code}: {_one_line(answer.text)}); "
            "log in again"
        )
    tokens = answer.json()
    if not tokens.get("id_token"):
        raise CredentialError(f"oidc auth-provider: {endpoint} answered the refresh without an id_token")
    return str(tokens["id_token"]), str(tokens.get("refresh_token") or config.refresh_token)


@dataclass(frozen=True)
class Issued:
    """What an exec plugin printed: a token or a client certificate, maybe with an expiry."""

    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    expires: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires


def run_exec_plugin(
    config: ExecConfig,
    cluster: Mapping[str, Any] | None = None,
    *,
    stdin_is_tty: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Issued:
    """Run the plugin as client-go does and parse its ExecCredential."""
    tty = sys.stdin is not None and sys.stdin.isatty() if stdin_is_tty is None else stdin_is_tty
    interactive = config.interactive_mode != "Never" and tty
    if config.interactive_mode == "Always" and not tty:
        raise CredentialError(
            f"exec plugin {config.command!r} needs an interactive terminal (interactiveMode Always) "
            "but stdin is not one"
        )
    spec: dict[str, Any] = {"interactive": interactive}
    if config.provide_cluster_info and cluster is not None:
        spec["cluster"] = dict(cluster)
    info = {"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec}
    env = {**(os.environ if environ is None else environ), **dict(config.env)}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        proc = subprocess.run(
            [config.command, *config.args],
            env=env,
            stdin=None if interactive else subprocess.DEVNULL,
            capture_output=True,
            timeout=EXEC_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as err:
        hint = f": {_one_line(config.install_hint)}" if config.install_hint else ""
        raise CredentialError(f"exec plugin: executable {config.command} not found{hint}") from err
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CredentialError(f"exec plugin {config.command}: {_one_line(str(err))}") from err
    stderr = _one_line(proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        detail = f": {stderr}" if stderr else ""
        raise CredentialError(f"exec plugin {config.command} failed with exit code {proc.returncode}{detail}")
    return parse_exec_credential(proc.stdout, config)


def parse_exec_credential(stdout: bytes | str, config: ExecConfig) -> Issued:
    name = config.command
    try:
        doc = json.loads(stdout)
    except ValueError as err:
        raise CredentialError(f"exec plugin {name} printed no ExecCredential JSON: {_one_line(str(err))}") from err
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise CredentialError(f"exec plugin {name} printed something other than an ExecCredential")
    if doc.get("apiVersion") != config.api_version:
        raise CredentialError(
            f"exec plugin {name} printed apiVersion {doc.get('apiVersion')!r}, the kubeconfig asks for {config.api_version}"
        )
    status = doc.get("status") or {}
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if bool(cert) != bool(key):
        raise CredentialError(f"exec plugin {name}: clientCertificateData and clientKeyData must come together")
    if not token and not cert:
        raise CredentialError(f"exec plugin {name}: the ExecCredential has neither a token nor a client certificate")
    expires = None
    if status.get("expirationTimestamp"):
        try:
            expires = parse_rfc3339(str(status["expirationTimestamp"]))
        except ValueError as err:
            raise CredentialError(
                f"exec plugin {name}: bad expirationTimestamp {status['expirationTimestamp']!r}"
            ) from err
    return Issued(
        token=token,
        cert_pem=cert.encode() if cert else None,
        key_pem=key.encode() if key else None,
        expires=expires,
    )


def _b64(data: Any) -> bytes:
    try:
        return base64.b64decode(str(data), validate=False)
    except ValueError as err:
        raise CredentialError(f"kubeconfig: bad base64 data: {_one_line(str(err))}") from err


@dataclass
class Credentials:
    """One API server and one user; ``token()``/``client_cert()`` refresh what can expire."""

    server: str
    namespace: str = "default"
    context: str | None = None
    ca_file: str | None = None
    ca_pem: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    static_token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    exec_config: ExecConfig | None = None
    oidc: OidcConfig | None = None
    clock: Callable[[], datetime] = _now
    run_exec: Callable[..., Issued] = run_exec_plugin
    refresh: Callable[[OidcConfig], tuple[str, str]] = refresh_oidc
    _issued: Issued | None = field(default=None, repr=False)
    _oidc_tokens: tuple[str | None, str | None] | None = field(default=None, repr=False)  # id, refresh
    _file_token: tuple[tuple[int, int, int], str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def refreshable(self) -> bool:
        return self.exec_config is not None or self.token_file is not None or self.oidc is not None

    def exec_cluster_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"server": self.server, "insecure-skip-tls-verify": self.insecure}
        ca = self.ca_pem or (Path(self.ca_file).read_bytes() if self.ca_file else None)
        if ca:
            info["certificate-authority-data"] = base64.b64encode(ca).decode()
        if self.tls_server_name:
            info["tls-server-name"] = self.tls_server_name
        return info

    def issued(self) -> Issued | None:
        """The exec plugin's current credential: run (again) when there is none or it expired."""
        if self.exec_config is None:
            return None
        with self._lock:
            if self._issued is None or self._issued.expired(self.clock()):
                self._issued = self.run_exec(self.exec_config, self.exec_cluster_info())
            return self._issued

    def invalidate(self) -> None:
        """Forget cached credentials (the server said 401): the next use fetches them anew."""
        with self._lock:
            self._issued = None
            self._file_token = None
            if self.oidc is not None:
                refresh = (self._oidc_tokens or (None, self.oidc.refresh_token))[1]
                self._oidc_tokens = (None, refresh)  # the id-token was refused: refresh it

    def oidc_token(self) -> str | None:
        """The oidc auth-provider's id-token, refreshed once it is (about to be) expired."""
        if self.oidc is None:
            return None
        with self._lock:
            id_token, refresh = self._oidc_tokens or (self.oidc.id_token, self.oidc.refresh_token)
            if id_token is not None:
                expires = jwt_expiry(id_token)
                if expires is None or (expires - self.clock()).total_seconds() > OIDC_EXPIRY_SKEW_S:
                    return id_token
            id_token, refresh = self.refresh(replace(self.oidc, refresh_token=refresh))
            self._oidc_tokens = (id_token, refresh)
            return id_token

    def token(self) -> str | None:
        if self.oidc is not None:
            return self.oidc_token()
        issued = self.issued()
        if issued is not None:
            if issued.token:
                return issued.token
            if issued.cert_pem:
                return None
        if self.token_file:
            return self._read_token_file(self.token_file)
        return self.static_token

    def _read_token_file(self, path: str) -> str:
        try:
            st = os.stat(path)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            with self._lock:
                if self._file_token is not None and self._file_token[0] == key:
                    return self._file_token[1]
            token = Path(path).read_text().strip()
        except OSError as err:
            raise CredentialError(f"token file {path}: {err.strerror or err}") from err
        with self._lock:
            self._file_token = (key, token)
        return token

    def client_cert(self) -> tuple[bytes, bytes] | None:
        """The client certificate and key in PEM, if the user has one."""
        issued = self.issued()
        if issued is not None and issued.cert_pem and issued.key_pem:
            return issued.cert_pem, issued.key_pem
        cert = self.cert_pem or (self._read(self.cert_file) if self.cert_file else None)
        key = self.key_pem or (self._read(self.key_file) if self.key_file else None)
        if cert and key:
            return cert, key
        if cert or key:
            raise CredentialError("kubeconfig: a client certificate needs both a certificate and a key")
        return None

    @staticmethod
    def _read(path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as err:
            raise CredentialError(f"cannot read {path}: {err.strerror or err}") from err

    def ssl_context(self) -> ssl.SSLContext:
        """Verification against the CA (or none when insecure), with the client certificate."""
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        elif self.ca_file:
            try:
                ctx = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as err:
                raise CredentialError(f"certificate authority {self.ca_file}: {err}") from err
        else:
            ctx = ssl.create_default_context()
        pair = self.client_cert()
        if pair is not None:
            load_cert_chain(ctx, *pair)
        return ctx

    def headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def expiration(self) -> datetime | None:
        """When the token now given stops being valid (kopf logs in again then)."""
        if self.oidc is not None:
            token = self.oidc_token()
            return jwt_expiry(token) if token else None
        issued = self.issued()
        return issued.expires if issued is not None else None


def load_cert_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl loads certificates only from files: write them to a private temp dir, then remove."""
    with tempfile.TemporaryDirectory(prefix="tritonop-cred-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as err:
            raise CredentialError(f"client certificate: {err}") from err


# ---------------------------------------------------------------- kubeconfig


@dataclass
class KubeConfig:
    """Merged kubeconfig: named clusters, users and contexts, each with the file it came from."""

    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_context: str = ""
    files: list[Path] = field(default_factory=list)

    def merge_file(self, path: Path) -> None:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except OSError as err:
            raise CredentialError(f"kubeconfig {path}: {err.strerror or err}") from err
        except yaml.YAMLError as err:
            raise CredentialError(f"kubeconfig {path}: not YAML: {_one_line(str(err))}") from err
        if not isinstance(doc, dict):
            raise CredentialError(f"kubeconfig {path}: not a kubeconfig (a mapping expected)")
        self.files.append(path)
        base = path.resolve().parent
        for key, into, inner in (("clusters", self.clusters, "cluster"), ("users", self.users, "user")):
            for entry in doc.get(key) or ():
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in into:
                    into[entry["name"]] = (dict(entry.get(inner) or {}), base)
        for entry in doc.get("contexts") or ():
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in self.contexts:
                self.contexts[entry["name"]] = dict(entry.get("context") or {})
        if not self.current_context and doc.get("current-context"):
            self.current_context = str(doc["current-context"])

    def credentials(self, context: str | None = None) -> Credentials:
        name = context or self.current_context
        where = ", ".join(str(p) for p in self.files)
        if not name:
            raise CredentialError(f"no current-context in kubeconfig ({where}); pass --context")
        if name not in self.contexts:
            raise CredentialError(f'context "{name}" not found in kubeconfig ({where})')
        ctx = self.contexts[name]
        cluster_name, user_name = ctx.get("cluster") or "", ctx.get("user") or ""
        if cluster_name not in self.clusters:
            raise CredentialError(f'cluster "{cluster_name}" of context "{name}" not found in kubeconfig ({where})')
        cluster, cbase = self.clusters[cluster_name]
        user, ubase = self.users.get(user_name, ({}, cbase))
        if user_name and user_name not in self.users:
            raise CredentialError(f'user "{user_name}" of context "{name}" not found in kubeconfig ({where})')
        server = str(cluster.get("server") or "")
        if not server:
            raise CredentialError(f'cluster "{cluster_name}" has no server')

        def rel(value: Any, base: Path) -> str | None:
            if not value:
                return None
            text = os.path.expanduser(str(value))
            return text if os.path.isabs(text) else str(base / text)

        exec_raw, provider = user.get("exec"), user.get("auth-provider") or {}
        if provider and provider.get("name") != "oidc":
            raise CredentialError(
                f'user "{user_name}": auth-provider {provider.get("name")!r} is not supported (only oidc; '
                "use an exec plugin, as kubectl does since 1.26)"
            )
        return Credentials(
            server=server.rstrip("/"),
            namespace=str(ctx.get("namespace") or "default"),
            context=name,
            ca_file=rel(cluster.get("certificate-authority"), cbase),
            ca_pem=_b64(cluster["certificate-authority-data"]) if cluster.get("certificate-authority-data") else None,
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
            tls_server_name=cluster.get("tls-server-name") or None,
            static_token=user.get("token") or None,
            token_file=rel(user.get("tokenFile"), ubase),
            cert_file=rel(user.get("client-certificate"), ubase),
            key_file=rel(user.get("client-key"), ubase),
            cert_pem=_b64(user["client-certificate-data"]) if user.get("client-certificate-data") else None,
            key_pem=_b64(user["client-key-data"]) if user.get("client-key-data") else None,
            exec_config=ExecConfig.from_kubeconfig(exec_raw, ubase) if isinstance(exec_raw, dict) else None,
            oidc=OidcConfig.from_kubeconfig(provider, ubase) if provider else None,
        )


def kubeconfig_paths(kubeconfig: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> list[Path]:
    """The files kubectl would read: --kubeconfig, else KUBECONFIG's, else ~/.kube/config."""
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.exists():
            raise CredentialError(f"kubeconfig {path} does not exist")
        return [path]
    if environ.get("KUBECONFIG"):
        listed = [Path(p).expanduser() for p in environ["KUBECONFIG"].split(os.pathsep) if p]
        seen: list[Path] = []
        for p in listed:
            if p.exists() and p not in seen:
                seen.append(p)
        return seen
    home = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
    return [home] if home.exists() else []


def load_kubeconfig(paths: Sequence[Path]) -> KubeConfig:
    config = KubeConfig()
    for path in paths:
        config.merge_file(path)
    return config


def in_cluster(environ: Mapping[str, str] | None = None, directory: Path = SERVICE_ACCOUNT_DIR) -> Credentials | None:
    """The pod's service account, or None outside a cluster."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token = directory / "token"
    if not host or not port or not token.exists():
        return None
    host = f"[{host}]" if ":" in host else host
    ns_file = directory / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
    ca = directory / "ca.crt"
    return Credentials(
        server=f"https://{host}:{port}",
        namespace=namespace or "default",
        ca_file=str(ca) if ca.exists() else None,
        token_file=str(token),
    )


def discover(
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    in_cluster_first: bool = False,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Credentials:
    """kubectl's order (kubeconfig, then the service account); the operator asks for the
    service account first, as kopf does. An explicit --kubeconfig or --context always means
    the kubeconfig."""
    env = os.environ if environ is None else environ
    explicit = bool(kubeconfig or context)
    if in_cluster_first and not explicit:
        found = in_cluster(env, service_account_dir)
        if found is not None:
            return found
    paths = kubeconfig_paths(kubeconfig, env)
    if paths:
        return load_kubeconfig(paths).credentials(context)
    if not explicit:
        found = in_cluster(env, service_account_dir)
        if found is not None:
            return found
    raise CredentialError(
        "no Kubernetes credentials: no kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config) "
        "and no in-cluster service account"
    )


class CredentialAuth(httpx.Auth):
    """Bearer token from ``Credentials`` on every request; on a 401 with refreshable
    credentials, fetch them anew and send the request once more."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def _set(self, request: httpx.Request, token: str | None) -> None:
        if token:
            request.headers["Authorization"] = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._set(request, self.credentials.token())
        response = yield request
        if response.status_code == 401 and self.credentials.refreshable:
            self.credentials.invalidate()
            self._set(request, self.credentials.token())
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # An exec plugin may take a while: keep the event loop free.
        self._set(request, await asyncio.to_thread(self.credentials.token))
        response = yield request
        if response.status_code == 401 and self.credentials.refreshable:
            self.credentials.invalidate()
            self._set(request, await asyncio.to_thread(self.credentials.token))
            yield request
