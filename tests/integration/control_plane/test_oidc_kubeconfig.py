"""A kubeconfig whose user is the `oidc` auth-provider, against the real kube-apiserver trusting
a local OpenID Connect identity provider (tests/support/oidc_issuer.py; the server verifies
every id-token's signature, issuer, audience and expiry itself).

Checked: an expired id-token in the kubeconfig is refreshed with its refresh-token at the
provider's token endpoint (found through discovery) and the request authenticates as the
token's user; a token about to expire is refreshed again, with the rotated refresh-token;
one the server refuses (401) is refreshed once and the request sent again; a revoked
refresh-token is a one-line CredentialError that says to log in again.

Skipped when the binaries are not built (`scripts/build-control-plane`), failed instead
with TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.control_plane import ControlPlane, eventually
from tests.support.oidc_issuer import CLIENT_ID, CLIENT_SECRET, OidcIssuer
from tritonop.kube.credentials import CredentialAuth, CredentialError, Credentials, load_kubeconfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcIssuer]:
    provider = OidcIssuer(tmp_path_factory.mktemp("oidc")).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def cluster(issuer: OidcIssuer) -> Iterator[ControlPlane]:
    flags = (
        f"--oidc-issuer-url={issuer.url}",
        f"--oidc-client-id={CLIENT_ID}",
        f"--oidc-ca-file={issuer.ca}",
        "--oidc-username-claim=sub",
        "--oidc-username-prefix=oidc:",
    )
    with ControlPlane(extra_apiserver_args=flags) as cp:
        # A role of our own: `view` is aggregated by a controller this control plane does not run.
        cp.kubectl("create", "clusterrole", "read-configmaps", "--verb=get,list", "--resource=configmaps")
        cp.kubectl("create", "clusterrolebinding", "oidc-alice", "--clusterrole=read-configmaps", "--user=oidc:alice")
        yield cp


def oidc_kubeconfig(cluster: ControlPlane, issuer: OidcIssuer, path: Path, id_token: str) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    provider = {
        "name": "oidc",
        "config": {
            "idp-issuer-url": issuer.url,
            "client-id": CLIENT_ID,
            "client-secret": CLIENT_SECRET,
            "id-token": id_token,
            "refresh-token": issuer.refresh_token,
            "idp-certificate-authority": str(issuer.ca),
        },
    }
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "alice", "user": {"auth-provider": provider}}],
        "contexts": [{"name": "alice", "context": {"cluster": admin["clusters"][0]["name"], "user": "alice"}}],
        "current-context": "alice",
    }))  # fmt: skip
    return path


def get(credentials: Credentials, path: str) -> httpx.Response:
    with httpx.Client(verify=credentials.ssl_context(), auth=CredentialAuth(credentials), timeout=30) as http:
        return http.get(credentials.server + path)


def whoami(credentials: Credentials) -> dict[str, Any]:
    with httpx.Client(verify=credentials.ssl_context(), auth=CredentialAuth(credentials), timeout=30) as http:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        answer = http.post(credentials.server + "/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review)
        answer.raise_for_status()
        return dict(answer.json()["status"]["userInfo"])


def test_an_expired_id_token_is_refreshed_and_authenticates_as_its_user(
    cluster: ControlPlane, issuer: OidcIssuer, tmp_path: Path
) -> None:
    path = oidc_kubeconfig(cluster, issuer, tmp_path / "kubeconfig", issuer.id_token(expires_in=-60))
    credentials = load_kubeconfig([path]).credentials()
    # The server loads the provider's keys in the background after it starts.
    eventually(
        lambda: get(credentials, "/api/v1/namespaces/default/configmaps").status_code == 200,
        "the OIDC user listed ConfigMaps",
    )
    assert issuer.refreshes >= 1
    assert whoami(credentials)["username"] == "oidc:alice"
    assert get(credentials, "/api/v1/namespaces/default/secrets").status_code == 403  # its RBAC: no Secrets

    # About to expire: refreshed again, with the refresh-token the provider rotated.
    before = issuer.refreshes
    real_clock = credentials.clock
    credentials.clock = lambda: real_clock() + timedelta(seconds=issuer.ttl_s)
    assert get(credentials, "/api/v1/namespaces/default/configmaps").status_code == 200
    assert issuer.refreshes == before + 1


def test_a_refused_id_token_is_refreshed_once(cluster: ControlPlane, issuer: OidcIssuer, tmp_path: Path) -> None:
    forged = issuer.id_token()[:-8] + "AAAAAAAA"  # a bad signature, not expired: only the server can tell
    path = oidc_kubeconfig(cluster, issuer, tmp_path / "kubeconfig", forged)
    credentials = load_kubeconfig([path]).credentials()
    before = issuer.refreshes
    eventually(
        lambda: get(credentials, "/api/v1/namespaces/default/configmaps").status_code == 200,
        "the OIDC user listed ConfigMaps",
    )
    assert issuer.refreshes == before + 1


def test_a_revoked_refresh_token_says_to_log_in_again(
    cluster: ControlPlane, issuer: OidcIssuer, tmp_path: Path
) -> None:
    path = oidc_kubeconfig(cluster, issuer, tmp_path / "kubeconfig", issuer.id_token(expires_in=-60))
    issuer.refresh_token = "revoked-" + issuer.refresh_token  # the kubeconfig's is no longer known
    credentials = load_kubeconfig([path]).credentials()
    with pytest.raises(CredentialError, match=r"refused the refresh .*log in again"):
        credentials.token()
