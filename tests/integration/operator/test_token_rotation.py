"""A rotated service-account token is picked up without a restart (issue 13).

The operator runs from a kubeconfig whose user names a ``tokenFile`` (what the kubelet's
projected, rotating in-cluster token is: tritonop/kube/credentials.py reads both the same
way, per request). The file first holds a token of ServiceAccount ``first``; it is then
replaced with one of ``second`` and ``first`` is deleted, so the old token is refused from
then on. The running operator must go on serving (a spec change starts a canary) with
requests that carry the new token: its own client and its watch caches, and kopf's
watches, which log in again when refused.
"""

from __future__ import annotations

import copy
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.operator_process import OperatorProcess, eventually, operator_flags
from tests.support.real_cluster import RealCluster

NS = "ml"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "rotated", "namespace": NS},
    "spec": {
        "model": {"name": "m", "storageUri": "s3://models/m"},
        "triton": {"gpus": 0},
        "traffic": {"provider": "service"},
    },
}


def account_token(kube: RealCluster, account: str) -> str:
    cp = kube.control_plane
    cp.kubectl("create", "serviceaccount", account, "-n", "kube-system")
    cp.kubectl(
        "create", "clusterrolebinding", f"tritonop-{account}", "--clusterrole=cluster-admin",
        f"--serviceaccount=kube-system:{account}",
    )  # fmt: skip
    return cp.kubectl("create", "token", account, "-n", "kube-system", "--duration=1h").stdout.strip()


def refused(kube: RealCluster, token: str) -> bool:
    """Whether the API server now refuses ``token`` (it caches a token's review for a few seconds)."""
    cp = kube.control_plane
    assert cp.workdir is not None
    context = ssl.create_default_context(cafile=str(cp.workdir / "pki" / "ca.crt"))
    request = urllib.request.Request(f"{cp.url}/api/v1/namespaces/{NS}", headers={"Authorization": f"Bearer {token}"})
    try:
        urllib.request.urlopen(request, context=context, timeout=5)
    except urllib.error.HTTPError as err:
        return err.code == 401
    return False


def bearer(request: object) -> str:
    return getattr(request, "headers", {}).get("Authorization", "")


async def test_rotated_token_file_is_used_without_restart(kube: RealCluster, tmp_path: Path) -> None:
    first, second = account_token(kube, "first"), account_token(kube, "second")
    token_file = tmp_path / "token"
    token_file.write_text(first)
    kubeconfig = json.loads(kube.proxy.kubeconfig(tmp_path / "kubeconfig").read_text())
    kubeconfig["users"][0]["user"] = {"tokenFile": str(token_file)}
    (tmp_path / "kubeconfig").write_text(json.dumps(kubeconfig))

    op = OperatorProcess(tmp_path / "kubeconfig", *operator_flags(tmp_path), log=tmp_path / "operator.log").start()
    try:
        await kube.apply_isvc(copy.deepcopy(ISVC))
        stable = await eventually(lambda: kube.status(NS, "rotated").get("stableRevision"), timeout=40, what="deployed")
        assert all(bearer(r) == f"Bearer {first}" for r in kube.api.all_requests if bearer(r))

        token_file.write_text(second)  # the kubelet rotates the projected token
        kube.control_plane.kubectl("delete", "serviceaccount", "first", "-n", "kube-system")
        await eventually(lambda: refused(kube, first), timeout=30, what="the old token refused")
        mark = len(kube.api.all_requests)
        changed = copy.deepcopy(ISVC)
        changed["spec"]["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"
        await kube.apply_isvc(changed)
        canary = await eventually(
            lambda: kube.status(NS, "rotated").get("canaryRevision"), timeout=60, what="the change served"
        )
        assert canary != stable and op.proc is not None and op.proc.poll() is None

        def agents_with_new_token() -> set[str]:
            later = [r for r in kube.api.all_requests[mark:] if bearer(r) == f"Bearer {second}"]
            return {r.headers.get("User-Agent", "").split("/")[0] for r in later}

        # kopf records the change as handled (a patch) after the handler ran: wait for it.
        await eventually(lambda: {"tritonop", "kopf"} <= agents_with_new_token(), timeout=30, what="both clients")
        later = [r for r in kube.api.all_requests[mark:] if bearer(r)]
        # kopf keeps its token until refused, then logs in again (reading the file anew): what
        # the old token still sent was refused, never served.
        assert all(r.status == 401 for r in later if bearer(r) == f"Bearer {first}")
    finally:
        op.stop()
        print(f"--- operator log (tail) ---\n{op.output[-3000:]}")
