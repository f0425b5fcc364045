"""What one PromQL query yielded: a number, no data, or an error.

Kept apart from the HTTP client so the pure judging code can use it without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

QueryStatus = Literal["value", "nodata", "error"]


@dataclass(frozen=True)
class QueryResult:
    """``value`` is set exactly when ``status`` is "value"; ``message`` says why otherwise."""

    status: QueryStatus
    value: float | None = None
    message: str = ""

    @classmethod
    def of(cls, value: float) -> QueryResult:
        return cls("value", value=value)

    @classmethod
    def no_data(cls, message: str) -> QueryResult:
        return cls("nodata", message=message)

    @classmethod
    def error(cls, message: str) -> QueryResult:
        return cls("error", message=message)
