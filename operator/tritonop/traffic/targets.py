"""Checks and helpers shared by the traffic providers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tritonop.api.models import SessionAffinity, TrafficTarget
from tritonop.durations import parse_duration

# The header a request's cookies arrive in, as Istio and Gateway API match it (lowercase).
COOKIE_HEADER = "cookie"
SET_COOKIE_HEADER = "set-cookie"


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


def sticky_revisions(routed: list[TrafficTarget]) -> list[str]:
    """The revisions a client stays on once the split sent it there (traffic.sessionAffinity):
    every routed one but the first (the stable), so stable clients still move over as the
    canary's weight grows, and a canary's clients never flip back."""
    return [t.revision for t in routed[1:]]


def cookie_regex(name: str, value: str) -> str:
    """A regular expression, matched against the whole Cookie header, for a request carrying
    cookie ``name`` with exactly ``value``. RE2 (Envoy: Istio, most Gateway API implementations)
    and Python read it alike."""
    return rf"^(.*;\s*)?{re.escape(name)}={re.escape(value)}(;.*)?$"


def set_cookie(affinity: SessionAffinity, revision: str, path: str = "/") -> str:
    """The Set-Cookie value that keeps a client on ``revision`` for the affinity's maxAge."""
    max_age = max(1, int(parse_duration(affinity.max_age)))
    return f"{affinity.cookie_name}={revision}; Max-Age={max_age}; Path={path}; HttpOnly"


def first_concrete_host(hosts: Iterable[str]) -> str | None:
    """The first hostname that is not a wildcard pattern (a URL needs one real host)."""
    return next((host for host in hosts if "*" not in host), None)
