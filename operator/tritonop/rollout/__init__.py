"""The canary rollout state machine (pure core): see docs/rollout.md."""

from tritonop.api.models import Verdict
from tritonop.rollout.decisions import Action, ApplyRevision, Decision, Event, ScaleRevision
from tritonop.rollout.machine import GateResult, advance, mark_available, plan, recovered_state, removable_revisions
from tritonop.rollout.manual import ABORT_ANNOTATION, PROMOTE_ANNOTATION, ManualAction, manual_action, manual_actions
from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.schedule import analysis_due
from tritonop.rollout.state import RolloutState, next_analysis_at, traffic, waiting_for_traffic

__all__ = [
    "ABORT_ANNOTATION",
    "PROMOTE_ANNOTATION",
    "Action",
    "ApplyRevision",
    "Decision",
    "Event",
    "GateResult",
    "ManualAction",
    "RolloutPolicy",
    "RolloutState",
    "ScaleRevision",
    "Verdict",
    "advance",
    "analysis_due",
    "manual_action",
    "manual_actions",
    "mark_available",
    "next_analysis_at",
    "plan",
    "recovered_state",
    "removable_revisions",
    "traffic",
    "waiting_for_traffic",
]
