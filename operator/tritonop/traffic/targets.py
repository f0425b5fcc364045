"""Checks and helpers shared by the traffic providers."""

from __future__ import annotations

from collections.abc import Iterable

from tritonop.api.models import TrafficTarget


def routed_targets(targets: list[TrafficTarget]) -> list[TrafficTarget]:
    """The targets that get traffic, after checking the split adds up to 100%.

    A 0% target gets no backend at all: its Service may not exist yet (a canary
    waiting for readiness), and a route to a missing backend turns unhealthy in
    some gateways even at weight 0.
    """
    if not targets:
        raise ValueError("traffic needs at least one target")
    if any(not 0 <= t.percent <= 100 for t in targets) or sum(t.percent for t in targets) != 100:
        split = ", ".join(f"{t.revision}={t.percent}" for t in targets)
        raise ValueError(f"traffic percents must be within 0..100 and add up to 100: {split}")
    return [t for t in targets if t.percent > 0]


def first_concrete_host(hosts: Iterable[str]) -> str | None:
    """The first hostname that is not a wildcard pattern (a URL needs one real host)."""
    return next((host for host in hosts if "*" not in host), None)
