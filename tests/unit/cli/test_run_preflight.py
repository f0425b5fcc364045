"""`tritonop run` on a first try: bad flags and unusable credentials are one line and an exit,
never a traceback or kopf retrying forever (a real subprocess, bounded by a timeout)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

# Every run either exits at once (flags) or within the pre-flight's few seconds.
TIMEOUT_S = 30


def run(*args: str, home: Path, kubeconfig: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "TRITONOP_"))}
    env["HOME"] = str(home)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "tritonop", "run", "--metrics-port", "18089", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def kubeconfig(path: Path, server: str, token: str = "t0ken") -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: {token}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
    )
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when this returns: nothing listens there


class _Answers(BaseHTTPRequestHandler):
    """A stand-in API server: 401 to everything, or 403 / 404 on the InferenceService list."""

    list_status = 401

    def do_GET(self) -> None:  # http.server's name
        status = 200 if self.path.startswith("/version") and self.list_status != 401 else self.list_status
        body = b'{"kind":"Status","message":"nope"}' if status >= 400 else b'{"major":"1","minor":"31"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Answers,), {"list_status": request.param})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_kubeconfig_at_all(tmp_path: Path) -> None:
    result = run(home=tmp_path, kubeconfig=None)
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("tritonop: no Kubernetes credentials"), line
    assert "KUBECONFIG" in line


def test_kubeconfig_that_does_not_parse(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    result = run(home=tmp_path, kubeconfig=broken)
    assert result.returncode == 1
    assert "Kubernetes credentials" in one_line(result)


def test_api_server_refusing_connections(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    result = run(home=tmp_path, kubeconfig=kubeconfig(tmp_path / "kc", server))
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"tritonop: cannot reach the Kubernetes API at {server}: connection refused"), line


def test_api_server_host_that_does_not_resolve(tmp_path: Path) -> None:
    result = run(home=tmp_path, kubeconfig=kubeconfig(tmp_path / "kc", "https://no-such-host.invalid:6443"))
    assert result.returncode == 1
    assert "cannot reach the Kubernetes API at https://no-such-host.invalid:6443" in one_line(result)


@pytest.mark.parametrize("api_server", [401], indirect=True)
def test_rejected_token(tmp_path: Path, api_server: str) -> None:
    result = run(home=tmp_path, kubeconfig=kubeconfig(tmp_path / "kc", api_server, token="bogus"))
    assert result.returncode == 1
    line = one_line(result)
    assert "rejected the credentials (401 Unauthorized: nope)" in line and api_server in line, line


@pytest.mark.parametrize("api_server", [403], indirect=True)
def test_forbidden_to_list_inferenceservices(tmp_path: Path, api_server: str) -> None:
    result = run("-n", "ml", home=tmp_path, kubeconfig=kubeconfig(tmp_path / "kc", api_server))
    assert result.returncode == 1
    line = one_line(result)
    assert "refused to list inferenceservices.serving.tritonop.dev in namespace ml (403 Forbidden" in line, line


@pytest.mark.parametrize("api_server", [404], indirect=True)
def test_crd_not_installed(tmp_path: Path, api_server: str) -> None:
    result = run(home=tmp_path, kubeconfig=kubeconfig(tmp_path / "kc", api_server))
    assert result.returncode == 1
    assert "is the CRD installed?" in one_line(result)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--tick-seconds", "-1"], "argument --tick-seconds: must be a number of seconds > 0, got -1"),
        (["--tick-seconds", "0"], "argument --tick-seconds: must be a number of seconds > 0, got 0"),
        (["--tick-seconds", "nan"], "argument --tick-seconds: must be a number of seconds > 0"),
        (["--metrics-port", "0"], "argument --metrics-port: a port is 1..65535, got 0"),
        (["--metrics-port", "70000"], "argument --metrics-port: a port is 1..65535, got 70000"),
        (["--metrics-port", "http"], "argument --metrics-port: not a port number"),
        (["--prometheus-url", "prometheus:9090"], "argument --prometheus-url: not an http(s) URL with a host"),
        (["--prometheus-url", "http://p:99999"], "argument --prometheus-url: not a URL"),
        (["--allow-prometheus-url", "ftp://x"], "argument --allow-prometheus-url: not an http(s) URL"),
        (["--triton-url-template", "{name}.svc:8000"], "argument --triton-url-template: not an http(s) URL"),
        (["--triton-pod-url-template", "http://"], "argument --triton-pod-url-template: not an http(s) URL"),
        (["--allow-file-path", "models"], "argument --allow-file-path: not an absolute path"),
        (["--metrics-namespace-selector", "a b"], "argument --metrics-namespace-selector: label selector"),
        (["--metrics-pod-selector", "=x"], "argument --metrics-pod-selector: label selector"),
        (["--priority", "high"], "argument --priority: a number or 'auto'"),
        (["--peering", ""], "argument --peering: must not be empty"),
        (["-n", ""], "argument -n/--namespace: must not be empty"),
        (["--triton-image", " "], "argument --triton-image: must not be empty"),
    ],
)
def test_bad_flag_values_are_refused_by_the_parser(tmp_path: Path, args: list[str], said: str) -> None:
    result = run(*args, home=tmp_path, kubeconfig=None)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"tritonop run: error: {said}" in result.stderr, result.stderr


def test_good_flag_values_parse() -> None:
    from tritonop.cli import _parser

    args = _parser().parse_args(
        [
            "run",
            "--tick-seconds", "0.5",
            "--metrics-port", "65535",
            "--prometheus-url", "http://127.0.0.1:9",
            "--triton-url-template", "http://{name}-{revision}.{namespace}.svc:8000",
            "--triton-pod-url-template", "http://{pod_ip}:8000",
            "--allow-file-path", "/models",
            "--metrics-namespace-selector", "",
            "--priority", "auto",
        ]
    )  # fmt: skip
    assert args.tick_seconds == 0.5 and args.metrics_port == 65535 and args.priority == "auto"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("TRITONOP_TICK_SECONDS", "-1", "tick_seconds must be a positive number of seconds, not -1.0"),
        ("TRITONOP_TICK_SECONDS", "soon", "TRITONOP_TICK_SECONDS='soon' is not a number"),
        ("TRITONOP_METRICS_PORT", "0", "metrics_port must be in 1..65535, not 0"),
        ("TRITONOP_PROMETHEUS_TIMEOUT_SECONDS", "0", "prometheus_timeout_seconds must be positive, not 0.0"),
    ],
)
def test_bad_environment_values_are_refused_in_one_line(tmp_path: Path, variable: str, value: str, said: str) -> None:
    # The parser checks flags; TRITONOP_* variables are checked when the config is built.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "TRITONOP_"))}
    env.update(HOME=str(tmp_path), **{variable: value})
    result = subprocess.run(
        [sys.executable, "-m", "tritonop", "run"], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 2
    assert one_line(result) == f"tritonop run: {said}"
