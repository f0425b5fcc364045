"""`kubectl tritonop` commands against an in-memory API (httpx.MockTransport): what they
write to the server, what they print, and their exit codes."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tritonop.kube.credentials import Credentials
from tritonop.plugin import cli
from tritonop.plugin.api import Api

ISVC_PATH = "/apis/serving.tritonop.dev/v1alpha1/namespaces/ml/inferenceservices/resnet"


class FakeServer:
    def __init__(self, obj: dict[str, Any] | None) -> None:
        self.obj = obj
        self.patches: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.on_patch: Any = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/deployments") or path.endswith("/events"):
            return httpx.Response(200, json={"items": []})
        if path == "/apis/serving.tritonop.dev/v1alpha1/namespaces/ml/inferenceservices":
            return httpx.Response(200, json={"items": [self.obj] if self.obj else []})
        if path != ISVC_PATH or self.obj is None:
            return httpx.Response(404, json={"message": "not found"})
        if request.method == "PATCH":
            assert request.headers["Content-Type"] == "application/merge-patch+json"
            patch = json.loads(request.content)
            self.patches.append(patch)
            annotations = self.obj["metadata"].setdefault("annotations", {})
            for k, v in (patch.get("metadata") or {}).get("annotations", {}).items():
                if v is None:
                    annotations.pop(k, None)
                else:
                    annotations[k] = v
            if "spec" in patch:
                self.obj["spec"].setdefault("rollout", {}).update(patch["spec"]["rollout"])
            if self.on_patch:
                self.on_patch(self)
        return httpx.Response(200, json=self.obj)


def canary_isvc(**canary: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "resnet", "namespace": "ml", "creationTimestamp": "2026-05-01T10:00:00Z"},
        "spec": {"rollout": {}},
        "status": {
            "phase": "Progressing",
            "stableRevision": "aaaa111111",
            "canaryRevision": "bbbb222222",
            "canary": {"step": 0, "weight": 10, **canary},
        },
    }


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://kube.test"}}],
                "users": [{"name": "u", "user": {"token": "secret"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}],
                "current-context": "c",
            }
        )
    )
    return path


def run(server: FakeServer, kubeconfig: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    args = cli.parser().parse_args([*argv, "--kubeconfig", str(kubeconfig)])

    def make_api(credentials: Credentials) -> Api:
        return Api(credentials, transport=httpx.MockTransport(server.handler))

    return cli.run(args, out, make_api=make_api), out.getvalue()


def test_promote_and_abort_name_the_canary_from_status(kubeconfig: Path) -> None:
    server = FakeServer(canary_isvc())
    assert run(server, kubeconfig, "promote", "resnet") == (
        0,
        'inferenceservice "resnet" promote requested for canary revision bbbb222222\n',
    )
    assert server.patches == [{"metadata": {"annotations": {"serving.tritonop.dev/promote": "bbbb222222"}}}]
    assert server.requests[0].headers["Authorization"] == "Bearer secret"
    assert run(server, kubeconfig, "-n", "ml", "abort", "resnet")[0] == 0
    assert server.patches[-1] == {"metadata": {"annotations": {"serving.tritonop.dev/abort": "bbbb222222"}}}


def test_a_stale_annotation_is_removed_then_set_again(kubeconfig: Path) -> None:
    server = FakeServer(canary_isvc(ignoredAnnotations=["promote"]))
    server.obj["metadata"]["annotations"] = {"serving.tritonop.dev/promote": "bbbb222222"}

    def operator_sees_removal(s: FakeServer) -> None:
        if "serving.tritonop.dev/promote" not in s.obj["metadata"]["annotations"]:
            s.obj["status"]["canary"].pop("ignoredAnnotations", None)

    server.on_patch = operator_sees_removal
    assert run(server, kubeconfig, "promote", "resnet")[0] == 0
    assert server.patches == [
        {"metadata": {"annotations": {"serving.tritonop.dev/promote": None}}},
        {"metadata": {"annotations": {"serving.tritonop.dev/promote": "bbbb222222"}}},
    ]


def test_no_canary_is_refused(kubeconfig: Path) -> None:
    obj = canary_isvc()
    obj["status"] = {"phase": "Ready", "stableRevision": "aaaa111111"}
    server = FakeServer(obj)
    with pytest.raises(cli.PluginError) as err:
        run(server, kubeconfig, "promote", "resnet")
    assert str(err.value) == (
        'inferenceservice "resnet" in namespace "ml" has no canary to promote (stable revision aaaa111111, phase Ready)'
    )
    assert server.patches == []


def test_pause_and_resume_set_spec_rollout_paused(kubeconfig: Path) -> None:
    server = FakeServer(canary_isvc())
    assert run(server, kubeconfig, "pause", "resnet") == (0, 'inferenceservice "resnet" paused (canary bbbb222222)\n')
    assert server.patches == [{"spec": {"rollout": {"paused": True}}}]
    assert run(server, kubeconfig, "pause", "resnet") == (0, 'inferenceservice "resnet" already paused\n')
    assert len(server.patches) == 1
    assert run(server, kubeconfig, "resume", "resnet")[0] == 0
    assert server.patches[-1] == {"spec": {"rollout": {"paused": False}}}


def test_not_found_and_exit_codes(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.PluginError, match=r'^inferenceservice "resnet" not found in namespace "ml"$'):
        run(FakeServer(None), kubeconfig, "get", "resnet")
    assert cli.main(["get", "x", "--kubeconfig", str(kubeconfig.parent / "nope")]) == 1
    assert capsys.readouterr().err.startswith("error: kubeconfig ")
    with pytest.raises(SystemExit) as usage:
        cli.main(["promote"])  # no NAME
    assert usage.value.code == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_watch_redraws_in_place_on_a_terminal_and_appends_on_change_otherwise(kubeconfig: Path) -> None:
    server = FakeServer(canary_isvc())
    api = Api(Credentials(server="https://kube.test"), transport=httpx.MockTransport(server.handler))
    args = cli.parser().parse_args(["watch", "resnet"])
    changes = iter([None, "pause", None])

    def sleep(_: float) -> None:
        if next(changes) == "pause":
            server.obj["spec"]["rollout"]["paused"] = True
            server.obj["status"]["canary"]["waitingFor"] = "Paused"

    plain = io.StringIO()
    assert cli.cmd_watch(api, args, "ml", plain, sleep=sleep, polls=4) == 0
    frames = plain.getvalue().split("Name:")[1:]
    assert len(frames) == 2  # four polls, one change
    assert "Waiting for:     -" in frames[0] and "Waiting for:     Paused" in frames[1]
    assert cli.CLEAR not in plain.getvalue()

    server.obj = copy.deepcopy(canary_isvc())
    tty = Terminal()
    assert cli.cmd_watch(api, args, "ml", tty, sleep=lambda _: None, polls=3) == 0
    assert tty.getvalue().count(cli.CLEAR) == 3  # every poll, in place

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    assert cli.cmd_watch(api, args, "ml", io.StringIO(), sleep=interrupt) == 0  # Ctrl-C exits 0


def test_an_in_place_switch_is_promoted_by_its_candidate_version(kubeconfig: Path) -> None:
    obj = canary_isvc()
    obj["status"] = {
        "phase": "Progressing",
        "stableRevision": "aaaa111111",
        "inPlace": {"version": "2", "candidate": "3", "canary": {"step": 0, "weight": 33}},
    }
    server = FakeServer(obj)
    assert run(server, kubeconfig, "abort", "resnet") == (
        0,
        'inferenceservice "resnet" abort requested for version 3 (in place)\n',
    )
    assert server.patches == [{"metadata": {"annotations": {"serving.tritonop.dev/abort": "v3"}}}]


def experiment_isvc() -> dict[str, Any]:
    """B (bbbb222222) the canary of an A/B/n experiment, with distilled running, int8 stopped
    and fp16 not weighted yet."""
    obj = canary_isvc(
        variants=[
            {"name": "distilled", "revision": "dddd444444", "weight": 20, "failedChecks": 0},
            {
                "name": "int8",
                "revision": "eeee555555",
                "weight": 0,
                "failedChecks": 3,
                "stopped": "stopped after 3 failed checks: latency 312 > 250",
            },
            {"name": "fp16", "revision": "ffff666666", "weight": 0},
        ]
    )
    obj["spec"]["rollout"] = {"strategy": "Experiment"}
    obj["status"]["experiment"] = {"startedAt": "2026-05-01T10:00:00Z", "endsAt": "2026-05-08T10:00:00Z"}
    return obj


def test_promote_variant_names_the_picked_variants_revision(kubeconfig: Path) -> None:
    server = FakeServer(experiment_isvc())
    assert run(server, kubeconfig, "promote", "resnet", "--variant", "distilled") == (
        0,
        'inferenceservice "resnet" promote requested for variant distilled (revision dddd444444)\n',
    )
    assert server.patches == [{"metadata": {"annotations": {"serving.tritonop.dev/promote": "dddd444444"}}}]
    assert run(server, kubeconfig, "promote", "--variant", "B", "resnet") == (
        0,
        'inferenceservice "resnet" promote requested for variant B (canary revision bbbb222222)\n',
    )
    assert server.patches[-1] == {"metadata": {"annotations": {"serving.tritonop.dev/promote": "bbbb222222"}}}
    code, said = run(server, kubeconfig, "promote", "resnet", "--variant", "fp16")
    assert code == 0 and said.endswith("(revision ffff666666); it acts once the variant has weight and ready pods\n")
    assert server.patches[-1] == {"metadata": {"annotations": {"serving.tritonop.dev/promote": "ffff666666"}}}
    assert run(server, kubeconfig, "promote", "resnet")[0] == 0  # without --variant: the canary, as before
    assert server.patches[-1] == {"metadata": {"annotations": {"serving.tritonop.dev/promote": "bbbb222222"}}}


def test_promote_variant_b_removes_a_stale_annotation_first(kubeconfig: Path) -> None:
    server = FakeServer(experiment_isvc())
    server.obj["status"]["canary"]["ignoredAnnotations"] = ["promote"]
    server.obj["metadata"]["annotations"] = {"serving.tritonop.dev/promote": "bbbb222222"}

    def operator_sees_removal(s: FakeServer) -> None:
        if "serving.tritonop.dev/promote" not in s.obj["metadata"]["annotations"]:
            s.obj["status"]["canary"].pop("ignoredAnnotations", None)

    server.on_patch = operator_sees_removal
    assert run(server, kubeconfig, "promote", "resnet", "--variant", "B")[0] == 0
    assert [p["metadata"]["annotations"]["serving.tritonop.dev/promote"] for p in server.patches] == [
        None,
        "bbbb222222",
    ]


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("int8", 'variant "int8" cannot be picked: stopped after 3 failed checks: latency 312 > 250 (one of: B, distilled, fp16)'),
        ("nope", 'inferenceservice "resnet" in namespace "ml" has no variant "nope" to pick (one of: B, distilled, fp16)'),
        ("A", "A is the stable revision: `kubectl tritonop abort resnet` picks A"),
    ],
)  # fmt: skip
def test_promote_variant_refuses_stopped_unknown_and_a(kubeconfig: Path, variant: str, message: str) -> None:
    server = FakeServer(experiment_isvc())
    with pytest.raises(cli.PluginError) as err:
        run(server, kubeconfig, "promote", "resnet", "--variant", variant)
    assert str(err.value) == message
    assert server.patches == []


def test_promote_variant_without_an_experiment_is_refused(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeServer(canary_isvc())  # a plain canary: no experiment
    with pytest.raises(cli.PluginError, match=r" runs no experiment to pick a variant of$"):
        run(server, kubeconfig, "promote", "resnet", "--variant", "B")
    decided = experiment_isvc()
    decided["spec"]["rollout"] = {}
    decided["status"] = {
        "phase": "Ready",
        "stableRevision": "dddd444444",
        "experiment": {"ended": True, "winner": "distilled"},
    }
    server = FakeServer(decided)
    with pytest.raises(cli.PluginError) as err:
        run(server, kubeconfig, "promote", "resnet", "--variant", "distilled")
    assert str(err.value) == (
        'inferenceservice "resnet" in namespace "ml" runs no experiment to pick a variant of '
        "(the last one ended, winner distilled)"
    )
    assert server.patches == []
    with pytest.raises(SystemExit) as usage:
        cli.main(["abort", "resnet", "--variant", "B"])  # abort picks A: no --variant
    assert usage.value.code == 2
