"""Durations: the spec's notation ("1m30s", "500ms") both ways, and Prometheus range durations.

The one place that knows the units; the API models, the rollout messages and the PromQL
builders all go through it.
"""

from __future__ import annotations

import re
from decimal import Decimal

# Kubernetes-style durations we accept: "30s", "1m", "1m30s", "2h", "500ms". Each number has
# at most 5 digits, and 3 after the point: that keeps every duration the pattern admits
# (at most 32 characters) far inside Go's time.Duration, which the API server's CEL
# duration() parses into, so a bound check never overflows on either side.
DURATION_PATTERN = r"^([0-9]{1,5}(\.[0-9]{1,3})?(ms|s|m|h))+$"
DURATION_MAX_LENGTH = 32
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_NANOS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def duration_nanos(text: str) -> int:
    """Exact nanoseconds in a duration like "1m30s" (as Go's time.ParseDuration counts them)."""
    if len(text) > DURATION_MAX_LENGTH or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 1m, 1m30s, 2h")
    return sum(int(Decimal(num) * _NANOS[unit]) for num, unit in _PART.findall(text))


def parse_duration(text: str) -> float:
    """Seconds in a duration like "1m30s" or "500ms"."""
    return duration_nanos(text) / 1e9


def format_duration(seconds: float) -> str:
    """600 -> '10m', 90 -> '1m30s', 0.5 -> '500ms': the notation users write in the spec."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")) if n]
    return "".join(parts) or "0s"


def prometheus_duration(seconds: float) -> str:
    """A Prometheus range duration: whole seconds as "60s", anything finer in milliseconds."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"analysis window must be positive, got {seconds}s")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
