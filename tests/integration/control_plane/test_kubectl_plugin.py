"""`kubectl tritonop` (the kubectl-tritonop console script) against a real API server with
the real operator (tests/support/real_cluster.py): tables with live values, promote, abort,
pause and resume taking effect, `watch` redrawing in a pseudo-terminal, kubectl finding the
plugin on PATH, and an exec-plugin kubeconfig authenticating both the plugin and the
operator as a ServiceAccount."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.control_plane import eventually
from tests.support.operator_process import OperatorProcess, operator_flags
from tests.support.real_cluster import RealCluster, real_cluster

pytestmark = pytest.mark.slow

NS = "ml"
NAME = "plug"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": NAME, "namespace": NS},
    "spec": {
        "model": {"storageUri": "s3://models/plug"},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
    },
}
BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-tritonop"
CLEAR = "\x1b[H\x1b[2J"


def operator_args(tmp_path: Path) -> list[str]:
    """The flags tests/integration/operator/conftest.py runs the operator with."""
    return operator_flags(tmp_path)


def plugin(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} missing: run `.venv/bin/pip install -e .` (scripts/setup)")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [str(PLUGIN), *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"rc {result.returncode}: {result.stderr}"
    return result.stdout


def rows(table: str) -> dict[str, list[str]]:
    """A kubectl-like table as {first cell: cells}."""
    return {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}


def image_spec(image: str | None, **rollout: Any) -> dict[str, Any]:
    spec = copy.deepcopy(ISVC["spec"])
    if image:
        spec["triton"]["image"] = image
    if rollout:
        spec["rollout"] = rollout
    return spec


class PtyReader:
    """A subprocess with its stdout on a pseudo-terminal, read as it writes."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self._master = master
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._data += chunk

    @property
    def text(self) -> str:
        with self._lock:
            return self._data.decode(errors="replace")

    def frames(self) -> list[str]:
        return self.text.split(CLEAR)[1:]

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        rc = self.proc.wait(timeout=20)
        self._thread.join(timeout=5)
        os.close(self._master)
        return rc


async def test_plugin_drives_a_canary_on_the_real_operator(tmp_path: Path) -> None:
    async with real_cluster() as kube:
        kc = kube.kubeconfig
        with OperatorProcess(kc, *operator_args(tmp_path), log=tmp_path / "operator.log") as op:
            try:
                await scenario(kube, kc, tmp_path)
            except BaseException:
                print(f"--- operator log (tail) ---\n{op.output[-4000:]}")
                raise


