"""The operator's Triton gates against real tritonserver processes (CPU, Python backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.triton import LOAD_FAILURE_MESSAGE, TritonServer, free_port, write_model
from tritonop.api.models import Acceptance
from tritonop.triton import Reason, check_readiness, model_facts, run_acceptance

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Every loaded model loads; "idle" sits in the repository without being loaded."""
    repo = tmp_path_factory.mktemp("healthy-repo")
    write_model(repo, "doubler", versions=(1, 2))
    write_model(repo, "erroring", failure_rate=1.0)
    write_model(repo, "pinnable", versions=(1, 2), scale=3.0)
    write_model(repo, "idle")
    with TritonServer(repo, ["doubler", "erroring", "pinnable"]) as server:
        assert server.wait_ready(STARTUP_TIMEOUT_S), server.recent_output()
        yield server


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Strict readiness with one model that fails to load: live, never ready."""
    repo = tmp_path_factory.mktemp("failing-repo")
    write_model(repo, "doubler")
    write_model(repo, "broken", fail_load=True)
    with TritonServer(repo, ["doubler", "broken"]) as server:
        assert server.wait_live(STARTUP_TIMEOUT_S), server.recent_output()
        yield server


def acceptance(*cases: dict) -> Acceptance:
    return Acceptance.model_validate({"cases": list(cases), "timeout": "10s"})


def doubling_case(name: str, expected: list, *, tolerance: float = 0.0, output: str = "OUTPUT0") -> dict:
    return {
        "name": name,
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [3], "data": [1.0, 2.5, -3.0]}],
        "outputs": [{"name": output, "data": expected, "tolerance": tolerance}],
    }


# ---------------------------------------------------------------- readiness


async def test_loaded_model_opens_the_gate(healthy: TritonServer) -> None:
    readiness = await check_readiness(healthy.http_url, "doubler", None)
    assert (readiness.ready, readiness.reason) == (True, Reason.READY), readiness.message
    assert "'doubler'" in readiness.message


async def test_pinned_version_that_is_loaded_is_ready(healthy: TritonServer) -> None:
    readiness = await check_readiness(healthy.http_url, "doubler", "2")
    assert (readiness.ready, readiness.reason) == (True, "Ready"), readiness.message


async def test_pinned_version_not_loaded(healthy: TritonServer) -> None:
    # Triton's default version policy loads only the latest version (2).
    readiness = await check_readiness(healthy.http_url, "doubler", "1")
    assert (readiness.ready, readiness.reason) == (False, "VersionNotLoaded")
    assert "version 1" in readiness.message and "loaded versions: 2" in readiness.message


async def test_model_that_failed_to_load_reports_tritons_reason(failing: TritonServer) -> None:
    readiness = await check_readiness(failing.http_url, "broken", None)
    assert (readiness.ready, readiness.reason) == (False, "ModelLoadFailed")
    assert LOAD_FAILURE_MESSAGE in readiness.message
    assert failing.running(), "--exit-on-error=false must keep the server up"


async def test_ready_model_on_a_strict_server_with_a_failed_model(failing: TritonServer) -> None:
    readiness = await check_readiness(failing.http_url, "doubler", None)
    assert (readiness.ready, readiness.reason) == (False, "ServerNotReady")


async def test_model_in_repository_but_not_loaded(healthy: TritonServer) -> None:
    readiness = await check_readiness(healthy.http_url, "idle", None)
    assert (readiness.ready, readiness.reason) == (False, "ModelNotReady")
    assert "not loaded" in readiness.message


async def test_model_missing_from_repository(healthy: TritonServer) -> None:
    readiness = await check_readiness(healthy.http_url, "nonexistent", None)
    assert (readiness.ready, readiness.reason) == (False, "ModelLoadFailed")
    assert "not in the model repository" in readiness.message and "doubler" in readiness.message


async def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    readiness = await check_readiness(url, "doubler", None, timeout_s=2.0)
    assert (readiness.ready, readiness.reason) == (False, "ServerUnreachable")
    assert url in readiness.message
    result = await run_acceptance(url, "doubler", None, acceptance(doubling_case("any", [2.0, 5.0, -6.0])))
    assert (result.passed, result.reason) == (False, "ServerUnreachable")
    assert await model_facts(url, "doubler", None, timeout_s=2.0) is None


async def test_url_with_unsupported_scheme_is_reported_not_raised() -> None:
    readiness = await check_readiness("grpc://127.0.0.1:8001", "doubler", None)
    assert (readiness.ready, readiness.reason) == (False, "ServerUnreachable")
    assert "http://" in readiness.message


# ---------------------------------------------------------------- acceptance


async def test_acceptance_with_matching_outputs_passes(healthy: TritonServer) -> None:
    result = await run_acceptance(
        healthy.http_url,
        "doubler",
        None,
        acceptance(
            doubling_case("exact", [2.0, 5.0, -6.0]),
            doubling_case("within-tolerance", [2.01, 4.99, -6.0], tolerance=0.02),
            {"name": "no-expectations", "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1], "data": [0]}]},
        ),
    )
    assert (result.passed, result.reason) == (True, "AcceptancePassed"), result.message
    assert [(case.name, case.passed) for case in result.cases] == [
        ("exact", True),
        ("within-tolerance", True),
        ("no-expectations", True),
    ]


async def test_acceptance_with_wrong_expected_outputs(healthy: TritonServer) -> None:
    result = await run_acceptance(
        healthy.http_url,
        "doubler",
        None,
        acceptance(doubling_case("good", [2.0, 5.0, -6.0]), doubling_case("identity", [1.0, 2.5, -3.0])),
    )
    assert (result.passed, result.reason) == (False, "AcceptanceOutputMismatch")
    assert "case identity" in result.message and "OUTPUT0" in result.message
    assert "expected [1.0, 2.5, -3.0]" in result.message and "got [2.0, 5.0, -6.0]" in result.message
    assert [(case.name, case.passed) for case in result.cases] == [("good", True), ("identity", False)]


async def test_acceptance_names_an_output_the_model_lacks(healthy: TritonServer) -> None:
    result = await run_acceptance(
        healthy.http_url, "doubler", None, acceptance(doubling_case("typo", [2.0, 5.0, -6.0], output="OUTPUT9"))
    )
    assert result.reason == "AcceptanceOutputMismatch"
    assert "OUTPUT9" in result.message and "outputs returned: OUTPUT0" in result.message


async def test_acceptance_against_an_erroring_model(healthy: TritonServer) -> None:
    result = await run_acceptance(
        healthy.http_url, "erroring", None, acceptance(doubling_case("any", [2.0, 5.0, -6.0]))
    )
    assert (result.passed, result.reason) == (False, "AcceptanceInferenceError")
    assert "case any" in result.message and "injected failure" in result.message


async def test_acceptance_with_an_input_the_model_lacks(healthy: TritonServer) -> None:
    case = {"name": "wrong-input", "inputs": [{"name": "IMAGE", "datatype": "FP32", "shape": [1], "data": [1]}]}
    result = await run_acceptance(healthy.http_url, "doubler", None, acceptance(case))
    assert result.reason == "AcceptanceInferenceError"
    assert "IMAGE" in result.message  # Triton's own complaint names the input


# ---------------------------------------------------------------- facts


async def test_model_facts(healthy: TritonServer) -> None:
    facts = await model_facts(healthy.http_url, "doubler", None)
    assert facts is not None
    assert (facts.name, facts.platform, facts.versions) == ("doubler", "python", ["2"])
    assert facts.inputs == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1]}]
    assert facts.outputs == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1]}]


async def test_model_facts_of_unknown_model(healthy: TritonServer) -> None:
    assert await model_facts(healthy.http_url, "idle", None) is None
