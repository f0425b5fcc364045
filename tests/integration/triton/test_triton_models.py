"""Several models and an ensemble of them (model.models), against real tritonserver processes.

The repository holds two Python-backend models, ``pre`` (x2) and ``post`` (x3), and the
ensemble ``pipeline`` of both (x6). The gate must stay closed while any listed model, or a
composing model of the ensemble, is not loaded or failed to load, name that model, and open
once all are ready; an acceptance case against the ensemble must pass through it.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_kube import FakeKube
from tests.support.triton import (
    LOAD_FAILURE_MESSAGE,
    TritonProcess,
    TritonServer,
    expand_env_references,
    free_ports,
    localize_args,
    write_model,
)
from tritonop.analysis.triton_metrics import PodCounters, parse_model_counters
from tritonop.api.models import Acceptance, InferenceServiceSpec, InferenceServiceStatus
from tritonop.children.deployment import build_deployment
from tritonop.children.refs import IsvcRef
from tritonop.children.triton_key import KEY_ENV, KEY_HEADER
from tritonop.config import OperatorConfig
from tritonop.controller.triton_checks import TritonChecks
from tritonop.controller.triton_keys import TritonKeys
from tritonop.endpoints import TritonEndpoints
from tritonop.status import DeploymentReadiness
from tritonop.triton import Reason, check_readiness, run_acceptance, served_models

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT_S = 60.0
MODELS = ["pre", "post", "pipeline"]
REF = IsvcRef(name="chain", namespace="ml", uid="u-models")
REVISION = "rev1"
KEYS = TritonKeys(b"operator-secret-of-the-models-test-0123456789")
SIX_TIMES = {
    "name": "six-times",
    "model": "pipeline",
    "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [3], "data": [1.0, 2.5, -3.0]}],
    "outputs": [{"name": "OUTPUT0", "data": [6.0, 15.0, -18.0]}],
}

_ENSEMBLE_CONFIG = """\
name: "{name}"
platform: "ensemble"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
ensemble_scheduling {{ step [ {steps} ] }}
"""
_STEP = (
    '{{ model_name: "{model}" model_version: -1 input_map {{ key: "INPUT0" value: "{source}" }} '
    'output_map {{ key: "OUTPUT0" value: "{target}" }} }}'
)


def write_ensemble(repo: Path, name: str, steps: list[str]) -> None:
    """An ensemble running ``steps`` in a chain: each model's OUTPUT0 is the next one's INPUT0."""
    tensors = ["INPUT0", *(f"between_{i}" for i in range(1, len(steps))), "OUTPUT0"]
    rendered = [_STEP.format(model=model, source=tensors[i], target=tensors[i + 1]) for i, model in enumerate(steps)]
    (repo / name / "1").mkdir(parents=True, exist_ok=True)
    (repo / name / "config.pbtxt").write_text(_ENSEMBLE_CONFIG.format(name=name, steps=", ".join(rendered)))


def write_repository(repo: Path, *, post_fails: bool = False) -> Path:
    write_model(repo, "pre", scale=2.0)
    write_model(repo, "post", scale=3.0, fail_load=post_fails)
    write_ensemble(repo, "pipeline", ["pre", "post"])
    return repo


def load(url: str, model: str, key: str | None = None) -> None:
    """Triton's repository API: load ``model`` (and, for an ensemble, its composing models)."""
    headers = {KEY_HEADER: key} if key else {}
    request = urllib.request.Request(f"{url}/v2/repository/models/{model}/load", b"{}", headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def several_models_spec() -> dict[str, Any]:
    return {
        "model": {"storageUri": "pvc://models/repo", "models": MODELS},
        "triton": {"gpus": 0},
        "rollout": {"acceptance": {"cases": [SIX_TIMES], "timeout": "10s"}},
    }


def revision_container(spec: InferenceServiceSpec) -> dict[str, Any]:
    deployment = build_deployment(REF, spec, REVISION, OperatorConfig(), replicas=1)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def run_revision(spec: InferenceServiceSpec, repo: Path) -> TritonProcess:
    """The revision's own tritonserver command line, as the kubelet would run it, made local."""
    container = revision_container(spec)
    http_port, grpc_port, metrics_port = free_ports(3)
    args = localize_args(
        expand_env_references([*container["command"], *container["args"]], {KEY_ENV: KEYS.key_for(REF)}),
        model_repository=repo,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
    )
    return TritonProcess(args)


def available_deployment(spec: InferenceServiceSpec) -> dict[str, Any]:
    deployment = build_deployment(REF, spec, REVISION, OperatorConfig(), replicas=1)
    deployment["status"] = {"replicas": 1, "readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    return deployment


def checks_for(url: str, spec: InferenceServiceSpec) -> TritonChecks:
    """The operator's Triton checks, its revision Service at ``url``, its Deployment Available."""
    kube = FakeKube()
    kube.put(available_deployment(spec))
    return TritonChecks(kube, TritonEndpoints(url), KEYS)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the revision's own command line


async def test_gate_waits_for_a_failing_composing_model_then_opens_and_accepts(tmp_path: Path) -> None:
    spec = InferenceServiceSpec.model_validate(several_models_spec())
    repo = write_repository(tmp_path / "repo", post_fails=True)
    with run_revision(spec, repo) as process:
        assert process.wait_live(STARTUP_TIMEOUT_S), process.recent_output()
        checks = checks_for(process.http_url, spec)

        closed = await checks.gate(REF, spec, REVISION)
        assert (closed.ready, closed.reason) == (False, Reason.MODEL_LOAD_FAILED), closed.message
        assert "model 'post' failed to load" in closed.message and LOAD_FAILURE_MESSAGE in closed.message
        assert "also not ready: 'pipeline'" in closed.message
        assert closed.acceptance_passed is None  # no inference before every model is ready
        assert process.running()
        # Listed alone, the ensemble has no version and no reason of its own: its failed step is named.
        ensemble = await check_readiness(process.http_url, ["pipeline"], None, key=KEYS.key_for(REF))
        assert (ensemble.ready, ensemble.reason) == (False, Reason.MODEL_LOAD_FAILED)
        assert ensemble.message.startswith("model 'pipeline' is not loaded; model 'post' failed to load: ")

        # The model is fixed in the repository and the ensemble loaded again, with its steps.
        write_model(repo, "post", scale=3.0)
        load(process.http_url, "pipeline", KEYS.key_for(REF))
        opened = await checks.gate(REF, spec, REVISION)
        assert (opened.ready, opened.acceptance_passed) == (True, True), opened.message
        assert opened.message == "1 acceptance case(s) passed"

        # status.models: each listed model's facts, from the revision that serves them.
        status = InferenceServiceStatus(stable_revision=REVISION)
        stable = DeploymentReadiness("chain-rev1", 1, 1, True)
        model, models = await checks.stable_model_facts(REF, spec, status, stable)
        assert model is None and models is not None
        assert [(f.name, f.platform, f.revision) for f in models] == [
            ("pre", "python", REVISION),
            ("post", "python", REVISION),
            ("pipeline", "ensemble", REVISION),
        ]


async def test_acceptance_against_the_ensemble_compares_its_output(tmp_path: Path) -> None:
    doubling = {**SIX_TIMES, "outputs": [{"name": "OUTPUT0", "data": [2.0, 5.0, -6.0]}]}
    spec = InferenceServiceSpec.model_validate(
        {**several_models_spec(), "rollout": {"acceptance": {"cases": [doubling]}}}
    )
    with run_revision(spec, write_repository(tmp_path / "repo")) as process:
        assert process.wait_ready(STARTUP_TIMEOUT_S), process.recent_output()
        gate = await checks_for(process.http_url, spec).gate(REF, spec, REVISION)
    assert (gate.ready, gate.acceptance_passed, gate.reason) == (True, False, Reason.ACCEPTANCE_OUTPUT_MISMATCH)
    assert gate.message.startswith("case six-times (model 'pipeline'): output OUTPUT0")
    assert "got [6.0, 15.0, -18.0]" in gate.message


# ---------------------------------------------------------------- the gate, model by model


@pytest.fixture(scope="module")
def partly_loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Only ``pre`` loaded at start; ``post`` and ``pipeline`` sit in the repository."""
    repo = write_repository(tmp_path_factory.mktemp("partly"))
    with TritonServer(repo, ["pre"]) as server:
        assert server.wait_ready(STARTUP_TIMEOUT_S), server.recent_output()
        yield server


async def test_gate_names_the_listed_models_that_are_not_loaded(partly_loaded: TritonServer) -> None:
    readiness = await check_readiness(partly_loaded.http_url, MODELS, None)
    assert (readiness.ready, readiness.reason) == (False, Reason.MODEL_NOT_READY)
    assert readiness.message == "model 'post' is not loaded; also not ready: 'pipeline'"
    ensemble_only = await check_readiness(partly_loaded.http_url, ["pipeline"], None)
    assert (ensemble_only.ready, ensemble_only.message) == (False, "model 'pipeline' is not loaded")
    assert (await check_readiness(partly_loaded.http_url, ["pre"], None)).ready


async def test_ensemble_gate_opens_once_it_and_its_steps_are_loaded(partly_loaded: TritonServer) -> None:
    load(partly_loaded.http_url, "pipeline")  # last: the other test sees the models unloaded
    readiness = await check_readiness(partly_loaded.http_url, ["pipeline"], None)
    assert (readiness.ready, readiness.reason) == (True, Reason.READY), readiness.message
    # The composing models were checked through the ensemble's config.
    assert readiness.message == (
        "3 models are ready: model 'pipeline', model 'pre' (a step of ensemble 'pipeline'), "
        "model 'post' (a step of ensemble 'pipeline')"
    )
    assert (await check_readiness(partly_loaded.http_url, MODELS, None)).ready
    result = await run_acceptance(partly_loaded.http_url, None, None, Acceptance.model_validate({"cases": [SIX_TIMES]}))
    assert (result.passed, result.message) == (True, "1 acceptance case(s) passed")
    assert [c.message for c in result.cases] == ["case six-times (model 'pipeline'): passed"]


# ---------------------------------------------------------------- every model ("*")


async def test_every_model_is_gated_and_a_failed_one_named(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo")
    write_model(repo, "broken", fail_load=True)
    with TritonServer(repo, ["*"]) as server:
        assert server.wait_live(STARTUP_TIMEOUT_S), server.recent_output()
        readiness = await check_readiness(server.http_url, ["*"], None)
        assert (readiness.ready, readiness.reason) == (False, Reason.MODEL_LOAD_FAILED)
        assert (
            readiness.message.startswith("model 'broken' failed to load") and LOAD_FAILURE_MESSAGE in readiness.message
        )
        assert sorted(await served_models(server.http_url) or []) == ["pipeline", "post", "pre"]


async def test_every_model_ready_and_each_one_in_the_metrics(tmp_path: Path) -> None:
    with TritonServer(write_repository(tmp_path / "repo"), ["*"]) as server:
        assert server.wait_ready(STARTUP_TIMEOUT_S), server.recent_output()
        readiness = await check_readiness(server.http_url, ["*"], None)
        assert (readiness.ready, readiness.message.split(":")[0]) == (True, "3 models are ready"), readiness.message
        cases = [SIX_TIMES, {**SIX_TIMES, "name": "again"}]
        assert (await run_acceptance(server.http_url, None, None, Acceptance.model_validate({"cases": cases}))).passed
        with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
            text = response.read().decode()
    # Triton counts each model of the chain: what direct analysis judges model by model.
    counters = parse_model_counters(text)
    assert {model: c.success for model, c in counters.items()} == {"pipeline": 2, "pre": 2, "post": 2}
    listed = parse_model_counters(text, ["post", "absent"])
    assert listed == {"post": counters["post"], "absent": PodCounters()}
