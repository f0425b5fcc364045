"""`tritonop run`'s Prometheus access flags and TRITONOP_PROMETHEUS_* variables: parsed into
the config, contradictions and unreadable files refused at start in one line, never a secret
echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tritonop.analysis.prometheus import PrometheusAccess
from tritonop.cli import _parser, _run_config
from tritonop.config import OperatorConfig

TIMEOUT_S = 30


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`tritonop run` without any Kubernetes credentials: it stops at the pre-flight at the latest."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "TRITONOP_"))}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "tritonop", "run", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def test_every_flag_reaches_the_config_and_the_access_settings() -> None:
    args = _parser().parse_args(
        [
            "run",
            "--prometheus-url", "https://thanos-querier.openshift-monitoring.svc:9091",
            "--prometheus-basic-auth-username", "tenant-a",
            "--prometheus-basic-auth-password-file", "/etc/p/password",
            "--prometheus-ca-file", "/etc/ca/ca.crt",
            "--prometheus-cert-file", "/etc/c/tls.crt",
            "--prometheus-key-file", "/etc/c/tls.key",
            "--prometheus-tls-server-name", "prometheus.example",
            "--prometheus-header", "X-Scope-OrgID: team-a",
            "--prometheus-header", "X-Extra:  a, b ",
        ]
    )  # fmt: skip
    config = _run_config(args)
    assert config.prometheus_headers == ("X-Scope-OrgID: team-a", "X-Extra:  a, b ")
    assert PrometheusAccess.from_config(config) == PrometheusAccess(
        basic_auth_username="tenant-a",
        basic_auth_password_file="/etc/p/password",
        ca_file="/etc/ca/ca.crt",
        cert_file="/etc/c/tls.crt",
        key_file="/etc/c/tls.key",
        tls_server_name="prometheus.example",
        headers=(("X-Scope-OrgID", "team-a"), ("X-Extra", "a, b")),
    )
    bearer = _run_config(
        _parser().parse_args(["run", "--prometheus-bearer-token-file", "/t", "--prometheus-insecure-skip-verify"])
    )
    assert bearer.prometheus_bearer_token_file == "/t" and bearer.prometheus_insecure_skip_verify is True
    assert _run_config(_parser().parse_args(["run"])).prometheus_insecure_skip_verify is False


def test_environment_variables_set_the_same_settings() -> None:
    config = OperatorConfig.from_env(
        {
            "TRITONOP_PROMETHEUS_BEARER_TOKEN_FILE": "/var/run/secrets/tokens/prometheus",
            "TRITONOP_PROMETHEUS_INSECURE_SKIP_VERIFY": "true",
            "TRITONOP_PROMETHEUS_HEADERS": "X-Scope-OrgID: team-a\n\nX-Extra: a, b\n",  # one per line
        }
    )
    assert PrometheusAccess.from_config(config) == PrometheusAccess(
        bearer_token_file="/var/run/secrets/tokens/prometheus",
        insecure_skip_verify=True,
        headers=(("X-Scope-OrgID", "team-a"), ("X-Extra", "a, b")),
    )


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("X-Scope-OrgID team-a", "a Prometheus header is 'Name: value'"),
        ("Bad Name: x", "a Prometheus header is 'Name: value'"),
        ("X-Scope-OrgID:", "the Prometheus header X-Scope-OrgID needs a value"),
        ("X-Tenant: caf\u00e9", "the Prometheus header X-Tenant needs a value of printable ASCII"),
        ("Host: elsewhere", "the Prometheus header Host is set by the operator itself"),
        ("authorization: Bearer hunter2-secret", "the Prometheus Authorization header comes from --prometheus-bearer"),
        ("Authorization Bearer hunter2-secret", "a Prometheus header is 'Name: value'"),
    ],
)
def test_bad_headers_are_refused_by_the_parser_without_echoing_the_value(
    header: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["run", "--prometheus-header", header])
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    assert f"argument --prometheus-header: {said}" in stderr
    assert "hunter2" not in stderr


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"bearer_token_file": "/t", "basic_auth_password_file": "/p", "basic_auth_username": "u"}, "not both"),
        ({"basic_auth_username": "u", "basic_auth_username_file": "/u", "basic_auth_password_file": "/p"}, "not both"),
        ({"basic_auth_username": "u"}, "needs --prometheus-basic-auth-password-file"),
        ({"basic_auth_password_file": "/p"}, "needs --prometheus-basic-auth-username or"),
        ({"cert_file": "/c"}, "needs both --prometheus-cert-file and --prometheus-key-file"),
        ({"key_file": "/k"}, "needs both --prometheus-cert-file and --prometheus-key-file"),
        ({"insecure_skip_verify": True, "ca_file": "/ca"}, "ignores --prometheus-ca-file"),
        ({"headers": (("X-A", "1"), ("x-a", "2"))}, "given twice"),
    ],
)
def test_contradicting_settings_are_refused(settings: dict[str, object], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        PrometheusAccess(**settings)  # type: ignore[arg-type]


def test_contradicting_flags_stop_the_operator_in_one_line(tmp_path: Path) -> None:
    result = run(
        "--prometheus-bearer-token-file", "/t", "--prometheus-basic-auth-password-file", "/p", home=tmp_path
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "tritonop run: Prometheus gets a bearer token or basic auth, not both\n"


def test_an_unreadable_credential_file_stops_the_operator_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing-token"
    result = run("--prometheus-bearer-token-file", str(missing), home=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"tritonop run: cannot read the Prometheus bearer token file {missing}: No such file or directory\n"
    )
    bad_ca = tmp_path / "ca.crt"
    bad_ca.write_text("not a certificate\n")
    result = run("--prometheus-ca-file", str(bad_ca), home=tmp_path)
    assert result.returncode == 2 and f"tritonop run: the Prometheus CA file {bad_ca}: " in result.stderr


def test_insecure_skip_verify_and_plain_http_credentials_are_warned_at_start(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-value\n")
    result = run(
        "--prometheus-url", "http://prometheus.monitoring.svc:9090",
        "--prometheus-bearer-token-file", str(token),
        "--prometheus-insecure-skip-verify",
        home=tmp_path,
    )  # fmt: skip
    # Past the access checks, the pre-flight finds no Kubernetes credentials here.
    assert result.returncode == 1 and "no Kubernetes credentials" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 2
    assert "--prometheus-insecure-skip-verify: Prometheus' TLS certificate is not verified" in warnings[0]
    assert "credentials are sent over plain HTTP to http://prometheus.monitoring.svc:9090" in warnings[1]
    assert "a-token-value" not in result.stderr
