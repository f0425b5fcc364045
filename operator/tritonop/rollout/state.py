"""The rollout state, and its round trip through InferenceService status.

All rollout progress lives in status so an operator restart resumes exactly where
it stopped. The status model has no free-text message field, so the state's
message travels in the ``RolloutSucceeded`` condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from tritonop.api.models import (
    CanaryStatus,
    CheckResult,
    Condition,
    InferenceServiceStatus,
    Phase,
    TrafficTarget,
)
from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.schedule import next_analysis_at
from tritonop.rollout.timestamps import from_rfc3339, to_rfc3339

ROLLOUT_CONDITION = "RolloutSucceeded"

# True once the desired revision serves 100%; False when it was rejected.
_CONDITION_STATUS: dict[Phase, Literal["True", "False", "Unknown"]] = {
    Phase.pending: "Unknown",
    Phase.progressing: "Unknown",
    Phase.ready: "True",
    Phase.rolled_back: "False",
    Phase.failed: "False",
}


@dataclass(frozen=True)
class RolloutState:
    stable: str | None = None
    canary: str | None = None
    failed: str | None = None  # rolled back or failed; kept (scaled to 0) until the spec changes
    phase: Phase | None = None
    # The fields below describe the running canary and are reset when there is none.
    step: int = 0
    weight: int = 0
    started_at: datetime | None = None
    step_started_at: datetime | None = None  # None while the canary waits for its gate
    failed_checks: int = 0
    no_data_since: datetime | None = None
    waiting_for: str | None = None
    last_analysis: tuple[CheckResult, ...] = ()
    message: str | None = None

    def without_canary(self, **changes: Any) -> RolloutState:
        """This state with every canary field reset, plus ``changes``."""
        reset: dict[str, Any] = {
            "canary": None,
            "step": 0,
            "weight": 0,
            "started_at": None,
            "step_started_at": None,
            "failed_checks": 0,
            "no_data_since": None,
            "waiting_for": None,
            "last_analysis": (),
        }
        return replace(self, **(reset | changes))

    @classmethod
    def from_status(cls, status: InferenceServiceStatus) -> RolloutState:
        """The state recorded in status. Raises ValueError on a malformed timestamp."""
        condition = _find_condition(status.conditions)
        state = cls(
            stable=status.stable_revision,
            failed=status.failed_revision,
            phase=status.phase,
            message=(condition.message or None) if condition else None,
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
            failed_checks=canary.failed_checks,
            no_data_since=_parse(canary.no_data_since),
            waiting_for=canary.waiting_for,
            last_analysis=tuple(canary.last_analysis),
        )

    def apply_to(self, status: InferenceServiceStatus, policy: RolloutPolicy, now: datetime) -> InferenceServiceStatus:
        """A copy of ``status`` carrying this state; other status fields are left as they are."""
        canary = None
        if self.canary is not None:
            canary = CanaryStatus(
                step=self.step,
                weight=self.weight,
                started_at=_format(self.started_at),
                step_started_at=_format(self.step_started_at),
                failed_checks=self.failed_checks,
                no_data_since=_format(self.no_data_since),
                next_analysis_at=_format(next_analysis_at(self, policy)),
                waiting_for=self.waiting_for,
                last_analysis=list(self.last_analysis),
            )
        return status.model_copy(
            update={
                "stable_revision": self.stable,
                "canary_revision": self.canary,
                "failed_revision": self.failed,
                "phase": self.phase,
                "traffic": traffic(self),
                "canary": canary,
                "conditions": _with_rollout_condition(status.conditions, self, now),
            }
        )


def traffic(state: RolloutState) -> list[TrafficTarget]:
    """The route split. The canary keeps its entry at 0% so users see it waiting."""
    if state.stable is None:
        return []
    targets = [TrafficTarget(revision=state.stable, percent=100 - state.weight)]
    if state.canary is not None:
        targets.append(TrafficTarget(revision=state.canary, percent=state.weight))
    return targets


def _find_condition(conditions: Sequence[Condition]) -> Condition | None:
    return next((c for c in conditions if c.type == ROLLOUT_CONDITION), None)


def _with_rollout_condition(conditions: Sequence[Condition], state: RolloutState, now: datetime) -> list[Condition]:
    if state.phase is None:
        return list(conditions)
    old = _find_condition(conditions)
    condition_status = _CONDITION_STATUS[state.phase]
    since: str | None
    if old is None or old.status != condition_status:
        since = to_rfc3339(now)
    else:
        since = old.last_transition_time
    new = Condition(
        type=ROLLOUT_CONDITION,
        status=condition_status,
        reason=state.phase.value,
        message=state.message or "",
        last_transition_time=since,
        observed_generation=old.observed_generation if old else None,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == ROLLOUT_CONDITION else c for c in conditions]


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else to_rfc3339(moment)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else from_rfc3339(text)
