"""A revision Deployment's tritonserver command line, run for real (ports and repository made local).

The strongest test of the args builder: real tritonserver must accept every flag, serve
the model, export summary latencies when asked, and stay up (live, not ready) when the
model fails to load, which is what the container's probes and the readiness gate rely on.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.triton import LOAD_FAILURE_MESSAGE, TritonProcess, free_ports, localize_args, write_model
from tritonop.api.models import Acceptance, InferenceServiceSpec
from tritonop.children.deployment import build_deployment
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.triton import check_readiness, run_acceptance

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT_S = 60.0
MODEL = "doubler"


def triton_container(spec: dict[str, Any]) -> dict[str, Any]:
    deployment = build_deployment(
        IsvcRef(name="isvc", namespace="ml", uid="u1"),
        InferenceServiceSpec.model_validate(spec),
        "rev1",
        OperatorConfig(),
        replicas=1,
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def run_container(container: dict[str, Any], repo: Path) -> TritonProcess:
    http_port, grpc_port, metrics_port = free_ports(3)
    args = localize_args(
        [*container["command"], *container["args"]],
        model_repository=repo,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
    )
    return TritonProcess(args)


def probe_status(process: TritonProcess, probe: dict[str, Any]) -> int:
    try:
        with urllib.request.urlopen(process.http_url + probe["httpGet"]["path"], timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], TritonProcess]]:
    repo = tmp_path_factory.mktemp("repo")
    write_model(repo, MODEL, versions=(1, 2))
    container = triton_container(
        {
            "model": {"name": MODEL, "storageUri": "pvc://models/repo"},
            "triton": {"gpus": 0, "summaryLatencies": True, "args": ["--log-info=true"]},
        }
    )
    with run_container(container, repo) as process:
        assert process.wait_ready(STARTUP_TIMEOUT_S), process.recent_output()
        yield container, process


async def test_the_command_line_serves_the_model(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    container, process = serving
    assert container["command"] == ["tritonserver"]
    readiness = await check_readiness(process.http_url, MODEL, None)
    assert readiness.ready, readiness.message
    case = {
        "name": "doubles",
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2], "data": [1, 2]}],
        "outputs": [{"name": "OUTPUT0", "data": [2, 4]}],
    }
    result = await run_acceptance(process.http_url, MODEL, None, Acceptance.model_validate({"cases": [case]}))
    assert result.passed, result.message


async def test_summary_latencies_are_exported(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    _, process = serving
    case = {"name": "one", "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1], "data": [1]}]}
    assert (await run_acceptance(process.http_url, MODEL, None, Acceptance.model_validate({"cases": [case]}))).passed
    with urllib.request.urlopen(process.metrics_url, timeout=5) as response:
        metrics = response.read().decode()
    assert f'nv_inference_request_summary_us_count{{model="{MODEL}",version="2"}}' in metrics


def test_probes_pass_on_a_serving_pod(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    container, process = serving
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe_status(process, container[probe]) == 200, probe


async def test_a_model_failing_to_load_leaves_the_server_up(tmp_path: Path) -> None:
    write_model(tmp_path, MODEL, fail_load=True)
    container = triton_container({"model": {"name": MODEL, "storageUri": "pvc://models"}, "triton": {"gpus": 0}})
    with run_container(container, tmp_path) as process:
        assert process.wait_live(STARTUP_TIMEOUT_S), process.recent_output()
        readiness = await check_readiness(process.http_url, MODEL, None)
        assert readiness.reason == "ModelLoadFailed" and LOAD_FAILURE_MESSAGE in readiness.message
        # Alive, so the kubelet does not restart it; not ready, so it gets no traffic.
        assert probe_status(process, container["livenessProbe"]) == 200
        assert probe_status(process, container["readinessProbe"]) != 200
        assert process.running()
