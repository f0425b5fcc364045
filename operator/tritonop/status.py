"""Pure: the conditions a user and GitOps tools read, derived from observed state.

Conditions follow kstatus: `Ready` (the desired revision serves all traffic),
`Reconciling` (work in progress: first deploy or a canary), `Stalled` (cannot make
progress without a change: invalid spec, failed or rolled-back revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tritonop.api.models import Condition, InferenceServiceStatus, Phase
from tritonop.timestamps import format_time

ConditionStatus = Literal["True", "False", "Unknown"]
ConditionTriple = tuple[ConditionStatus, str, str]  # status, reason, message


@dataclass(frozen=True)
class DeploymentReadiness:
    """What a revision's Deployment reports."""

    name: str
    replicas: int
    ready_replicas: int
    available: bool
    message: str = ""
    exists: bool = True  # False: no such Deployment (yet)

    @property
    def serving(self) -> bool:
        """Some pods are ready: the revision takes traffic even when not fully Available."""
        return self.ready_replicas > 0

    @classmethod
    def from_object(cls, deployment: Mapping[str, Any] | None, name: str) -> DeploymentReadiness:
        if deployment is None:
            return cls(name, 0, 0, False, f"Deployment {name} not found", exists=False)
        status = deployment.get("status") or {}
        spec_replicas = (deployment.get("spec") or {}).get("replicas")
        replicas = int(status.get("replicas") or (spec_replicas if spec_replicas is not None else 1))
        ready = int(status.get("readyReplicas") or 0)
        available = any(
            c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or []
        ) and ready > 0
        message = f"Deployment {name}: {ready}/{replicas} replicas ready"
        for c in status.get("conditions") or []:
            if c.get("status") == "False" and c.get("message"):
                message += f"; {c.get('type')}: {c['message']}"
        return cls(name, replicas, ready, available, message)


def set_condition(
    conditions: list[Condition], new: Condition, now: datetime
) -> list[Condition]:
    """Replace the condition of the same type; keep lastTransitionTime when status did not flip."""
    old = next((c for c in conditions if c.type == new.type), None)
    if old is not None and old.status == new.status:
        when = old.last_transition_time
    else:
        when = format_time(now, whole_seconds=True)
    updated = new.model_copy(update={"last_transition_time": when})
    return [c for c in conditions if c.type != new.type] + [updated]


def conditions_for(
    status: InferenceServiceStatus,
    *,
    generation: int | None,
    stable: DeploymentReadiness | None,
    invalid_reason: str | None = None,
    invalid_message: str | None = None,
    now: datetime,
) -> list[Condition]:
    """The Ready/Reconciling/Stalled triple for the status as it now stands."""
    ready: ConditionTriple
    reconciling: ConditionTriple
    stalled: ConditionTriple
    if invalid_reason:
        ready = ("False", invalid_reason, invalid_message or "")
        reconciling = ("False", invalid_reason, "")
        stalled = ("True", invalid_reason, invalid_message or "")
    elif status.phase == Phase.failed:
        msg = _message(status) or "the rollout failed"
        ready = ("False", "RolloutFailed", msg)
        reconciling = ("False", "RolloutFailed", "")
        stalled = ("True", "RolloutFailed", msg)
    elif status.phase == Phase.rolled_back:
        msg = _message(status) or "the canary was rolled back"
        ready = ("False", "RolledBack", msg)
        reconciling = ("False", "RolledBack", "")
        stalled = ("True", "RolledBack", msg)
    elif status.canary_revision:
        canary = status.canary
        waiting = canary.waiting_for if canary else None
        msg = (
            f"canary {status.canary_revision} gets no traffic yet, waiting: {waiting}"
            if waiting
            else f"canary {status.canary_revision} at {canary.weight if canary else 0}% "
            f"(step {(canary.step if canary else 0) + 1}); stable {status.stable_revision} serves the rest"
        )
        ready = ("False", "CanaryInProgress", msg)
        reconciling = ("True", "CanaryInProgress", msg)
        stalled = ("False", "CanaryInProgress", "")
    elif stable is None or not stable.available:
        msg = stable.message if stable else "waiting for the first revision"
        ready = ("False", "Deploying", msg)
        reconciling = ("True", "Deploying", msg)
        stalled = ("False", "Deploying", "")
    else:
        msg = f"revision {status.stable_revision} serves 100% ({stable.ready_replicas}/{stable.replicas} ready)"
        ready = ("True", "Serving", msg)
        reconciling = ("False", "Serving", "")
        stalled = ("False", "Serving", "")

    conditions = list(status.conditions)
    for type_, (state, reason, message) in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled)):
        conditions = set_condition(
            conditions,
            Condition(type=type_, status=state, reason=reason, message=message, observed_generation=generation),
            now,
        )
    return sorted(conditions, key=lambda c: ("Ready", "Reconciling", "Stalled").index(c.type)
                  if c.type in ("Ready", "Reconciling", "Stalled") else 9)


def _message(status: InferenceServiceStatus) -> str | None:
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    return status.message or (ready.message if ready else None)
