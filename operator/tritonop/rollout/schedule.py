"""When the canary's next analysis is due (the state knows when it waits for traffic)."""

from __future__ import annotations

from datetime import datetime

from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.state import RolloutState, next_analysis_at
from tritonop.timestamps import require_aware


def analysis_due(state: RolloutState, policy: RolloutPolicy, now: datetime) -> bool:
    """Whether the handler should query Prometheus now and pass a verdict to advance()."""
    due = next_analysis_at(state, policy)
    return due is not None and require_aware(now) >= due
