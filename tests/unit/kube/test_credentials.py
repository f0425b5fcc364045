"""Credentials as kubectl finds them (tritonop/kube/credentials.py): merged kubeconfigs,
contexts, token files that rotate, exec plugins (a real shell script here) run again once
their credential expires, and one-line errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tritonop.kube.client import KubeClient, connection_from_credentials
from tritonop.kube.credentials import (
    CredentialAuth,
    CredentialError,
    Credentials,
    ExecConfig,
    discover,
    in_cluster,
    kubeconfig_paths,
    load_kubeconfig,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# Prints an ExecCredential whose token counts its runs; records its args, env and exec info.
PLUGIN = """#!/bin/sh
dir=$(dirname "$0")
n=$(( $(cat "$dir/runs" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/runs"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/exec-info"
printf '%s|%s' "$*" "$PLUGIN_GREETING" > "$dir/args"
if [ -t 0 ]; then echo tty > "$dir/stdin"; else echo notty > "$dir/stdin"; fi
cat <<EOF
{"apiVersion": "${API_VERSION:-client.authentication.k8s.io/v1}", "kind": "ExecCredential",
 "status": {"token": "token-$n", "expirationTimestamp": "2026-01-01T12:10:00Z"}}
EOF
"""


def write_plugin(directory: Path, body: str = PLUGIN, name: str = "plugin.sh") -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def kubeconfig(
    path: Path,
    *,
    clusters: dict[str, dict[str, Any]],
    users: dict[str, dict[str, Any]],
    contexts: dict[str, dict[str, Any]],
    current: str | None = None,
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
    }
    if current:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def exec_user(command: str, api_version: str = "client.authentication.k8s.io/v1", **extra: Any) -> dict[str, Any]:
    return {"exec": {"apiVersion": api_version, "command": command, "interactiveMode": "Never", **extra}}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


# ---------------------------------------------------------------- kubeconfig files


def test_kubeconfig_files_merge_first_wins(tmp_path: Path) -> None:
    a = kubeconfig(
        tmp_path / "a" / "config",
        clusters={"prod": {"server": "https://a.example:6443/", "certificate-authority": "ca.crt"}},
        users={"alice": {"token": "from-a"}},
        contexts={"prod": {"cluster": "prod", "user": "alice", "namespace": "ml"}},
    )
    b = kubeconfig(
        tmp_path / "b" / "config",
        clusters={"prod": {"server": "https://b.example"}, "dev": {"server": "https://dev.example"}},
        users={"alice": {"token": "from-b"}, "bob": {"tokenFile": "bob.token"}},
        contexts={"dev": {"cluster": "dev", "user": "bob"}, "prod": {"cluster": "dev", "user": "bob"}},
        current="prod",
    )
    env = {"KUBECONFIG": os.pathsep.join([str(a), str(tmp_path / "missing"), "", str(b)])}
    paths = kubeconfig_paths(None, env)
    assert paths == [a, b]  # missing and empty entries skipped, as kubectl does
    config = load_kubeconfig(paths)

    prod = config.credentials()  # current-context from b, names resolved first-file-wins
    assert prod.server == "https://a.example:6443"
    assert prod.token() == "from-a"
    assert prod.namespace == "ml"
    assert prod.ca_file == str((tmp_path / "a" / "ca.crt").resolve())  # relative to its own file

    (tmp_path / "b" / "bob.token").write_text("bob-token\n")
    dev = config.credentials("dev")  # --context
    assert dev.server == "https://dev.example" and dev.namespace == "default"
    assert dev.token() == "bob-token"


def test_explicit_kubeconfig_and_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    default = kubeconfig(
        home / ".kube" / "config",
        clusters={"c": {"server": "https://home"}},
        users={"u": {}},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    other = kubeconfig(
        tmp_path / "other",
        clusters={"c": {"server": "https://other"}},
        users={"u": {}},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    env = {"HOME": str(home), "KUBECONFIG": str(other)}
    assert kubeconfig_paths(None, {"HOME": str(home)}) == [default]
    assert discover(environ=env).server == "https://other"  # KUBECONFIG over ~/.kube/config
    assert discover(kubeconfig=default, environ=env).server == "https://home"  # --kubeconfig over both
    with pytest.raises(CredentialError, match="does not exist"):
        discover(kubeconfig=tmp_path / "nope", environ=env)


def test_missing_context_cluster_user_and_nothing_at_all(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://x"}},
        users={},
        contexts={"c": {"cluster": "c", "user": "ghost"}, "d": {"cluster": "gone", "user": ""}},
    )
    config = load_kubeconfig([path])
    with pytest.raises(CredentialError, match="no current-context"):
        config.credentials()
    with pytest.raises(CredentialError, match='context "nope" not found'):
        config.credentials("nope")
    with pytest.raises(CredentialError, match='user "ghost" of context "c" not found'):
        config.credentials("c")
    with pytest.raises(CredentialError, match='cluster "gone" of context "d" not found'):
        config.credentials("d")
    with pytest.raises(CredentialError, match="no Kubernetes credentials") as err:
        discover(environ={"HOME": str(tmp_path / "empty")}, service_account_dir=tmp_path / "nosa")
    assert "\n" not in str(err.value)
    (tmp_path / "bad").write_text("- just\n- a list\n")
    with pytest.raises(CredentialError, match="not a kubeconfig"):
        load_kubeconfig([tmp_path / "bad"])


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not on PATH")
    out = tmp_path / "pki"
    out.mkdir()
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test"),
            *("-keyout", str(out / "tls.key"), "-out", str(out / "tls.crt")),
        ],
        check=True,
        capture_output=True,
    )
    return out


def test_certificates_from_files_and_data(tmp_path: Path, pki: Path) -> None:
    import base64

    crt, key = (pki / "tls.crt").read_bytes(), (pki / "tls.key").read_bytes()
    path = kubeconfig(
        tmp_path / "config",
        clusters={
            "files": {"server": "https://f", "certificate-authority": str(pki / "tls.crt")},
            "data": {"server": "https://d", "certificate-authority-data": base64.b64encode(crt).decode()},
            "insecure": {"server": "https://i", "insecure-skip-tls-verify": True},
        },
        users={
            "files": {"client-certificate": str(pki / "tls.crt"), "client-key": str(pki / "tls.key")},
            "data": {
                "client-certificate-data": base64.b64encode(crt).decode(),
                "client-key-data": base64.b64encode(key).decode(),
            },
            "half": {"client-certificate": str(pki / "tls.crt")},
        },
        contexts={
            "files": {"cluster": "files", "user": "files"},
            "data": {"cluster": "data", "user": "data"},
            "insecure": {"cluster": "insecure", "user": "data"},
            "half": {"cluster": "files", "user": "half"},
        },
    )
    config = load_kubeconfig([path])
    for name in ("files", "data"):
        creds = config.credentials(name)
        assert creds.client_cert() == (crt, key)
        ctx = creds.ssl_context()
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.get_ca_certs(), name
    insecure = config.credentials("insecure").ssl_context()
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    with pytest.raises(CredentialError, match="both a certificate and a key"):
        config.credentials("half").ssl_context()


# ---------------------------------------------------------------- tokens that change


def test_in_cluster_token_is_read_again_when_rotated(tmp_path: Path) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("first\n")
    (sa / "namespace").write_text("tritonop-system")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    creds = in_cluster(env, sa)
    assert creds is not None
    assert creds.server == "https://10.0.0.1:443" and creds.namespace == "tritonop-system"
    assert creds.token() == "first"
    (sa / "token").write_text("second-token\n")  # kubelet writes the rotated token
    assert creds.token() == "second-token"
    assert in_cluster({}, sa) is None  # not in a pod
    # The operator asks for the service account first; kubectl for the kubeconfig first.
    other = kubeconfig(
        tmp_path / "kc",
        clusters={"c": {"server": "https://kc"}},
        users={"u": {"token": "t"}},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    env_kc = {**env, "KUBECONFIG": str(other)}
    assert discover(environ=env_kc, service_account_dir=sa).server == "https://kc"
    assert discover(environ=env_kc, service_account_dir=sa, in_cluster_first=True).server == "https://10.0.0.1:443"
    assert discover(environ=env, service_account_dir=sa).server == "https://10.0.0.1:443"  # no kubeconfig


# ---------------------------------------------------------------- exec plugins


def exec_credentials(tmp_path: Path, **user: Any) -> Credentials:
    plugin = write_plugin(tmp_path)
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://kube.test"}},
        users={"u": exec_user(f"./{plugin.name}", **user)},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    return load_kubeconfig([path]).credentials()


def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path) -> None:
    creds = exec_credentials(
        tmp_path, args=["get-token", "--cluster", "c"], env=[{"name": "PLUGIN_GREETING", "value": "hi"}]
    )
    clock = Clock()
    creds.clock = clock
    assert creds.token() == "token-1"  # ./plugin.sh resolved next to the kubeconfig
    assert creds.token() == "token-1"  # cached: not expired
    assert creds.expiration() == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    assert (tmp_path / "runs").read_text().strip() == "1"
    assert (tmp_path / "args").read_text() == "get-token --cluster c|hi"
    info = json.loads((tmp_path / "exec-info").read_text())
    assert info == {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    assert (tmp_path / "stdin").read_text().strip() == "notty"  # interactiveMode Never: no stdin

    clock.now = T0 + timedelta(minutes=10)  # at expirationTimestamp: run again
    assert creds.token() == "token-2"
    assert (tmp_path / "runs").read_text().strip() == "2"


def test_exec_plugin_v1beta1_and_cluster_info(tmp_path: Path) -> None:
    beta = "client.authentication.k8s.io/v1beta1"
    creds = exec_credentials(
        tmp_path, api_version=beta, env=[{"name": "API_VERSION", "value": beta}], provideClusterInfo=True
    )
    assert creds.token() == "token-1"
    info = json.loads((tmp_path / "exec-info").read_text())
    assert info["apiVersion"] == beta
    assert info["spec"]["cluster"]["server"] == "https://kube.test"


def test_exec_plugin_interactive_modes(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    from tritonop.kube.credentials import run_exec_plugin

    if_available = ExecConfig(command=str(plugin), interactive_mode="IfAvailable")
    issued = run_exec_plugin(if_available, stdin_is_tty=False)
    assert issued.token == "token-1"
    assert json.loads((tmp_path / "exec-info").read_text())["spec"]["interactive"] is False
    always = ExecConfig(command=str(plugin), interactive_mode="Always")
    with pytest.raises(CredentialError, match="needs an interactive terminal"):
        run_exec_plugin(always, stdin_is_tty=False)
    assert (tmp_path / "runs").read_text().strip() == "1"  # not run


def test_exec_plugin_client_certificate(tmp_path: Path, pki: Path) -> None:
    crt, key = (pki / "tls.crt").read_text(), (pki / "tls.key").read_text()
    status = {"clientCertificateData": crt, "clientKeyData": key}
    body = "#!/bin/sh\ncat <<'EOF'\n" + json.dumps(
        {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}
    )
    write_plugin(tmp_path, body + "\nEOF\n", name="certs.sh")
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://kube.test", "certificate-authority": str(pki / "tls.crt")}},
        users={"u": exec_user("./certs.sh")},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    creds = load_kubeconfig([path]).credentials()
    assert creds.token() is None
    assert creds.client_cert() == (crt.encode(), key.encode())
    creds.ssl_context()  # loads the pair


@pytest.mark.parametrize(
    ("script", "match"),
    [
        (
            "echo 'token expired,' >&2\necho 'run: login --again' >&2\nexit 3",
            r"failed with exit code 3: token expired, run: login --again$",
        ),
        ("echo not json", "printed no ExecCredential JSON"),
        (
            'echo \'{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "x"}}\'',
            "printed apiVersion",
        ),
        (
            'echo \'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {}}\'',
            "neither a token nor a client certificate",
        ),
    ],
)
def test_exec_plugin_errors_are_one_line(tmp_path: Path, script: str, match: str) -> None:
    write_plugin(tmp_path, "#!/bin/sh\n" + script + "\n", name="bad.sh")
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://kube.test"}},
        users={"u": exec_user("./bad.sh")},
        contexts={"c": {"cluster": "c", "user": "u"}},
        current="c",
    )
    with pytest.raises(CredentialError, match=match) as err:
        load_kubeconfig([path]).credentials().token()
    assert "\n" not in str(err.value)


def test_exec_plugin_not_found_and_bad_config(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://kube.test"}},
        users={
            "missing": exec_user("no-such-plugin-xyz", installHint="Install it:\n  brew install xyz"),
            "old": exec_user("x", api_version="client.authentication.k8s.io/v1alpha1"),
        },
        contexts={"missing": {"cluster": "c", "user": "missing"}, "old": {"cluster": "c", "user": "old"}},
    )
    config = load_kubeconfig([path])
    with pytest.raises(CredentialError, match="executable no-such-plugin-xyz not found: Install it: brew install xyz"):
        config.credentials("missing").token()
    with pytest.raises(CredentialError, match="v1alpha1' is not supported"):
        config.credentials("old")


def test_401_runs_the_plugin_again_once(tmp_path: Path) -> None:
    creds = exec_credentials(tmp_path)
    creds.clock = Clock()  # the token has not expired: only the 401 makes it run again
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") == "Bearer token-1":
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json={"items": []})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=CredentialAuth(creds)) as client:
        assert client.get("https://kube.test/api").status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-2"]


async def test_operator_client_sends_the_plugin_token(tmp_path: Path) -> None:
    creds = exec_credentials(tmp_path)
    creds.clock = Clock()  # before the plugin's expirationTimestamp
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={"items": []})

    connection = connection_from_credentials(creds)
    client = KubeClient(connection, transport=httpx.MockTransport(handler))
    assert await client.list("apps/v1", "Deployment", "ml", "a=b") == []
    await client.aclose()
    assert seen == ["Bearer token-1"]


def test_kopf_login_gets_the_plugin_token_and_expiry(tmp_path: Path) -> None:
    from tritonop.handlers import connection_info

    creds = exec_credentials(tmp_path)
    creds.clock = Clock()
    info = connection_info(creds)
    assert info.server == "https://kube.test"
    assert info.scheme == "Bearer" and info.token == "token-1"
    assert info.expiration == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)  # kopf logs in again then


async def test_a_plugin_failing_later_is_an_api_error_for_the_operator(tmp_path: Path) -> None:
    from tritonop.kube.client import KubeError

    creds = exec_credentials(tmp_path)
    clock = Clock()
    creds.clock = clock
    connection = connection_from_credentials(creds)  # runs the plugin once: token-1
    write_plugin(tmp_path, "#!/bin/sh\necho 'sso session expired' >&2\nexit 1\n")
    clock.now = T0 + timedelta(hours=1)  # expired: the next request runs the (now failing) plugin
    client = KubeClient(connection, transport=httpx.MockTransport(lambda _: httpx.Response(200, json={})))
    with pytest.raises(KubeError, match="failed with exit code 1: sso session expired") as err:
        await client.get("apps/v1", "Deployment", "ml", "web")
    assert err.value.status == 0  # what the handlers retry with a delay
    await client.aclose()


# ---------------------------------------------------------------- the oidc auth-provider


def jwt(exp: datetime | None, sub: str = "alice") -> str:
    """An unsigned JWT: the client reads only its exp (the API server verifies the rest)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"sub": sub} if exp is None else {"sub": sub, "exp": int(exp.timestamp())}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def oidc_credentials(tmp_path: Path, **config: Any) -> Credentials:
    provider = {"name": "oidc", "config": {"idp-issuer-url": "https://idp.test/", "client-id": "tritonop",
                                           "refresh-token": "r0", **config}}  # fmt: skip
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://kube.test"}},
        users={"u": {"auth-provider": provider}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    return load_kubeconfig([path]).credentials()


def test_an_oidc_id_token_is_used_until_it_expires_then_refreshed(tmp_path: Path) -> None:
    creds = oidc_credentials(tmp_path, **{"id-token": jwt(T0 + timedelta(minutes=5)), "client-secret": "s"})
    assert creds.oidc is not None and creds.oidc.issuer == "https://idp.test" and creds.oidc.client_secret == "s"
    clock, refreshed = Clock(), []
    creds.clock = clock

    def refresh(config: Any) -> tuple[str, str]:
        refreshed.append(config.refresh_token)
        return jwt(clock.now + timedelta(minutes=5), sub=f"new-{len(refreshed)}"), f"r{len(refreshed)}"

    creds.refresh = refresh
    first = creds.token()
    assert first == creds.oidc.id_token and refreshed == []
    assert creds.expiration() == T0 + timedelta(minutes=5)  # kopf logs in again then
    clock.now = T0 + timedelta(minutes=5) - timedelta(seconds=5)  # within the skew: refreshed
    second = creds.token()
    assert second != first and refreshed == ["r0"]
    assert creds.token() == second  # cached while valid
    creds.invalidate()  # the server said 401: refreshed with the rotated refresh-token
    assert creds.token() != second and refreshed == ["r0", "r1"]
    assert creds.refreshable and creds.headers()["Authorization"].startswith("Bearer ")


def test_oidc_configuration_errors_are_one_line(tmp_path: Path) -> None:
    expired = oidc_credentials(tmp_path / "a", **{"id-token": jwt(T0), "refresh-token": None})
    expired.clock = Clock()
    with pytest.raises(CredentialError, match=r"no refresh-token.*log in again"):
        expired.token()
    with pytest.raises(CredentialError, match="no id-token, and no idp-issuer-url"):
        oidc_credentials(tmp_path / "b", **{"refresh-token": None})
    with pytest.raises(CredentialError, match="not a JWT"):
        oidc_credentials(tmp_path / "c", **{"id-token": "opaque"}).token()
    path = kubeconfig(
        tmp_path / "d" / "config",
        clusters={"c": {"server": "https://kube.test"}},
        users={"u": {"auth-provider": {"name": "gcp", "config": {}}}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    with pytest.raises(CredentialError, match="auth-provider 'gcp' is not supported"):
        load_kubeconfig([path]).credentials()


def test_a_token_without_exp_is_used_as_it_is(tmp_path: Path) -> None:
    creds = oidc_credentials(tmp_path, **{"id-token": jwt(None)})
    creds.refresh = lambda config: pytest.fail("refreshed a token that does not expire")  # type: ignore[assignment]
    assert creds.oidc is not None and creds.token() == creds.oidc.id_token
