"""What a rollout decision asks the handler to do.

Traffic is never an action: the handler derives routes from ``traffic(decision.state)``.
Order of work for every decision: ``before_routing`` actions, then routes, then
``after_routing`` actions, then status. So a route never points at a revision that
does not exist yet, and traffic has left a revision before it is scaled down. Nothing is
deleted by a decision: revisions the persisted state no longer names are removed by the
handler afterwards (``removable_revisions``), so a lost status write never strands traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tritonop.rollout.state import RolloutState


@dataclass(frozen=True)
class ApplyRevision:
    """Create or update the revision's Deployment, Service and autoscaler. Idempotent."""

    revision: str


@dataclass(frozen=True)
class ScaleRevision:
    """Scale the revision to ``replicas`` (removing its autoscaler for 0), keeping its objects."""

    revision: str
    replicas: int


Action = ApplyRevision | ScaleRevision
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the InferenceService."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    state: RolloutState
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def before_routing(self) -> tuple[Action, ...]:
        """Actions to perform before the routes are updated."""
        return tuple(a for a in self.actions if isinstance(a, ApplyRevision))

    @property
    def after_routing(self) -> tuple[Action, ...]:
        """Actions to perform after the routes are updated."""
        return tuple(a for a in self.actions if not isinstance(a, ApplyRevision))
