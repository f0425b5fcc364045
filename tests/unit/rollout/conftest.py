"""Shared fixtures for the rollout state machine tests: a fixed clock origin and builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.rollout.clock import T0
from tritonop.api.models import Phase, Rollout
from tritonop.rollout import RolloutPolicy, RolloutState


@pytest.fixture
def at() -> Callable[[float], datetime]:
    """The fake clock: seconds after T0."""
    return lambda seconds: T0 + timedelta(seconds=seconds)


@pytest.fixture
def make_policy() -> Callable[..., RolloutPolicy]:
    """The spec's default policy (steps 10/25/50, 1m, threshold 3, 10m ready, 5m no-data) with overrides."""

    def make(**overrides: Any) -> RolloutPolicy:
        return replace(RolloutPolicy.from_spec(Rollout()), **overrides)

    return make


@pytest.fixture
def running_canary(at: Callable[[float], datetime]) -> Callable[..., RolloutState]:
    """Canary 'canary1' over stable 'stable1', past its gate, at ``step`` of ``steps``, step started at t=0."""

    def make(steps: tuple[int, ...] = (10, 25, 50), step: int = 0, **changes: Any) -> RolloutState:
        state = RolloutState(
            stable="stable1",
            canary="canary1",
            phase=Phase.progressing,
            step=step,
            weight=steps[step],
            started_at=at(-60),
            step_started_at=at(0),
        )
        return replace(state, **changes)

    return make
