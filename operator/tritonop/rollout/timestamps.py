"""RFC 3339 timestamps for status, and durations in the spec's own notation."""

from __future__ import annotations

from datetime import UTC, datetime


def require_aware(moment: datetime) -> datetime:
    """The moment itself; naive datetimes are refused so no local clock leaks in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment


def to_rfc3339(moment: datetime) -> str:
    """'2024-05-01T12:00:00Z'; fractional seconds only when present, so a round trip is exact."""
    utc = require_aware(moment).astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def from_rfc3339(text: str) -> datetime:
    """A UTC datetime from an RFC 3339 timestamp that carries an offset ('Z' or '+hh:mm')."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}") from err
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """600 -> '10m', 90 -> '1m30s', 0.5 -> '500ms': the notation users write in the spec."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")) if n]
    return "".join(parts) or "0s"
