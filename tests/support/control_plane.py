"""A real Kubernetes control plane for tests: etcd, kube-apiserver, and optionally
kube-controller-manager and kube-scheduler, built from Go modules by
``scripts/build-control-plane`` into a cache outside the repository.

Everything listens on 127.0.0.1 on free ports, under a temporary folder that holds the
etcd data, a generated CA, the API server's serving certificate, a service-account key
pair and an admin client certificate (group ``system:masters``), and a kubeconfig for
tests. Each process is stopped through its own handle. Certificates and keys come from
the ``openssl`` command line tool.

Typical use::

    with ControlPlane(controllers=True, scheduler=True) as cp:
        cp.kubectl("apply", "--server-side", "-f", "crds/")
        ... KUBECONFIG=cp.kubeconfig ...

Missing binaries skip the calling test, unless ``TRITONOP_REQUIRE_TOOLS=1`` (CI), where it
fails with the command that builds them.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest

from tests.support.triton import free_ports

__all__ = [
    "BUILD_COMMAND",
    "DEFAULT_CONTROLLERS",
    "APIError",
    "ControlPlane",
    "control_plane_bin_dir",
    "control_plane_binaries",
    "kubectl_binary",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane"
BUILD_COMMAND = "scripts/build-control-plane"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

# Enough for Deployments, ReplicaSets, Pods, Services, HPAs, namespaces and owner GC.
DEFAULT_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "endpointslice-controller",
    "serviceaccount-controller",
    "namespace-controller",
    "horizontal-pod-autoscaler-controller",
    "root-ca-certificate-publisher-controller",
)
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service's ClusterIP in SERVICE_CIDR


class APIError(Exception):
    """An API request the server refused: its HTTP status and the Status message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _require(message: str) -> None:
    if os.environ.get("TRITONOP_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def control_plane_bin_dir() -> Path:
    """Where scripts/build-control-plane puts the binaries ($TRITONOP_KUBE_BIN_DIR overrides)."""
    override = os.environ.get("TRITONOP_KUBE_BIN_DIR")
    if override:
        return Path(override)
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin-dir"], capture_output=True, text=True, check=True, timeout=30
    )
    return Path(out.stdout.strip())


def control_plane_binaries(*, controllers: bool = True, scheduler: bool = True) -> dict[str, Path]:
    """The control plane's executables; skips (or fails, with TRITONOP_REQUIRE_TOOLS=1) when any is missing."""
    bin_dir = control_plane_bin_dir()
    wanted = ["etcd", "kube-apiserver"]
    if controllers:
        wanted.append("kube-controller-manager")
    if scheduler:
        wanted.append("kube-scheduler")
    found = {name: bin_dir / name for name in wanted}
    missing = [name for name, path in found.items() if not os.access(path, os.X_OK)]
    if missing:
        _require(
            f"control plane binaries not built ({', '.join(missing)} missing in {bin_dir}): "
            f"run `{BUILD_COMMAND}` (needs Go; the first build takes several minutes per binary)"
        )
    return found


