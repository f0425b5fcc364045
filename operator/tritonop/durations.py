"""Durations: the spec's notation ("1m30s", "500ms") both ways, and Prometheus range durations.

The one place that knows the units; the API models, the rollout messages and the PromQL
builders all go through it.
"""

from __future__ import annotations

import re

# Kubernetes-style durations we accept: "30s", "1m", "1m30s", "2h", "500ms".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(\.[0-9]+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration like "1m30s" or "500ms"."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 1m, 1m30s, 2h")
    return sum(float(num) * _SECONDS[unit] for num, _, unit in _PART.findall(text))


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
