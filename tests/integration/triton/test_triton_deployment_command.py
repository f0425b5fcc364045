"""A revision Deployment's tritonserver command line, run for real (ports and repository made local).

The strongest test of the args builder: real tritonserver must accept every flag, serve
the model, export summary latencies when asked, and stay up (live, not ready) when the
model fails to load, which is what the container's probes and the readiness gate rely on.
Its control API is closed: ``$(TRITONOP_API_KEY)`` in the args is expanded as the kubelet
does, from the key the operator derives, and only requests carrying it may load, unload
or read the repository; the operator's own calls carry it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tritonclient.grpc
from tritonclient.utils import InferenceServerException

from tests.support.triton import (
    LOAD_FAILURE_MESSAGE,
    TritonProcess,
    expand_env_references,
    flag_value,
    free_ports,
    localize_args,
    write_model,
)
from tritonop.api.models import Acceptance, InferenceServiceSpec
from tritonop.children.deployment import build_deployment
from tritonop.children.refs import IsvcRef
from tritonop.children.triton_key import GRPC_KEY_HEADER, KEY_ENV, KEY_HEADER, derive_key
from tritonop.config import OperatorConfig
from tritonop.triton import check_readiness, model_facts, run_acceptance

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT_S = 60.0
MODEL = "doubler"
REF = IsvcRef(name="isvc", namespace="ml", uid="u1")
# What the operator derives for REF and writes into the Secret the pod's env var comes from.
KEY = derive_key(b"operator-secret-of-this-test-0123456789", REF.uid)


def triton_container(spec: dict[str, Any]) -> dict[str, Any]:
    deployment = build_deployment(
        REF,
        InferenceServiceSpec.model_validate(spec),
        "rev1",
        OperatorConfig(),
        replicas=1,
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def run_container(container: dict[str, Any], repo: Path) -> TritonProcess:
    http_port, grpc_port, metrics_port = free_ports(3)
    # The kubelet: env from the Secret (secretKeyRef), then $(VAR) expanded in the args.
    (key_ref,) = [e for e in container["env"] if e["name"] == KEY_ENV]
    assert key_ref["valueFrom"]["secretKeyRef"] == {"name": "isvc-triton-key", "key": "key"}
    args = localize_args(
        expand_env_references([*container["command"], *container["args"]], {KEY_ENV: KEY}),
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
    readiness = await check_readiness(process.http_url, MODEL, None, key=KEY)
    assert readiness.ready, readiness.message
    case = {
        "name": "doubles",
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2], "data": [1, 2]}],
        "outputs": [{"name": "OUTPUT0", "data": [2, 4]}],
    }
    result = await run_acceptance(process.http_url, MODEL, None, Acceptance.model_validate({"cases": [case]}), key=KEY)
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
        readiness = await check_readiness(process.http_url, MODEL, None, key=KEY)
        assert readiness.reason == "ModelLoadFailed" and LOAD_FAILURE_MESSAGE in readiness.message
        # Alive, so the kubelet does not restart it; not ready, so it gets no traffic.
        assert probe_status(process, container["livenessProbe"]) == 200
        assert probe_status(process, container["readinessProbe"]) != 200
        assert process.running()


# ---------------------------------------------------------------- the control API, closed


def call(process: TritonProcess, method: str, path: str, key: str | None = None) -> tuple[int, str]:
    """(status, body) of one HTTP call, with the key header when given."""
    headers = {KEY_HEADER: key} if key is not None else {}
    request = urllib.request.Request(
        process.http_url + path, method=method, data=b"{}" if method == "POST" else None, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_rendered_args_hold_no_key(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    container, process = serving
    assert KEY not in json.dumps(container)
    assert KEY in " ".join(process.args)  # the kubelet's expansion reached the server


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v2/repository/models/{MODEL}/unload"),
        ("POST", f"/v2/repository/models/{MODEL}/load"),
        ("POST", "/v2/repository/index"),
        ("GET", f"/v2/models/{MODEL}/config"),
        ("GET", "/v2/logging"),
        ("GET", "/v2/trace/setting"),
        ("GET", "/v2/systemsharedmemory/status"),
    ],
)
def test_anonymous_control_calls_are_refused(serving: tuple[dict[str, Any], TritonProcess], method: str, path: str) -> None:
    _, process = serving
    for key in (None, "not-the-key", KEY.upper()):
        status, body = call(process, method, path, key)
        assert (status, json.loads(body)) == (403, {"error": f"This API is restricted, expecting header '{KEY_HEADER}'"})
    assert KEY not in process.recent_output(500)


def test_inference_health_and_metadata_stay_open(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    _, process = serving
    assert call(process, "GET", "/v2/health/ready")[0] == 200
    assert call(process, "GET", f"/v2/models/{MODEL}")[0] == 200
    assert call(process, "GET", f"/v2/models/{MODEL}/stats")[0] == 200
    request = urllib.request.Request(
        process.http_url + f"/v2/models/{MODEL}/infer",
        data=json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1], "data": [3]}]}).encode(),
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["outputs"][0]["data"] == [6.0]


async def test_with_the_key_the_control_api_answers(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    _, process = serving
    status, body = call(process, "POST", "/v2/repository/index", KEY)
    assert status == 200 and {"name": MODEL, "version": "2", "state": "READY"} in json.loads(body)
    assert call(process, "GET", f"/v2/models/{MODEL}/config", KEY)[0] == 200
    assert call(process, "POST", f"/v2/repository/models/{MODEL}/unload", KEY) == (200, "")
    unloaded = await check_readiness(process.http_url, MODEL, None, key=KEY)
    assert not unloaded.ready
    assert call(process, "POST", f"/v2/repository/models/{MODEL}/load", KEY) == (200, "")
    assert process.wait_ready(STARTUP_TIMEOUT_S), process.recent_output()


async def test_the_operators_calls_carry_the_key(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    _, process = serving
    # Without it the gate cannot read the repository index: the key is what opens it.
    anonymous = await check_readiness(process.http_url, MODEL, None)
    assert not anonymous.ready and "restricted" in anonymous.message
    readiness = await check_readiness(process.http_url, MODEL, None, key=KEY)
    assert readiness.ready, readiness.message
    facts = await model_facts(process.http_url, MODEL, None, key=KEY)
    assert facts is not None and facts.name == MODEL and facts.versions == ["2"]
    assert [t["name"] for t in facts.inputs] == ["INPUT0"]
    case = {
        "name": "doubles",
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1], "data": [4]}],
        "outputs": [{"name": "OUTPUT0", "data": [8]}],
    }
    result = await run_acceptance(process.http_url, MODEL, None, Acceptance.model_validate({"cases": [case]}), key=KEY)
    assert result.passed, result.message


def test_grpc_control_calls_need_the_key_too(serving: tuple[dict[str, Any], TritonProcess]) -> None:
    _, process = serving
    client = tritonclient.grpc.InferenceServerClient(f"127.0.0.1:{flag_value(process.args, '--grpc-port')}")
    try:
        for attempt in (lambda: client.unload_model(MODEL), lambda: client.load_model(MODEL),
                        lambda: client.get_model_repository_index()):
            with pytest.raises(InferenceServerException) as refused:
                attempt()
            assert refused.value.status() == "StatusCode.UNAVAILABLE"
            assert f"expecting header '{GRPC_KEY_HEADER}'" in refused.value.message()
        index = client.get_model_repository_index(headers={GRPC_KEY_HEADER: KEY}, as_json=True)
        assert {m["name"] for m in index["models"]} == {MODEL}
        assert client.get_model_metadata(MODEL).name == MODEL  # metadata is open
    finally:
        client.close()