async def scenario(kube: RealCluster, kc: Path, tmp_path: Path) -> None:
    await kube.apply_isvc(copy.deepcopy(ISVC))
    first = eventually(
        lambda: kube.status(NS, NAME).get("phase") == "Ready" and kube.status(NS, NAME)["stableRevision"],
        "first revision Ready",
        timeout=60,
    )

    # list: the real values, one namespace and all of them; kubectl finds the plugin on PATH.
    listed = ok(plugin(kc, "list", "-n", NS))
    assert listed.splitlines()[0].split() == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "LAST", "VERDICT", "AGE"]
    assert rows(listed)[NAME][:6] == [NAME, "Ready", first, "-", "-", "-"]
    everywhere = ok(plugin(kc, "list", "-A"))
    assert rows(everywhere)[NS][:4] == [NS, NAME, "Ready", first]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("KUBECONFIG", None)
    via_kubectl = subprocess.run(
        ["kubectl", "tritonop", "list", "-n", NS, "--kubeconfig", str(kc)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert via_kubectl.returncode == 0, via_kubectl.stderr
    assert rows(via_kubectl.stdout)[NAME][:3] == [NAME, "Ready", first]

    # get: the stable revision's Deployment with its ready pods, from the real controllers.
    got = ok(plugin(kc, "get", NAME, "-n", NS))
    assert f"Stable:          {first}" in got and "Canary:          -" in got
    assert rows(got[got.index("REVISION") :])[first][:4] == [first, "stable", "100%", "1/1"]

    # A canary, watched in a pseudo-terminal while it is paused: the view is redrawn in place.
    await kube.replace_spec(NS, NAME, image_spec("nvcr.io/nvidia/tritonserver:24.11-py3"))
    second = eventually(lambda: kube.status(NS, NAME).get("canaryRevision"), "canary", timeout=30)
    watch = PtyReader([str(PLUGIN), "watch", NAME, "-n", NS, "--interval", "0.3", "--kubeconfig", str(kc)])
    try:
        eventually(lambda: any(f"Canary:          {second}" in f for f in watch.frames()), "a watch frame", 30)
        paused = ok(plugin(kc, "pause", NAME, "-n", NS))
        assert paused == f'inferenceservice "{NAME}" paused (canary {second})\n'
        assert (kube.isvc(NS, NAME) or {})["spec"]["rollout"]["paused"] is True
        eventually(lambda: kube.status(NS, NAME)["canary"]["waitingFor"] == "Paused", "the operator pauses", 30)
        eventually(
            lambda: any("Waiting for:     Paused" in f and "(paused)" in f for f in watch.frames()),
            "the watch redrawn with the pause",
            30,
        )
        before = [f for f in watch.frames() if "Waiting for:     Paused" not in f and f"Canary:          {second}" in f]
        assert before, "a frame from before the pause"
    finally:
        rc = watch.close()
    assert rc == 0, watch.text[-2000:]

    # get while paused: the canary revision, its step and weight, from status.
    got = ok(plugin(kc, "get", NAME, "-n", NS))
    assert f"Canary:          {second}" in got and "Steps:           [10%] -> 25% -> 50% -> 100%" in got
    assert rows(got[got.index("REVISION") :])[second][:2] == [second, "canary"]
    listed = rows(ok(plugin(kc, "list", "-n", NS)))[NAME]
    assert listed[:4] == [NAME, "Progressing", first, second]

    ok(plugin(kc, "resume", NAME, "-n", NS))
    eventually(lambda: kube.status(NS, NAME)["canary"]["waitingFor"] != "Paused", "the operator resumes", 30)
    assert (kube.isvc(NS, NAME) or {})["spec"]["rollout"]["paused"] is False

    # promote: the annotation names the canary from status; the operator promotes it.
    promoted = ok(plugin(kc, "promote", NAME, "-n", NS))
    assert promoted == f'inferenceservice "{NAME}" promote requested for canary revision {second}\n'
    assert (kube.isvc(NS, NAME) or {})["metadata"]["annotations"]["serving.tritonop.dev/promote"] == second
    eventually(lambda: kube.status(NS, NAME).get("stableRevision") == second, "promoted", timeout=30)
    assert rows(ok(plugin(kc, "list", "-n", NS)))[NAME][:4] == [NAME, "Ready", second, "-"]

    # abort: the operator rolls the next canary back.
    await kube.replace_spec(NS, NAME, image_spec("nvcr.io/nvidia/tritonserver:24.12-py3"))
    third = eventually(lambda: kube.status(NS, NAME).get("canaryRevision"), "third canary", timeout=30)
    ok(plugin(kc, "abort", NAME, "-n", NS))
    status = eventually(
        lambda: (s := kube.status(NS, NAME)).get("phase") == "RolledBack" and s, "rolled back", timeout=30
    )
    assert status["failedRevision"] == third and status["stableRevision"] == second

    # No canary now: promote is refused in one line, exit 1; a missing object likewise.
    refused = plugin(kc, "promote", NAME, "-n", NS)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f'error: inferenceservice "{NAME}" in namespace "{NS}" has no canary to promote '
        f"(stable revision {second}, phase RolledBack)\n"
    )
    missing = plugin(kc, "get", "nope", "-n", NS)
    assert (missing.returncode, missing.stderr) == (
        1,
        f'error: inferenceservice "nope" not found in namespace "{NS}"\n',
    )
    assert plugin(kc, "get").returncode == 2  # usage

    # history: what status keeps and the rollout Events (queued by kopf: wait for them).
    def history() -> str | None:
        text = ok(plugin(kc, "history", NAME, "-n", NS))
        return text if "Promoted" in text and "Aborted" in text else None

    text = eventually(history, "Promoted and Aborted in history", timeout=30)
    assert f"Stable:   {second}" in text and f"Failed:   {third}" in text
    reasons = [line.split()[2] for line in text[text.index("TIME") :].splitlines()[1:]]
    assert reasons.index("Promoted") < reasons.index("Aborted")


EXEC_PLUGIN = """#!/bin/sh
echo run >> "{runs}"
cat <<EOF
{{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
  "status": {{"token": "$(cat "{token}")", "expirationTimestamp": "2999-01-01T00:00:00Z"}}}}
EOF
"""


def exec_kubeconfig(path: Path, server: str, ca: Path, command: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "real", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "sa", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(command), "interactiveMode": "Never"}}}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": "sa", "namespace": NS}}],
        "current-context": "real",
    }  # fmt: skip
    path.write_text(json.dumps(config))
    return path


