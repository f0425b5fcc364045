"""The operator's Triton gates: is a revision serving, does it answer correctly, what is it.

Every gate talks to one Triton over HTTP with ``tritonclient.http.aio`` and never
raises on network or server errors: it returns a verdict with a stable reason and a
message that quotes Triton's own text.

Versions. tritonserver has no command-line way to load one version of a model: the
version served comes from the model's ``version_policy`` in the repository, which the
operator never writes. ``spec.model.version`` is therefore a requirement the gate checks
(``VersionNotLoaded`` until Triton serves it) and the version acceptance inferences and
model facts address; pin what is served in the model's config.pbtxt.
"""

from __future__ import annotations

from typing import Any

from tritonclient.http import InferInput
from tritonclient.http.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from tritonop.api.models import Acceptance, AcceptanceCase, ModelFacts
from tritonop.durations import parse_duration
from tritonop.triton.client import CONNECT_ERRORS, NETWORK_ERRORS, triton_client
from tritonop.triton.repository import judge_index
from tritonop.triton.results import AcceptanceResult, CaseResult, Readiness, Reason
from tritonop.triton.tensors import compare_output, input_array, shorten

# Loading a large model can take minutes; Triton answers the load call when done.


def _network_problem(url: str, error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer from Triton at {url} within {timeout_s:g}s"
    return shorten(f"cannot reach Triton at {url}: {str(error) or type(error).__name__}")


def _triton_text(error: InferenceServerException) -> str:
    return shorten(error.message() or str(error))


def _model_label(model: str, version: str | None) -> str:
    return f"model {model!r}" + (f" version {version}" if version else "")


# ---------------------------------------------------------------- readiness


async def check_readiness(
    url: str, model: str, version: str | None, *, timeout_s: float = 5.0, key: str | None = None
) -> Readiness:
    """Whether Triton at ``url`` serves ``model`` (at ``version`` when pinned), and if not, why.

    Reads only: liveness, the repository index (to tell loading from failed, with
    Triton's reason; a restricted API, so ``key`` is sent), model readiness, then server
    readiness (with strict readiness a server is not ready while any of its models is
    unavailable).
    """
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
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


# ---------------------------------------------------------------- acceptance


async def run_acceptance(
    url: str, model: str, version: str | None, acceptance: Acceptance, *, key: str | None = None
) -> AcceptanceResult:
    """Send each acceptance case to Triton and compare the outputs it names.

    All cases run (so status can list each), except that an unreachable server ends the
    run. The result's reason and message are the first failing case's.
    """
    timeout_s = parse_duration(acceptance.timeout)
    results: list[CaseResult] = []
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
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


async def model_facts(
    url: str, model: str, version: str | None, *, timeout_s: float = 5.0, key: str | None = None
) -> ModelFacts | None:
    """What Triton says about the model: platform (or backend), versions, inputs, outputs.

    None when Triton cannot be reached or does not serve the model; facts are
    informational (status.model), so there is no reason to report. The model config is a
    restricted API, so ``key`` is sent.
    """
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
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
