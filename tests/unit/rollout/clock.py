"""The fixed clock origin of the rollout tests: every test time is an offset from T0."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
