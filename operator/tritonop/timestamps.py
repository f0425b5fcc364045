"""RFC 3339 timestamps as status carries them: the one place that writes and reads them."""

from __future__ import annotations

from datetime import UTC, datetime


def require_aware(moment: datetime) -> datetime:
    """The moment itself; naive datetimes are refused so no local clock leaks in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment


def format_time(moment: datetime, *, whole_seconds: bool = False) -> str:
    """'2024-05-01T12:00:00Z' in UTC.

    Fractional seconds are written only when present, so a round trip through
    parse_time is exact; ``whole_seconds`` drops them, as Kubernetes writes a
    condition's lastTransitionTime.
    """
    utc = require_aware(moment).astimezone(UTC).replace(tzinfo=None)
    if whole_seconds:
        utc = utc.replace(microsecond=0)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def parse_time(text: str) -> datetime:
    """A UTC datetime from an RFC 3339 timestamp that carries an offset ('Z' or '+hh:mm')."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}") from err
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)