def exec_plugin_script(directory: Path, token: str) -> tuple[Path, Path]:
    directory.mkdir()
    (directory / "token").write_text(token)
    script = directory / "credential.sh"
    script.write_text(EXEC_PLUGIN.format(runs=directory / "runs", token=directory / "token"))
    script.chmod(0o755)
    return script, directory / "runs"


async def test_exec_plugin_kubeconfig_authenticates_plugin_and_operator(tmp_path: Path) -> None:
    async with real_cluster() as kube:
        cp = kube.control_plane
        assert cp.workdir is not None
        ca = cp.workdir / "pki" / "ca.crt"
        # A ServiceAccount that may only read InferenceServices in ml, and one that runs the operator.
        rbac = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": NS}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "isvc-reader", "namespace": NS},
             "rules": [{"apiGroups": ["serving.tritonop.dev"], "resources": ["inferenceservices"],
                        "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "reader", "namespace": NS},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "isvc-reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": NS}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "tritonop-runner"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
             "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": NS}]},
        ]  # fmt: skip
        for obj in rbac:
            cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))

        def token(account: str) -> str:
            return str(cp.kubectl("create", "token", account, "-n", NS, "--duration=1h").stdout.strip())

        # The operator logs in through an exec plugin (kopf's login and its own client).
        runner, runner_runs = exec_plugin_script(tmp_path / "runner", token("runner"))
        runner_kc = exec_kubeconfig(tmp_path / "runner.kubeconfig", cp.url, ca, runner)
        await kube.apply_isvc(copy.deepcopy(ISVC))
        with OperatorProcess(runner_kc, *operator_args(tmp_path), log=tmp_path / "operator.log") as op:
            first = eventually(
                lambda: kube.status(NS, NAME).get("phase") == "Ready" and kube.status(NS, NAME)["stableRevision"],
                "Ready through an exec-plugin login",
                timeout=60,
            )
            assert runner_runs.read_text().count("run") >= 1, op.output[-3000:]
            assert "Unauthorized" not in op.output

        # The plugin reads as the reader ServiceAccount, whose token the exec plugin prints.
        reader, reader_runs = exec_plugin_script(tmp_path / "reader", token("reader"))
        reader_kc = exec_kubeconfig(tmp_path / "reader.kubeconfig", cp.url, ca, reader)
        listed = plugin(reader_kc, "list")  # namespace from the context: ml
        assert listed.returncode == 0, listed.stderr
        assert rows(listed.stdout)[NAME][:3] == [NAME, "Ready", first]
        assert reader_runs.read_text().count("run") == 1
        # Its RBAC stops at ml: the refusal names the identity the exec plugin gave.
        denied = plugin(reader_kc, "list", "-A")
        assert denied.returncode == 1
        assert denied.stderr.startswith("error: ") and denied.stderr.count("\n") == 1
        assert 'User "system:serviceaccount:ml:reader" cannot list resource "inferenceservices"' in denied.stderr

        # A failing exec plugin: exit 1 and its stderr, in one line.
        broken = tmp_path / "broken.sh"
        broken.write_text("#!/bin/sh\necho 'credentials expired:' >&2\necho 'run sso login' >&2\nexit 4\n")
        broken.chmod(0o755)
        failed = plugin(exec_kubeconfig(tmp_path / "broken.kubeconfig", cp.url, ca, broken), "list")
        assert failed.returncode == 1
        assert failed.stderr == (
            f"error: exec plugin {broken} failed with exit code 4: credentials expired: run sso login\n"
        )


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_plugin_shows_and_picks_an_experiments_variants_on_a_real_api_server() -> None:
    """An A/B/n experiment's status written by hand (no operator: the figures need Prometheus)
    through the real CRD's schema, which prunes fields it does not know: `get` shows every
    variant and its figures, `promote --variant` names the picked variant's revision."""
    a, b, distilled, int8 = "aaaa111111", "bbbb222222", "dddd444444", "eeee555555"
    now = datetime.now(UTC)
    obj = copy.deepcopy(ISVC)
    obj["spec"]["rollout"] = {
        "strategy": "Experiment",
        "experiment": {
            "weight": 20,
            "duration": "168h",
            "variants": [
                {"name": "distilled", "weight": 20, "model": {"storageUri": "s3://models/plug-distilled"}},
                {"name": "int8", "weight": 10, "model": {"storageUri": "s3://models/plug-int8"}},
            ],
        },
    }
    status = {
        "phase": "Progressing",
        "stableRevision": a,
        "canaryRevision": b,
        "traffic": [{"revision": a, "percent": 60}, {"revision": b, "percent": 20}, {"revision": distilled, "percent": 20}],
        "canary": {
            "step": 0,
            "weight": 20,
            "variants": [
                {"name": "distilled", "revision": distilled, "weight": 20, "failedChecks": 0},
                {"name": "int8", "revision": int8, "weight": 0, "failedChecks": 3, "stopped": "stopped after 3 failed checks"},
            ],
        },
        "experiment": {
            "startedAt": stamp(now - timedelta(hours=1)),
            "endsAt": stamp(now + timedelta(days=7)),
            "resultsAt": stamp(now),
            "message": f"running until {stamp(now + timedelta(days=7))}",
            "variants": [
                {"name": "A", "revision": a, "weight": 60, "requests": 6000, "successRate": 0.9995, "meanLatencyMs": 10.0},
                {"name": "B", "revision": b, "weight": 20, "requests": 2000, "successRate": 0.995, "meanLatencyMs": 14.5},
                {"name": "distilled", "revision": distilled, "weight": 20, "requests": 2100, "successRate": 1.0,
                 "meanLatencyMs": 6.25, "metrics": {"click-through": 0.0305}},
                {"name": "int8", "revision": int8, "weight": 0, "requests": 400, "successRate": 0.97},
            ],
            "comparison": [
                {"variant": "distilled", "metric": "meanLatencyMs", "difference": -3.75, "low": -4.1, "high": -3.4,
                 "significant": True, "statement": "distilled's mean latency is lower than A's by 3.75 ms"},
            ],
        },
    }  # fmt: skip
    async with real_cluster() as kube:
        kc = kube.kubeconfig
        await kube.apply_isvc(obj)
        path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices/{NAME}/status"
        await kube.request("PATCH", path, {"status": status})
        assert kube.status(NS, NAME)["canary"]["variants"][1]["stopped"] == "stopped after 3 failed checks"

        got = ok(plugin(kc, "get", NAME, "-n", NS))
        revisions = rows(got[got.index("REVISION") : got.index("Experiment:")])
        assert revisions[distilled][:4] == [distilled, "variant", "distilled", "20%"]
        assert b in revisions and int8 not in revisions  # a stopped variant without a Deployment: gone
        figures = rows(got[got.index("VARIANT") : got.index("- distilled")])
        assert figures["distilled"] == ["distilled", distilled, "20%", "2100", "100%", "6.25", "ms", "0.0305"]
        assert figures["int8"][:3] == ["int8", "(stopped)", int8]
        assert "Experiment:      running, ends in 6d23h" in got
        assert "- distilled's mean latency is lower than A's by 3.75 ms" in got

        said = ok(plugin(kc, "promote", NAME, "-n", NS, "--variant", "distilled"))
        assert said == f'inferenceservice "{NAME}" promote requested for variant distilled (revision {distilled})\n'
        assert (kube.isvc(NS, NAME) or {})["metadata"]["annotations"]["serving.tritonop.dev/promote"] == distilled
        refused = plugin(kc, "promote", NAME, "-n", NS, "--variant", "int8")
        assert (refused.returncode, refused.stderr) == (
            1,
            'error: variant "int8" cannot be picked: stopped after 3 failed checks (one of: B, distilled)\n',
        )
        assert (kube.isvc(NS, NAME) or {})["metadata"]["annotations"]["serving.tritonop.dev/promote"] == distilled