def kubectl_binary() -> str:
    """kubectl on PATH ($KUBECTL overrides); skips or fails like the control plane binaries."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        _require("kubectl not found on PATH")
    assert found is not None
    return found


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _write_pki(pki: Path) -> None:
    """CA, apiserver serving cert, admin client cert (system:masters), service-account key pair."""
    if shutil.which("openssl") is None:
        _require("openssl not found on PATH (it generates the test control plane's certificates)")
    pki.mkdir(parents=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3",
             "-subj", "/CN=tritonop-test-ca", cwd=pki)  # fmt: skip
    sans = ",".join(
        [
            "IP:127.0.0.1",
            f"IP:{SERVICE_IP}",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    (pki / "serving.ext").write_text(
        f"subjectAltName={sans}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    (pki / "client.ext").write_text("keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    for name, subject, ext in (
        ("apiserver", "/CN=kube-apiserver", "serving.ext"),
        ("admin", "/O=system:masters/CN=tritonop-test-admin", "client.ext"),
    ):
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "3", "-extfile", ext, "-out", f"{name}.crt", cwd=pki)  # fmt: skip
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager, kube-scheduler) on 127.0.0.1.

    Attributes once started: ``url`` (https://127.0.0.1:PORT), ``kubeconfig`` (a file with
    the admin user, group system:masters), ``workdir`` (logs in ``<component>.log``).
    ``stop`` ends the processes in reverse order and deletes the folder unless
    ``TRITONOP_KEEP_CONTROL_PLANE=1``.
    """

    def __init__(
        self,
        *,
        controllers: bool = False,
        scheduler: bool = False,
        controller_names: Sequence[str] = DEFAULT_CONTROLLERS,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self.with_controllers = controllers
        self.with_scheduler = scheduler
        self.controller_names = tuple(controller_names)
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.workdir: Path | None = None
        self.url = ""
        self.kubeconfig = Path()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._ports: dict[str, int] = {}

    # -- lifecycle

    def start(self, ready_timeout: float = 120.0) -> Self:
        """Start every component, each waited for with a bounded timeout; returns self."""
        if self._processes:
            raise RuntimeError("this ControlPlane was already started")
        binaries = control_plane_binaries(controllers=self.with_controllers, scheduler=self.with_scheduler)
        self.workdir = Path(tempfile.mkdtemp(prefix="tritonop-control-plane-"))
        try:
            self._start_all(binaries, ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self, binaries: Mapping[str, Path], ready_timeout: float) -> None:
        assert self.workdir is not None
        work = self.workdir
        pki = work / "pki"
        _write_pki(pki)
        etcd_client, etcd_peer, apiserver, kcm, scheduler = free_ports(5)
        self._ports = {"etcd": etcd_client, "kube-apiserver": apiserver,
                       "kube-controller-manager": kcm, "kube-scheduler": scheduler}  # fmt: skip
        self.url = f"https://127.0.0.1:{apiserver}"
        self.kubeconfig = work / "kubeconfig"
        self._write_kubeconfig(pki)

        etcd_url = f"http://127.0.0.1:{etcd_client}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        self._spawn("etcd", [
            str(binaries["etcd"]),
            "--name=tritonop-test",
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=tritonop-test={peer_url}",
            "--unsafe-no-fsync",  # a throwaway test store: speed over durability
            "--log-level=warn",
        ])  # fmt: skip
        self._wait("etcd", lambda: _http_json(etcd_url + "/health").get("health") == "true", ready_timeout)

        self._spawn("kube-apiserver", [
            str(binaries["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # The `kubernetes` Service's Endpoints may not hold a loopback address; nothing
            # here reaches the API server through that Service, so skip reconciling it.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={work / 'apiserver-certs'}",
            *self.extra_apiserver_args,
        ])  # fmt: skip
        self._wait("kube-apiserver", self._apiserver_ready, ready_timeout)

        kubeconfig = str(self.kubeconfig)
        # No --authentication/--authorization-kubeconfig: their serving endpoints then only
        # answer the always-allowed /healthz, /readyz and /livez, which is all tests need,
        # and the logs stay free of front-proxy CA errors this plane has no use for.
        common = [f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1",
                  "--profiling=false"]  # fmt: skip
        if self.with_controllers:
            self._spawn("kube-controller-manager", [
                str(binaries["kube-controller-manager"]),
                *common,
                f"--secure-port={kcm}",
                f"--cert-dir={work / 'kcm-certs'}",
                f"--controllers={','.join(self.controller_names)}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
                "--concurrent-deployment-syncs=2",
                "--concurrent-replicaset-syncs=2",
            ])  # fmt: skip
        if self.with_scheduler:
            self._spawn("kube-scheduler", [
                str(binaries["kube-scheduler"]),
                *common,
                f"--secure-port={scheduler}",
                f"--cert-dir={work / 'scheduler-certs'}",
            ])  # fmt: skip
        for name in ("kube-controller-manager", "kube-scheduler"):
            if name in self._processes:
                port = self._ports[name]
                self._wait(name, lambda port=port: _healthz_ok(f"https://127.0.0.1:{port}/healthz"), ready_timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM each process (SIGKILL after ``timeout``), newest first; removes the folder."""
        for _name, process in reversed(list(self._processes.items())):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
        self._processes.clear()
        if self.workdir is not None and os.environ.get("TRITONOP_KEEP_CONTROL_PLANE") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- use

    @property
    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane; with ``check`` a non-zero exit raises with stderr."""
        result = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self._kubectl_cache}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    @property
    def _kubectl_cache(self) -> Path:
        # Per control plane: a reused port must never meet another server's discovery cache.
        assert self.workdir is not None, "start the ControlPlane first"
        return self.workdir / "kubectl-cache"

    def get_json(self, path: str) -> Any:
        """GET an API path (e.g. /apis/apps/v1/namespaces/ns/replicasets) as the admin user."""
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, context=self._admin_tls(), timeout=10.0) as response:
            return json.load(response)

    def crd_established(self, name: str) -> bool:
        """Whether CRD ``name`` is Established (polled: `kubectl wait` fails on a CRD that has
        no status yet)."""
        crd = self.find(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def find(self, path: str) -> dict[str, Any] | None:
        """GET an object as the admin user; None when the server answers 404."""
        try:
            found: dict[str, Any] = self.request_json("GET", path)
        except APIError as err:
            if err.status == 404:
                return None
            raise
        return found

    def request_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Any API request as the admin user (a JSON body, sent with ``content_type``); the
        decoded answer, or APIError with the server's status and message."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"} | ({"Content-Type": content_type} if data is not None else {})
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._admin_tls(), timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise APIError(err.code, f"{method} {path}: {message}") from None
        return json.loads(raw) if raw else {}

    def token_kubeconfig(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this API server that authenticates with a bearer token
        (e.g. a ServiceAccount's, from the TokenRequest API) to ``path``; returns ``path``."""
        assert self.workdir is not None, "start the ControlPlane first"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tritonop-test", "cluster": {
                "server": self.url, "certificate-authority": str(self.workdir / "pki" / "ca.crt")}}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "tritonop-test", "context": {"cluster": "tritonop-test", "user": "token"}}],
            "current-context": "tritonop-test",
        }  # fmt: skip
        path.write_text(json.dumps(config, indent=2))
        return path

    def running(self, name: str) -> bool:
        process = self._processes.get(name)
        return process is not None and process.poll() is None

    def recent_output(self, name: str, limit: int = 6000) -> str:
        """The tail of one component's log."""
        if self.workdir is None:
            return ""
        log = self.workdir / f"{name}.log"
        return log.read_text(errors="replace")[-limit:] if log.exists() else ""

    # -- internals

    def _spawn(self, name: str, argv: list[str]) -> None:
        assert self.workdir is not None
        with open(self.workdir / f"{name}.log", "wb") as log:
            self._processes[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )

    def _wait(self, name: str, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running(name):
                raise RuntimeError(
                    f"{name} exited with {self._processes[name].returncode}:\n{self.recent_output(name)}"
                )
            try:
                if ready():
                    return
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{name} was not ready within {timeout}s:\n{self.recent_output(name)}")

    def _admin_tls(self) -> ssl.SSLContext:
        assert self.workdir is not None
        pki = self.workdir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _apiserver_ready(self) -> bool:
        request = urllib.request.Request(self.url + "/readyz")
        try:
            with urllib.request.urlopen(request, context=self._admin_tls(), timeout=5.0) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return False  # 500 while post-start hooks finish

    def _write_kubeconfig(self, pki: Path) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tritonop-test", "cluster": {"server": self.url,
                                                                "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                                 "client-key": str(pki / "admin.key")}}],
            "contexts": [{"name": "tritonop-test", "context": {"cluster": "tritonop-test", "user": "admin",
                                                               "namespace": "default"}}],
            "current-context": "tritonop-test",
        }  # fmt: skip
        self.kubeconfig.write_text(json.dumps(config, indent=2))  # JSON is YAML


def _http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5.0) as response:
        return json.load(response)


def _healthz_ok(url: str) -> bool:
    # The controller-manager and scheduler serve with a self-signed loopback certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=context, timeout=5.0) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
