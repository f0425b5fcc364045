"""When the canary waits for traffic and when its next analysis is due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tritonop.rollout.policy import RolloutPolicy
from tritonop.timestamps import require_aware

if TYPE_CHECKING:
    from tritonop.rollout.state import RolloutState


def waiting_for_traffic(state: RolloutState) -> bool:
    """A canary exists but has not passed its readiness/acceptance gate yet."""
    return state.canary is not None and state.step_started_at is None


def next_analysis_at(state: RolloutState, policy: RolloutPolicy) -> datetime | None:
    """When the current step is judged; None while gated, paused, or without a canary."""
    if state.canary is None or state.step_started_at is None or policy.paused:
        return None
    return state.step_started_at + timedelta(seconds=policy.interval_s)


def analysis_due(state: RolloutState, policy: RolloutPolicy, now: datetime) -> bool:
    """Whether the handler should query Prometheus now and pass a verdict to advance()."""
    due = next_analysis_at(state, policy)
    return due is not None and require_aware(now) >= due
