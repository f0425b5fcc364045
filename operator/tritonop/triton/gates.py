"""The operator's Triton gates: is a revision serving, does it answer correctly, what is it.

Every gate talks to one Triton over HTTP with ``tritonclient.http.aio`` and never
raises on network or server errors: it returns a verdict with a stable reason and a
message that quotes Triton's own text.

Version pinning. tritonserver has no command-line way to load one version of a model
(``--load-model`` takes a name; the version comes from the model's ``version_policy``
in the repository, which the operator never writes). In explicit model-control mode,
``pin_version`` pins after start: it reads the loaded model's full config, replaces
only ``version_policy`` with ``{"specific": {"versions": [N]}}`` and reloads the model
with that config (the load API replaces the config wholesale, so a partial config would
drop inputs and outputs). Triton loads the pinned version before unloading the others,
so the model keeps serving during the switch (a strict server reports not ready for the
seconds the old versions take to unload; ``pin_version`` waits that out), and a pin to
a version the repository lacks fails with Triton's message while the old version keeps
serving (checked against tritonserver 2.51). A pin lives in one server process: it
must reach each pod (a call through a Service reaches one) and be repeated after a pod
restarts; ``check_readiness`` with the pinned version reports ``VersionNotLoaded``
wherever it is missing. In poll and none modes Triton refuses the load API, so pinning
is explicit-mode only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tritonclient.http import InferInput
from tritonclient.http.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from tritonop.api.models import Acceptance, AcceptanceCase, ModelFacts, parse_duration
from tritonop.triton.client import CONNECT_ERRORS, NETWORK_ERRORS, triton_client
from tritonop.triton.repository import judge_index, unloading_versions
from tritonop.triton.results import AcceptanceResult, CaseResult, Readiness, Reason
from tritonop.triton.tensors import compare_output, input_array, shorten

# Loading a large model can take minutes; Triton answers the load call when done.
PIN_TIMEOUT_S = 300.0
UNLOAD_WAIT_S = 30.0
UNLOAD_POLL_S = 0.25


def _network_problem(url: str, error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer from Triton at {url} within {timeout_s:g}s"
    return shorten(f"cannot reach Triton at {url}: {str(error) or type(error).__name__}")


def _triton_text(error: InferenceServerException) -> str:
    return shorten(error.message() or str(error))


def _model_label(model: str, version: str | None) -> str:
    return f"model {model!r}" + (f" version {version}" if version else "")


# ---------------------------------------------------------------- readiness


async def check_readiness(url: str, model: str, version: str | None, *, timeout_s: float = 5.0) -> Readiness:
    """Whether Triton at ``url`` serves ``model`` (at ``version`` when pinned), and if not, why.

    Reads only: liveness, the repository index (to tell loading from failed, with
    Triton's reason), model readiness, then server readiness (with strict readiness a
    server is not ready while any of its models is unavailable).
    """
    try:
        async with triton_client(url, timeout_s=timeout_s) as client:
            return await _readiness(client, url, model, version)
    except ValueError as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, str(error))
    except NETWORK_ERRORS as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, _network_problem(url, error, timeout_s))


async def _readiness(client: InferenceServerClient, url: str, model: str, version: str | None) -> Readiness:
    if not await client.is_server_live():
        return Readiness(False, Reason.SERVER_NOT_READY, f"Triton at {url} is not live")
    try:
        index = await client.get_model_repository_index()
    except InferenceServerException as error:
        return Readiness(
            False, Reason.SERVER_NOT_READY, f"cannot read the model repository index: {_triton_text(error)}"
        )
    verdict = judge_index(index, model, version)
    if verdict is not None:
        return verdict
    label = _model_label(model, version)
    if not await client.is_model_ready(model, version or ""):
        return Readiness(False, Reason.MODEL_NOT_READY, f"{label} is not ready")
    if not await client.is_server_ready():
        return Readiness(
            False,
            Reason.SERVER_NOT_READY,
            f"{label} is ready but Triton at {url} is not (under --strict-readiness: another model "
            "unavailable or a version still unloading; or the server is shutting down)",
        )
    return Readiness(True, Reason.READY, f"{label} is ready")


async def pin_version(url: str, model: str, version: str, *, timeout_s: float = PIN_TIMEOUT_S) -> Readiness:
    """Make Triton at ``url`` serve only ``version`` of ``model`` (explicit mode; see module doc).

    Returns the readiness afterwards. Acts only when the model is loaded and the
    version is missing or served alongside others; any other not-ready verdict (load
    failure, unreachable) is returned unchanged, as pinning cannot fix it. A refused
    load (no such version, not explicit mode) is ``VersionNotLoaded`` with Triton's
    message; a load still running when the timeout passes reads as ``ModelNotReady``
    on the next check.
    """
    if not version.isdigit():
        return Readiness(False, Reason.VERSION_NOT_LOADED, f"version {version!r} is not a version number")
    try:
        async with triton_client(url, timeout_s=timeout_s) as client:
            return await _pin(client, url, model, version)
    except ValueError as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, str(error))
    except NETWORK_ERRORS as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, _network_problem(url, error, timeout_s))


async def _pin(client: InferenceServerClient, url: str, model: str, version: str) -> Readiness:
    current = await _readiness(client, url, model, version)
    if current.reason not in (Reason.READY, Reason.VERSION_NOT_LOADED):
        return current
    try:
        if current.ready:
            served = [str(v) for v in (await client.get_model_metadata(model)).get("versions", [])]
            if served == [version]:
                return current
        config = await client.get_model_config(model)
    except InferenceServerException as error:
        return Readiness(False, Reason.MODEL_NOT_READY, f"cannot read model {model!r}: {_triton_text(error)}")
    # The load API replaces the whole config: change only the version policy.
    config["version_policy"] = {"specific": {"versions": [int(version)]}}
    try:
        await client.load_model(model, config=json.dumps(config))
    except InferenceServerException as error:
        return Readiness(
            False,
            Reason.VERSION_NOT_LOADED,
            shorten(f"Triton refused to pin model {model!r} to version {version}: {error.message()}"),
        )
    await _await_unloads(client, model)
    return await _readiness(client, url, model, version)


async def _await_unloads(client: InferenceServerClient, model: str) -> None:
    """Wait (bounded) while Triton unloads the versions a pin dropped.

    The load call returns once the pinned version serves; the other versions unload
    afterwards, and until they are gone a strict server reports not ready.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UNLOAD_WAIT_S
    while loop.time() < deadline:
        try:
            index = await client.get_model_repository_index()
        except InferenceServerException:
            return  # the readiness check that follows reports what is wrong
        if not unloading_versions(index, model):
            return
        await asyncio.sleep(UNLOAD_POLL_S)


