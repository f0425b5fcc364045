"""The operator's Triton gates: is a revision serving, does it answer correctly, what is it.

Every gate talks to one Triton over HTTP with ``tritonclient.http.aio`` and never
raises on network or server errors: it returns a verdict with a stable reason and a
message that quotes Triton's own text.

Versions. tritonserver has no command-line way to load one version of a model: the
version served comes from the model's ``version_policy`` in the repository, which the
operator never writes. ``spec.model.version`` is therefore a requirement the gate checks
(``VersionNotLoaded`` until Triton serves it) and the version acceptance inferences and
model facts address; pin what is served in the model's config.pbtxt.

Several models. The readiness gate checks every model asked for (``*``: every model in the
repository index) and, through each ready model's config, every composing model of an
ensemble (at the version its step pins); the verdict names the model that is not ready.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from tritonclient.http import InferInput
from tritonclient.http.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from tritonop.api.models import ALL_MODELS, Acceptance, AcceptanceCase, ModelFacts
from tritonop.durations import parse_duration
from tritonop.triton.client import CONNECT_ERRORS, NETWORK_ERRORS, triton_client
from tritonop.triton.repository import (
    ensemble_steps,
    judge_index,
    loaded_models,
    model_label,
    not_ready_models,
    repository_models,
)
from tritonop.triton.results import AcceptanceResult, CaseResult, Readiness, Reason
from tritonop.triton.tensors import compare_output, input_array, shorten

# Loading a large model can take minutes; Triton answers the load call when done.


def _network_problem(url: str, error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer from Triton at {url} within {timeout_s:g}s"
    return shorten(f"cannot reach Triton at {url}: {str(error) or type(error).__name__}")


def _triton_text(error: InferenceServerException) -> str:
    return shorten(error.message() or str(error))


# ---------------------------------------------------------------- readiness


async def check_readiness(
    url: str, models: str | Sequence[str], version: str | None, *, timeout_s: float = 5.0, key: str | None = None
) -> Readiness:
    """Whether Triton at ``url`` serves ``models`` (one name, several, or ``("*",)``: every model
    in its repository; ``version`` pins a single model), and if not, why.

    Reads only: liveness, the repository index (to tell loading from failed, with Triton's
    reason; a restricted API, so ``key`` is sent), each model's readiness and config (an
    ensemble's composing models are checked too), then server readiness (with strict
    readiness a server is not ready while any of its models is unavailable).
    """
    wanted = (models,) if isinstance(models, str) else tuple(models)
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
            return await _readiness(client, url, wanted, version)
    except ValueError as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, str(error))
    except NETWORK_ERRORS as error:
        return Readiness(False, Reason.SERVER_UNREACHABLE, _network_problem(url, error, timeout_s))


async def _readiness(
    client: InferenceServerClient, url: str, models: tuple[str, ...], version: str | None
) -> Readiness:
    if not await client.is_server_live():
        return Readiness(False, Reason.SERVER_NOT_READY, f"Triton at {url} is not live")
    try:
        index = await client.get_model_repository_index()
    except InferenceServerException as error:
        return Readiness(
            False, Reason.SERVER_NOT_READY, f"cannot read the model repository index: {_triton_text(error)}"
        )
    every = models == (ALL_MODELS,)
    names = repository_models(index) if every else list(models)
    if not names:
        return Readiness(False, Reason.MODEL_LOAD_FAILED, f"the model repository of Triton at {url} has no models")
    # (model, version, the ensemble it is a step of); every model of the repository is in `names`
    # already, so only listed models' configs are read for composing models.
    queue: deque[tuple[str, str | None, str | None]] = deque(
        (name, version if len(names) == 1 else None, None) for name in names
    )
    seen: set[tuple[str, str | None]] = set()
    ready: list[str] = []
    problems: list[tuple[str, Readiness]] = []
    while queue:
        model, pinned, ensemble = queue.popleft()
        if (model, pinned) in seen:
            continue
        seen.add((model, pinned))
        label = model_label(model, pinned, ensemble)
        problem = judge_index(index, model, pinned, label=model_label(model, None, ensemble))
        if problem is None and not await client.is_model_ready(model, pinned or ""):
            problem = Readiness(False, Reason.MODEL_NOT_READY, f"{label} is not ready")
        if problem is None and not every:
            try:
                config = await client.get_model_config(model, pinned or "")
            except InferenceServerException as error:
                problem = Readiness(
                    False, Reason.SERVER_NOT_READY, f"cannot read the config of {label}: {_triton_text(error)}"
                )
            else:
                queue.extend((step, step_version, model) for step, step_version in ensemble_steps(config))
        if problem is not None:
            problems.append((model, problem))
        else:
            ready.append(label)
    if problems:
        return not_ready_models(index, problems, {model for model, _ in seen})
    subject = ready[0] + " is" if len(ready) == 1 else f"{len(ready)} models are"
    if not await client.is_server_ready():
        return Readiness(
            False,
            Reason.SERVER_NOT_READY,
            f"{subject} ready but Triton at {url} is not (under --strict-readiness: another model "
            "unavailable or a version still unloading; or the server is shutting down)",
        )
    if len(ready) == 1:
        return Readiness(True, Reason.READY, f"{subject} ready")
    return Readiness(True, Reason.READY, shorten(f"{subject} ready: " + ", ".join(ready)))


async def served_models(url: str, *, timeout_s: float = 5.0, key: str | None = None) -> list[str] | None:
    """The models Triton at ``url`` has loaded (a READY version), from its repository index;
    None when it cannot be asked. The index is a restricted API, so ``key`` is sent."""
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
            return loaded_models(await client.get_model_repository_index())
    except (ValueError, InferenceServerException, *NETWORK_ERRORS):
        return None


# ---------------------------------------------------------------- acceptance


async def run_acceptance(
    url: str, model: str | None, version: str | None, acceptance: Acceptance, *, key: str | None = None
) -> AcceptanceResult:
    """Send each acceptance case to Triton and compare the outputs it names.

    A case goes to the model it names, else to ``model`` (at ``version`` when pinned; None when
    several models are served, where every case names its own). All cases run (so status can
    list each), except that an unreachable server ends the run. The result's reason and
    message are the first failing case's.
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
    model: str | None,
    version: str | None,
    case: AcceptanceCase,
    timeout_s: float,
) -> CaseResult:
    title = f"case {case.name}" + (f" (model {case.model!r})" if case.model else "")

    def failed(reason: Reason, problem: str) -> CaseResult:
        return CaseResult(case.name, False, reason, shorten(f"{title}: {problem}"))

    target = case.model or model
    if target is None:
        return failed(Reason.ACCEPTANCE_INFERENCE_ERROR, "names no model, and several models are served")
    if target != model:
        version = None  # the pin is the one model's
    try:
        inputs = []
        for tensor in case.inputs:
            infer_input = InferInput(tensor.name, list(tensor.shape), tensor.datatype)
            infer_input.set_data_from_numpy(input_array(tensor))
            inputs.append(infer_input)
    except ValueError as error:
        return failed(Reason.ACCEPTANCE_INFERENCE_ERROR, f"cannot build the request: {error}")
    try:
        response = await client.infer(target, inputs, model_version=version or "")
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
    return CaseResult(case.name, True, Reason.ACCEPTANCE_PASSED, f"{title}: passed")


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
