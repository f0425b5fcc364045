"""prometheus.auth / prometheus.tls / prometheus.headers render into the --prometheus-* flags and
the read-only mounts they name: every file a flag points at is a key of a mounted Secret or
ConfigMap (or the ServiceAccount token), and `tritonop run`'s own parser reads the flags back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import helm_template, run_helm, template_args, the_object
from tritonop.analysis.prometheus import PrometheusAccess
from tritonop.cli import _parser, _run_config

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def rendered(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], PrometheusAccess]:
    """The pod spec, its operator container, and the access settings its args parse into."""
    pod = the_object(helm_template(values), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    access = PrometheusAccess.from_config(_run_config(_parser().parse_args(container["args"])))
    return pod, container, access


def mounted_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Path in the container -> (volume kind, object name, key) for every Prometheus volume item."""
    volumes = {v["name"]: v for v in pod["volumes"] if v["name"].startswith("prometheus-")}
    files = {}
    for mount in container["volumeMounts"]:
        volume = volumes.get(mount["name"])
        if volume is None:
            continue
        assert mount["readOnly"] is True and "subPath" not in mount  # a directory: updated in place
        kind = "secret" if "secret" in volume else "configMap"
        name = volume[kind].get("secretName") or volume[kind].get("name")
        for item in volume[kind]["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = (kind, name, item["key"])
    return files


def test_nothing_by_default() -> None:
    pod, container, access = rendered({})
    assert access == PrometheusAccess()
    assert not [v for v in pod["volumes"] if v["name"].startswith("prometheus-")]
    assert not [a for a in container["args"] if a.startswith("--prometheus-") and "--prometheus-url" not in a]


def test_bearer_token_from_a_secret() -> None:
    pod, container, access = rendered({"prometheus": {"auth": {"type": "bearer", "secretName": "prom-token"}}})
    files = mounted_files(pod, container)
    assert access.bearer_token_file is not None
    assert files == {access.bearer_token_file: ("secret", "prom-token", "token")}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "prometheus-auth"]
    assert volume["secret"]["defaultMode"] == 0o440


def test_basic_auth_from_a_secret() -> None:
    pod, container, access = rendered({"prometheus": {"auth": {"type": "basic", "secretName": "mimir"}}})
    files = mounted_files(pod, container)
    assert access.basic_auth_username_file and access.basic_auth_password_file
    assert files == {
        access.basic_auth_username_file: ("secret", "mimir", "username"),
        access.basic_auth_password_file: ("secret", "mimir", "password"),
    }
    assert access.bearer_token_file is None


def test_the_service_account_token() -> None:
    pod, container, access = rendered({"prometheus": {"auth": {"type": "serviceAccountToken"}}})
    assert access.bearer_token_file == SA_TOKEN
    assert mounted_files(pod, container) == {}
    assert pod.get("automountServiceAccountToken", True) is True


@pytest.mark.parametrize(
    ("ca", "expected"),
    [
        ({"caConfigMapName": "openshift-service-ca.crt", "caKey": "service-ca.crt"},
         ("configMap", "openshift-service-ca.crt", "service-ca.crt")),
        ({"caSecretName": "prometheus-tls"}, ("secret", "prometheus-tls", "ca.crt")),
    ],
)  # fmt: skip
def test_tls_ca_client_certificate_server_name_and_headers(ca: dict[str, str], expected: tuple[str, ...]) -> None:
    values = {
        "prometheus": {
            "headers": ["X-Scope-OrgID: team-a", "X-Extra: a, b"],
            "tls": {**ca, "clientCertSecretName": "operator-client", "serverName": "prometheus.example"},
        }
    }
    pod, container, access = rendered(values)
    files = mounted_files(pod, container)
    assert access.ca_file and access.cert_file and access.key_file
    assert files == {
        access.ca_file: expected,
        access.cert_file: ("secret", "operator-client", "tls.crt"),
        access.key_file: ("secret", "operator-client", "tls.key"),
    }
    assert access.tls_server_name == "prometheus.example"
    assert access.headers == (("X-Scope-OrgID", "team-a"), ("X-Extra", "a, b"))
    assert access.insecure_skip_verify is False


def test_insecure_skip_verify() -> None:
    _, _, access = rendered({"prometheus": {"tls": {"insecureSkipVerify": True}}})
    assert access.insecure_skip_verify is True


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"auth": {"type": "bearer"}}, "prometheus.auth.secretName is required when prometheus.auth.type is bearer"),
        ({"auth": {"type": "basic"}}, "prometheus.auth.secretName is required when prometheus.auth.type is bearer"),
        ({"auth": {"secretName": "x"}}, "prometheus.auth.secretName is set but prometheus.auth.type is neither"),
        ({"tls": {"caConfigMapName": "a", "caSecretName": "b"}}, "set caConfigMapName or caSecretName, not both"),
        ({"tls": {"caSecretName": "b", "insecureSkipVerify": True}}, "insecureSkipVerify ignores the CA"),
        ({"headers": ["Authorization: Bearer abc"]}, "an Authorization header shows in the pod spec"),
    ],
)
def test_contradictions_fail_the_render_with_a_clear_message(values: dict[str, Any], said: str, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"prometheus": values}))
    result = run_helm(template_args(values_files=[values_file]))
    assert result.returncode != 0 and said in result.stderr, result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"auth": {"type": "token"}},
        {"headers": ["X-Scope-OrgID team-a"]},
        {"headers": ["X-Scope-OrgID:"]},
        {"tls": {"caSecretName": "Not_A_Name"}},
        {"tls": {"verify": False}},
    ],
)
def test_the_schema_refuses_bad_values(values: dict[str, Any], tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"prometheus": values}))
    result = run_helm(template_args(values_files=[values_file]))
    assert result.returncode != 0 and "schema" in result.stderr.lower(), result.stderr
