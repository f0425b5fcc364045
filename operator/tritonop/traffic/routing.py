"""What a provider renders: the weighted split, and what reaches the canary besides its weight. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from tritonop.api.models import TrafficTarget


@dataclass(frozen=True)
class Mirror:
    """A copy of ``percent``% of the requests goes to ``revision``; clients get only the
    responses of the weighted split (rollout.shadow)."""

    revision: str
    percent: int


@dataclass(frozen=True)
class Routing:
    targets: list[TrafficTarget] = field(default_factory=list)  # percent adding up to 100
    mirror: Mirror | None = None
    matched: str | None = None  # the revision requests matching spec.traffic.match go to
