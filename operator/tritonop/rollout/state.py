"""The rollout state, and its round trip through InferenceService status.

All rollout progress lives in status so an operator restart resumes exactly where
it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tritonop.api.models import (
    ArmStatus,
    CanaryStatus,
    CheckResult,
    InferenceServiceStatus,
    Phase,
    TrafficTarget,
)
from tritonop.rollout.manual import ManualAction
from tritonop.rollout.policy import RolloutPolicy
from tritonop.timestamps import format_time, parse_time


@dataclass(frozen=True)
class Arm:
    """A variant beyond B of an Experiment (rollout.experiment.variants): its own revision beside
    the canary, weighted once B is, removed with the canary (see rollout/experiment.py)."""

    name: str
    revision: str
    weight: int = 0
    failed_checks: int = 0
    stopped: str | None = None  # why its analysis stopped it: no weight, no pods, never picked
    stale_promote: bool = False  # the promote annotation named it before it started (I6): ignored

    @property
    def active(self) -> bool:
        return self.stopped is None


@dataclass(frozen=True)
class RolloutState:
    stable: str | None = None
    canary: str | None = None
    failed: str | None = None  # rolled back or failed; kept (scaled to 0) until the spec changes
    phase: Phase | None = None
    # step .. last_analysis describe the running canary and are reset when there is none.
    step: int = 0
    weight: int = 0
    started_at: datetime | None = None
    step_started_at: datetime | None = None  # None while the canary waits for its gate
    shadow_started_at: datetime | None = None  # rollout.shadow: mirrored, not yet weighted
    failed_checks: int = 0
    no_data_since: datetime | None = None
    waiting_for: str | None = None
    last_analysis: tuple[CheckResult, ...] = ()
    ignored_manual: tuple[ManualAction, ...] = ()  # stale annotations found at the canary's start (I6)
    arms: tuple[Arm, ...] = ()  # an Experiment's variants beyond B, while B is the canary
    message: str | None = None  # what happened last, in a sentence (status.message)

    def without_canary(self, **changes: Any) -> RolloutState:
        """This state with every canary field reset, plus ``changes``."""
        reset: dict[str, Any] = {
            "canary": None,
            "step": 0,
            "weight": 0,
            "started_at": None,
            "step_started_at": None,
            "shadow_started_at": None,
            "failed_checks": 0,
            "no_data_since": None,
            "waiting_for": None,
            "last_analysis": (),
            "ignored_manual": (),
            "arms": (),
        }
        return replace(self, **(reset | changes))

    @classmethod
    def from_status(cls, status: InferenceServiceStatus) -> RolloutState:
        """The state recorded in status. Raises ValueError on a malformed timestamp."""
        state = cls(
            stable=status.stable_revision,
            failed=status.failed_revision,
            phase=status.phase,
            message=status.message,
        )
        canary = status.canary
        if status.canary_revision is None or canary is None:
            return state
        return replace(
            state,
            canary=status.canary_revision,
            step=canary.step,
            weight=canary.weight,
            started_at=_parse(canary.started_at),
            step_started_at=_parse(canary.step_started_at),
            shadow_started_at=_parse(canary.shadow_started_at),
            failed_checks=canary.failed_checks,
            no_data_since=_parse(canary.no_data_since),
            waiting_for=canary.waiting_for,
            last_analysis=tuple(canary.last_analysis),
            ignored_manual=tuple(canary.ignored_annotations or ()),
            arms=tuple(
                Arm(
                    v.name, v.revision, v.weight, v.failed_checks, v.stopped, "promote" in (v.ignored_annotations or ())
                )
                for v in canary.variants or ()
            ),
        )

    def apply_to(self, status: InferenceServiceStatus, policy: RolloutPolicy, now: datetime) -> InferenceServiceStatus:
        """A copy of ``status`` carrying this state; other status fields are left as they are.

        ``now`` is part of the handler's contract for time-stamped fields; nothing here needs it yet.
        """
        canary = None
        if self.canary is not None:
            canary = CanaryStatus(
                step=self.step,
                weight=self.weight,
                started_at=_format(self.started_at),
                step_started_at=_format(self.step_started_at),
                shadow_started_at=_format(self.shadow_started_at),
                failed_checks=self.failed_checks,
                no_data_since=_format(self.no_data_since),
                next_analysis_at=_format(next_analysis_at(self, policy)),
                waiting_for=self.waiting_for,
                last_analysis=list(self.last_analysis),
                ignored_annotations=list(self.ignored_manual) or None,
                variants=[
                    ArmStatus(
                        name=a.name,
                        revision=a.revision,
                        weight=a.weight,
                        failed_checks=a.failed_checks,
                        stopped=a.stopped,
                        ignored_annotations=["promote"] if a.stale_promote else None,
                    )
                    for a in self.arms
                ]
                or None,
            )
        return status.model_copy(
            update={
                "stable_revision": self.stable,
                "canary_revision": self.canary,
                "failed_revision": self.failed,
                "phase": self.phase,
                "message": self.message,
                "traffic": traffic(self),
                "canary": canary,
            }
        )


def traffic(state: RolloutState) -> list[TrafficTarget]:
    """The route split. The canary keeps its entry at 0% so users see it waiting."""
    if state.stable is None:
        return []
    arms = [a for a in state.arms if a.active]
    targets = [TrafficTarget(revision=state.stable, percent=100 - state.weight - sum(a.weight for a in arms))]
    if state.canary is not None:
        targets.append(TrafficTarget(revision=state.canary, percent=state.weight))
        targets += [TrafficTarget(revision=a.revision, percent=a.weight) for a in arms]
    return targets


def named_revisions(state: RolloutState) -> set[str]:
    """Every revision the state names: its children must stay (removable_revisions)."""
    named = {state.stable, state.canary, state.failed, *(a.revision for a in state.arms if a.active)}
    return {r for r in named if r is not None}


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def in_shadow(state: RolloutState) -> bool:
    """The canary passed its gate and is mirrored a share of the requests, with no weight yet
    (rollout.shadow): its responses reach no client."""
    return state.canary is not None and state.shadow_started_at is not None and state.step_started_at is None


def waiting_for_traffic(state: RolloutState) -> bool:
    """A canary exists but has not passed its readiness/acceptance gate yet."""
    return state.canary is not None and state.step_started_at is None and state.shadow_started_at is None


def next_analysis_at(state: RolloutState, policy: RolloutPolicy) -> datetime | None:
    """When the current step (or the shadow phase) is judged; None while gated, paused, or without a canary."""
    if state.canary is None or policy.paused:
        return None
    if in_shadow(state):
        assert state.shadow_started_at is not None
        return state.shadow_started_at + timedelta(seconds=policy.shadow_s or policy.interval_s)
    if state.step_started_at is None:
        return None
    return state.step_started_at + timedelta(seconds=policy.interval_s)
