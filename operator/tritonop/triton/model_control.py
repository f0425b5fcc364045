"""Which versions of a model a Triton server has ready, and switching them live.

Explicit model-control mode only. A model's ``version_policy`` decides which of its
versions Triton holds; the repository API reloads a model with an overriding config, and
Triton then keeps serving the versions in both the old and the new policy, loads the added
ones, and unloads the removed ones only once the load has finished (measured on
tritonserver 2.51: no failed request under load across any switch). A request that names
no version is served by the highest-numbered version ready.

``load_versions`` is the one write: the model's own config as Triton reports it, with the
policy ``specific`` set to the wanted versions. Both calls need the InferenceService's
control-API key (the model-repository category is restricted, docs/security.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tritonclient.utils import InferenceServerException

from tritonop.triton.client import NETWORK_ERRORS, triton_client
from tritonop.triton.repository import version_states

# A load waits for the model's initialize() in every added version: allow for big models.
LOAD_TIMEOUT_S = 600.0


class ModelControlError(Exception):
    """Triton refused or could not be reached; the message is safe for status and Events."""


async def ready_versions(url: str, model: str, *, key: str | None, timeout_s: float = 5.0) -> list[str]:
    """The versions of ``model`` READY at ``url``, numerically sorted; ModelControlError if unknown."""
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
            index = await client.get_model_repository_index()
    except InferenceServerException as err:
        raise ModelControlError(f"repository index refused: {err.message()}") from None
    except NETWORK_ERRORS as err:
        raise ModelControlError(f"Triton unreachable ({type(err).__name__})") from None
    states = version_states(index, model)
    if states is None:
        raise ModelControlError(f"model {model!r} is not in the model repository")
    return sorted((s.version for s in states if s.state == "READY"), key=int)


async def server_ready(url: str, *, key: str | None, timeout_s: float = 5.0) -> bool | None:
    """Triton's own readiness (``/v2/health/ready``: with strict readiness, False while any
    version loads or unloads); None when it does not answer."""
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
            return bool(await client.is_server_ready())
    except (InferenceServerException, *NETWORK_ERRORS):
        return None


async def load_versions(
    url: str, model: str, versions: Sequence[str], *, key: str | None, timeout_s: float = LOAD_TIMEOUT_S
) -> None:
    """Make ``versions`` the ones Triton holds for ``model``; returns once they are loaded.

    A version that fails to load raises ModelControlError with Triton's reason; the versions
    that were ready before stay ready (Triton keeps them until a load succeeds).
    """
    wanted = sorted({int(v) for v in versions})
    if not wanted:
        raise ValueError("load_versions needs at least one version")
    try:
        async with triton_client(url, timeout_s=timeout_s, key=key) as client:
            config = await client.get_model_config(model)
            config["version_policy"] = {"specific": {"versions": wanted}}
            await client.load_model(model, config=json.dumps(config))
    except InferenceServerException as err:
        raise ModelControlError(f"loading {model!r} versions {wanted} failed: {err.message()}") from None
    except NETWORK_ERRORS as err:
        raise ModelControlError(f"Triton unreachable while loading versions {wanted} ({type(err).__name__})") from None
