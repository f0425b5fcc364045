"""Shared chart renders: each values scenario is rendered once per test session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.helm import helm_template

WATCHED = ["team-a", "team-b"]
MONITORING = {
    "serviceMonitor": {"enabled": True},
    "tritonPodMonitor": {"enabled": True},
    "dashboard": {"enabled": True},
}

# The values combinations the chart is checked with; names appear in test ids.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watchNamespaces": WATCHED},
    "ha": {"ha": {"enabled": True}},
    "monitoring": MONITORING,
    "namespaced-ha-monitoring": {"watchNamespaces": WATCHED, "ha": {"enabled": True}, **MONITORING},
}

Objects = list[dict[str, Any]]


@pytest.fixture(params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over every values scenario."""
    return str(request.param)


@pytest.fixture
def scenario_values(scenario: str) -> dict[str, Any]:
    """The values of the current scenario."""
    return SCENARIOS[scenario]


@pytest.fixture(scope="session")
def watched_namespaces() -> list[str]:
    return list(WATCHED)


@pytest.fixture(scope="session")
def render() -> Callable[[str], Objects]:
    """render(scenario) -> rendered objects, CRDs included."""
    cache: dict[str, Objects] = {}

    def _render(scenario: str) -> Objects:
        if scenario not in cache:
            cache[scenario] = helm_template(SCENARIOS[scenario], include_crds=True)
        return cache[scenario]

    return _render
