"""Pure reading of Triton's model repository index: loading, failed, or loaded.

``POST /v2/repository/index`` lists every model in the repository. A model that is
known but not loaded has only a ``name``; each loaded or attempted version has an entry
with ``version``, ``state`` (READY, LOADING, UNLOADING, UNAVAILABLE) and, when
UNAVAILABLE, a ``reason``: "unloaded" after an unload, otherwise the load error,
including the model's own exception text. That reason is what tells "still loading"
from "failed to load", which the readiness endpoints alone cannot.

An ensemble's config (``GET /v2/models/NAME/config``) has ``platform: ensemble`` and names its
composing models in ``ensemble_scheduling.step[].model_name``; Triton loads them with it. An
ensemble whose composing model failed has no version in the index and no reason of its own:
the failed composing model's entry holds the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tritonop.triton.results import Readiness, Reason
from tritonop.triton.tensors import shorten

UNLOADED_REASON = "unloaded"
ENSEMBLE_PLATFORM = "ensemble"
# A not-ready verdict's reasons, most telling first: the one shown when several models are not ready.
_REASON_ORDER = (Reason.MODEL_LOAD_FAILED, Reason.VERSION_NOT_LOADED, Reason.MODEL_NOT_READY)


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


def repository_models(index: Sequence[dict[str, Any]]) -> list[str]:
    """Every model in the repository, as the index lists them (each once)."""
    return list(dict.fromkeys(str(entry.get("name")) for entry in index if entry.get("name")))


def loaded_models(index: Sequence[dict[str, Any]]) -> list[str]:
    """The models with a READY version, as the index lists them."""
    return list(dict.fromkeys(str(entry["name"]) for entry in index if entry.get("state") == "READY"))


def ensemble_steps(config: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """An ensemble's composing models as (name, pinned version or None for Triton's latest), in step
    order and each once; [] for a model that is not an ensemble."""
    if config.get("platform") != ENSEMBLE_PLATFORM:
        return []
    steps = (config.get("ensemble_scheduling") or {}).get("step") or []
    composing: dict[tuple[str, str | None], None] = {}
    for step in steps:
        name = step.get("model_name")
        if not name:
            continue
        version = int(step.get("model_version", -1))
        composing[(str(name), str(version) if version >= 0 else None)] = None
    return list(composing)


def model_label(model: str, version: str | None = None, ensemble: str | None = None) -> str:
    """How messages name a model: model 'm' [version v] [(a step of ensemble 'e')]."""
    label = f"model {model!r}" + (f" version {version}" if version else "")
    return label + (f" (a step of ensemble {ensemble!r})" if ensemble else "")


def judge_index(
    index: Sequence[dict[str, Any]], model: str, version: str | None, *, label: str | None = None
) -> Readiness | None:
    """A not-ready verdict from the index, or None when the wanted version is READY there.

    ``label`` names the model in messages (default: model 'NAME'). None is not the final
    word: the caller still asks the readiness endpoints.
    """
    label = label or model_label(model)
    states = version_states(index, model)
    if states is None:
        known = ", ".join(sorted({str(entry.get("name")) for entry in index})) or "none"
        return _not(Reason.MODEL_LOAD_FAILED, f"{label} is not in the model repository (models there: {known})")
    ready = [s.version for s in states if s.state == "READY"]
    loading = [s.version for s in states if s.state == "LOADING"]
    failed = [s for s in states if s.failed]
    if version is not None:
        return _judge_pinned(label, version, states, ready, loading, failed)
    if ready:
        return None
    if loading:
        return _not(Reason.MODEL_NOT_READY, f"{label} is loading (version {', '.join(loading)})")
    if failed:
        return _not(Reason.MODEL_LOAD_FAILED, f"{label} failed to load: {_failures(failed)}")
    return _not(Reason.MODEL_NOT_READY, f"{label} is not loaded{_states_note(states)}")


def _judge_pinned(
    label: str,
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
        return _not(Reason.MODEL_NOT_READY, f"{label} version {version} is loading")
    if pinned is not None and pinned.failed:
        return _not(Reason.MODEL_LOAD_FAILED, f"{label} failed to load: {_failures([pinned])}")
    if loading:
        return _not(
            Reason.MODEL_NOT_READY,
            f"{label} is loading (version {', '.join(loading)}); version {version} is not loaded yet",
        )
    if failed and not ready:
        return _not(Reason.MODEL_LOAD_FAILED, f"{label} failed to load: {_failures(failed)}")
    loaded = ", ".join(ready) or "none"
    return _not(
        Reason.VERSION_NOT_LOADED,
        f"{label} version {version} is not loaded (loaded versions: {loaded})",
    )


def not_ready_models(
    index: Sequence[dict[str, Any]], problems: Sequence[tuple[str, Readiness]], checked: Iterable[str]
) -> Readiness:
    """One verdict for several models that are not ready, as (model, verdict) in check order.

    The most telling verdict leads (a load failure, then a missing version, then not ready yet)
    and the other models are named after it. A model that is merely "not loaded" is often an
    ensemble whose composing model failed (Triton then records the reason on that model only):
    models that failed to load outside ``checked`` are named too, and the reason becomes
    ModelLoadFailed.
    """
    ranked = sorted(problems, key=lambda problem: _rank(problem[1].reason))
    _, first = ranked[0]
    reason, message = first.reason, first.message
    others = [model for model, _ in ranked[1:]]
    if others:
        message += "; also not ready: " + ", ".join(repr(m) for m in others)
    if reason != Reason.MODEL_LOAD_FAILED:
        checked = set(checked)
        failed = []
        for model in repository_models(index):
            states = [] if model in checked else version_states(index, model) or []
            failures = [s for s in states if s.failed]
            if failures:
                failed.append(f"{model_label(model)} failed to load: {_failures(failures)}")
        if failed:
            reason, message = Reason.MODEL_LOAD_FAILED, f"{message}; " + "; ".join(failed)
    return _not(reason, message)


def _rank(reason: str) -> int:
    return _REASON_ORDER.index(Reason(reason)) if reason in _REASON_ORDER else len(_REASON_ORDER)


def _not(reason: str, message: str) -> Readiness:
    return Readiness(ready=False, reason=reason, message=shorten(message))


def _failures(failed: list[VersionState]) -> str:
    return "; ".join(f"version {s.version}: {s.reason}" for s in failed)


def _states_note(states: list[VersionState]) -> str:
    if not states:
        return ""
    return " (" + ", ".join(f"version {s.version} {s.state}" for s in states) + ")"
