"""rollout.strategy InPlace: switching a model version inside the running pods. Pure.

The version switch is the canary machine (``plan``/``advance``) with versions where a
canary has revisions: ``stable`` is the version every pod serves, ``canary`` the candidate.
What differs is where a version runs, which this module decides per pod:

- waiting for its gate, the candidate is loaded next to the old version in one pod, the
  *canary pod* (Triton serves requests that name no version from the highest one ready, so
  that pod may serve it already; acceptance runs against it by version);
- in its one step it is the only version of the canary pod, whose share of the traffic is
  its share of the pods; the other pods keep the old version;
- promoted, every pod switches; rolled back or abandoned, every pod returns to the old one.

A pod moves from one set of versions to another through their union (``next_load``), so a
version it serves is unloaded only once the version replacing it is ready (I8).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from tritonop.api.models import InferenceServiceStatus, InPlaceStatus, Phase, PodVersions
from tritonop.rollout.decisions import Decision, Event
from tritonop.rollout.machine import WAITING_READINESS
from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.state import RolloutState, waiting_for_traffic

Versions = tuple[str, ...]


def version_state(in_place: InPlaceStatus) -> RolloutState:
    """The machine's state for the switch recorded in ``status.inPlace``."""
    status = InferenceServiceStatus(
        stable_revision=in_place.version,
        canary_revision=in_place.candidate,
        failed_revision=in_place.failed_version,
        phase=Phase.progressing if in_place.candidate else Phase.ready,
        canary=in_place.canary,
    )
    return RolloutState.from_status(status)


def in_place_status(
    state: RolloutState,
    policy: RolloutPolicy,
    now: datetime,
    *,
    revision: str,
    canary_pod: str | None,
    pods: Mapping[str, Versions],
) -> InPlaceStatus:
    """``status.inPlace`` for the machine's state, the canary pod, and what each pod has ready."""
    written = state.apply_to(InferenceServiceStatus(), policy, now)
    return InPlaceStatus(
        revision=revision,
        version=state.stable,
        candidate=state.canary,
        failed_version=state.failed,
        canary_pod=canary_pod if state.canary is not None else None,
        canary=written.canary,
        pods=[PodVersions(pod=pod, versions=list(versions)) for pod, versions in sorted(pods.items())],
    )


def step_policy(policy: RolloutPolicy, pods: int) -> RolloutPolicy:
    """One step, at the canary pod's share of the traffic (its share of the pods)."""
    share = 100 if pods <= 1 else max(1, min(99, math.floor(100 / pods)))
    return replace(policy, steps=(share,))


def choose_canary_pod(state: RolloutState, current: str | None, pods: Sequence[str]) -> tuple[RolloutState, str | None]:
    """The pod that serves the candidate first: kept while it runs, else the first by name.

    A canary pod that went away (rescheduled, scaled in) takes its judgement with it: the
    next one starts at the gate again (acceptance, then a fresh step); failed checks stay.
    """
    if state.canary is None or not pods:
        return state, None if state.canary is None else current
    if current in pods:
        return state, current
    chosen = sorted(pods)[0]
    if current is not None and not waiting_for_traffic(state):
        state = replace(state, step_started_at=None, weight=0, step=0, waiting_for=WAITING_READINESS)
    return state, chosen


def pod_targets(state: RolloutState, canary_pod: str | None, pods: Sequence[str]) -> dict[str, Versions]:
    """The versions each pod should have ready, from the stored state."""
    assert state.stable is not None
    targets: dict[str, Versions] = dict.fromkeys(pods, (state.stable,))
    if state.canary is not None and canary_pod in targets:
        gated = waiting_for_traffic(state)
        targets[canary_pod] = _sorted({state.stable, state.canary}) if gated else (state.canary,)
    return targets


def next_load(ready: Versions, target: Versions) -> Versions | None:
    """The version set to load next on a pod that has ``ready``; None when it has ``target``.

    Never drops a ready version before what replaces it is ready: first the union, then the
    target. A pod with nothing ready (just started, or its load failed) gets the target.
    """
    if set(ready) == set(target):
        return None
    if not ready or set(target) <= set(ready):
        return target
    return _sorted(set(ready) | set(target))


def recovered_version(pods: Mapping[str, Versions]) -> str | None:
    """The version to resume from when status holds none: what most pods serve (the highest
    version ready in each, as Triton serves it). None when no pod says."""
    served = Counter(max(versions, key=int) for versions in pods.values() if versions)
    if not served:
        return None
    return max(served, key=lambda v: (served[v], int(v)))


def as_versions(decision: Decision) -> Decision:
    """The machine speaks of revisions; a version switch's messages speak of versions."""
    state = decision.state
    message = None if state.message is None else _versions_text(state.message)
    events = tuple(Event(e.type, e.reason, _versions_text(e.message)) for e in decision.events)
    return replace(decision, state=replace(state, message=message), events=events)


def _versions_text(text: str) -> str:
    return text.replace("revision ", "version ")


def _sorted(versions: set[str]) -> Versions:
    return tuple(sorted(versions, key=int))