# ---------------------------------------------------------------- acceptance


async def run_acceptance(url: str, model: str, version: str | None, acceptance: Acceptance) -> AcceptanceResult:
    """Send each acceptance case to Triton and compare the outputs it names.

    All cases run (so status can list each), except that an unreachable server ends the
    run. The result's reason and message are the first failing case's.
    """
    timeout_s = parse_duration(acceptance.timeout)
    results: list[CaseResult] = []
    try:
        async with triton_client(url, timeout_s=timeout_s) as client:
            for case in acceptance.cases:
                result = await _run_case(client, url, model, version, case, timeout_s)
                results.append(result)
                if result.reason == Reason.SERVER_UNREACHABLE:
                    break
    except ValueError as error:
        return AcceptanceResult(False, Reason.SERVER_UNREACHABLE, str(error), results)
    failures = [result for result in results if not result.passed]
    if not failures:
        return AcceptanceResult(True, Reason.ACCEPTANCE_PASSED, f"{len(results)} acceptance case(s) passed", results)
    first = failures[0]
    note = f" ({len(failures)} of {len(acceptance.cases)} cases failed)" if len(failures) > 1 else ""
    return AcceptanceResult(False, first.reason, first.message + note, results)


async def _run_case(
    client: InferenceServerClient,
    url: str,
    model: str,
    version: str | None,
    case: AcceptanceCase,
    timeout_s: float,
) -> CaseResult:
    def failed(reason: Reason, problem: str) -> CaseResult:
        return CaseResult(case.name, False, reason, shorten(f"case {case.name}: {problem}"))

    try:
        inputs = []
        for tensor in case.inputs:
            infer_input = InferInput(tensor.name, list(tensor.shape), tensor.datatype)
            infer_input.set_data_from_numpy(input_array(tensor))
            inputs.append(infer_input)
    except ValueError as error:
        return failed(Reason.ACCEPTANCE_INFERENCE_ERROR, f"cannot build the request: {error}")
    try:
        response = await client.infer(model, inputs, model_version=version or "")
    except InferenceServerException as error:
        return failed(Reason.ACCEPTANCE_INFERENCE_ERROR, f"inference failed: {_triton_text(error)}")
    except CONNECT_ERRORS as error:
        return failed(Reason.SERVER_UNREACHABLE, _network_problem(url, error, timeout_s))
    except TimeoutError:
        return failed(Reason.ACCEPTANCE_INFERENCE_ERROR, f"no answer within {timeout_s:g}s")
    except NETWORK_ERRORS as error:
        return failed(Reason.SERVER_UNREACHABLE, _network_problem(url, error, timeout_s))
    for expected in case.outputs:
        problem = compare_output(expected, response.as_numpy(expected.name))
        if problem is not None:
            if response.get_output(expected.name) is None:
                returned = ", ".join(o["name"] for o in response.get_response().get("outputs", []))
                problem += f" (outputs returned: {returned or 'none'})"
            return failed(Reason.ACCEPTANCE_OUTPUT_MISMATCH, f"output {expected.name}: {problem}")
    return CaseResult(case.name, True, Reason.ACCEPTANCE_PASSED, f"case {case.name}: passed")


# ---------------------------------------------------------------- facts


async def model_facts(url: str, model: str, version: str | None, *, timeout_s: float = 5.0) -> ModelFacts | None:
    """What Triton says about the model: platform (or backend), versions, inputs, outputs.

    None when Triton cannot be reached or does not serve the model; facts are
    informational (status.model), so there is no reason to report.
    """
    try:
        async with triton_client(url, timeout_s=timeout_s) as client:
            metadata = await client.get_model_metadata(model, version or "")
            platform = metadata.get("platform") or (await client.get_model_config(model)).get("backend")
    except (ValueError, InferenceServerException, *NETWORK_ERRORS):
        return None
    return ModelFacts(
        name=metadata.get("name", model),
        platform=platform or None,
        versions=[str(v) for v in metadata.get("versions", [])],
        inputs=[_tensor_facts(t) for t in metadata.get("inputs", [])],
        outputs=[_tensor_facts(t) for t in metadata.get("outputs", [])],
    )


def _tensor_facts(tensor: dict[str, Any]) -> dict[str, Any]:
    return {"name": tensor.get("name"), "datatype": tensor.get("datatype"), "shape": list(tensor.get("shape", []))}
