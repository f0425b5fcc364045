"""Pure reading of Triton's model repository index: loading, failed, or loaded.

``POST /v2/repository/index`` lists every model in the repository. A model that is
known but not loaded has only a ``name``; each loaded or attempted version has an entry
with ``version``, ``state`` (READY, LOADING, UNLOADING, UNAVAILABLE) and, when
UNAVAILABLE, a ``reason``: "unloaded" after an unload, otherwise the load error,
including the model's own exception text. That reason is what tells "still loading"
from "failed to load", which the readiness endpoints alone cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tritonop.triton.results import Readiness, Reason
from tritonop.triton.tensors import shorten

UNLOADED_REASON = "unloaded"


@dataclass(frozen=True)
class VersionState:
    version: str
    state: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.state == "UNAVAILABLE" and self.reason not in ("", UNLOADED_REASON)


def version_states(index: Sequence[dict[str, Any]], model: str) -> list[VersionState] | None:
    """The versions of ``model`` in the index; None when the repository lacks the model."""
    entries = [entry for entry in index if entry.get("name") == model]
    if not entries:
        return None
    return [
        VersionState(str(entry["version"]), str(entry.get("state", "")), str(entry.get("reason", "")))
        for entry in entries
        if "version" in entry
    ]


def judge_index(index: Sequence[dict[str, Any]], model: str, version: str | None) -> Readiness | None:
    """A not-ready verdict from the index, or None when the wanted version is READY there.

    None is not the final word: the caller still asks the readiness endpoints.
    """
    states = version_states(index, model)
    if states is None:
        known = ", ".join(sorted({str(entry.get("name")) for entry in index})) or "none"
        return _not(Reason.MODEL_LOAD_FAILED, f"model {model!r} is not in the model repository (models there: {known})")
    ready = [s.version for s in states if s.state == "READY"]
    loading = [s.version for s in states if s.state == "LOADING"]
    failed = [s for s in states if s.failed]
    if version is not None:
        return _judge_pinned(model, version, states, ready, loading, failed)
    if ready:
        return None
    if loading:
        return _not(Reason.MODEL_NOT_READY, f"model {model!r} is loading (version {', '.join(loading)})")
    if failed:
        return _not(Reason.MODEL_LOAD_FAILED, f"model {model!r} failed to load: {_failures(failed)}")
    return _not(Reason.MODEL_NOT_READY, f"model {model!r} is not loaded{_states_note(states)}")


def _judge_pinned(
    model: str,
    version: str,
    states: list[VersionState],
    ready: list[str],
    loading: list[str],
    failed: list[VersionState],
) -> Readiness | None:
    pinned = next((s for s in states if s.version == version), None)
    if pinned is not None and pinned.state == "READY":
        return None
    if pinned is not None and pinned.state == "LOADING":
        return _not(Reason.MODEL_NOT_READY, f"model {model!r} version {version} is loading")
    if pinned is not None and pinned.failed:
        return _not(Reason.MODEL_LOAD_FAILED, f"model {model!r} failed to load: {_failures([pinned])}")
    if loading:
        return _not(
            Reason.MODEL_NOT_READY,
            f"model {model!r} is loading (version {', '.join(loading)}); version {version} is not loaded yet",
        )
    if failed and not ready:
        return _not(Reason.MODEL_LOAD_FAILED, f"model {model!r} failed to load: {_failures(failed)}")
    loaded = ", ".join(ready) or "none"
    return _not(
        Reason.VERSION_NOT_LOADED,
        f"model {model!r} version {version} is not loaded (loaded versions: {loaded})",
    )


def _not(reason: Reason, message: str) -> Readiness:
    return Readiness(ready=False, reason=reason, message=shorten(message))


def _failures(failed: list[VersionState]) -> str:
    return "; ".join(f"version {s.version}: {s.reason}" for s in failed)


def _states_note(states: list[VersionState]) -> str:
    if not states:
        return ""
    return " (" + ", ".join(f"version {s.version} {s.state}" for s in states) + ")"
