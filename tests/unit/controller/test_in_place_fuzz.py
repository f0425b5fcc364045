"""The InPlace stateful fuzz (in_place_fuzz.InPlaceMachine) in the default suite: >= 1,000 steps, seeded."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.unit.controller import in_place_fuzz


def test_in_place_invariants_hold_under_random_steps_and_faults() -> None:
    before = in_place_fuzz.STEPS.total
    run_state_machine_as_test(
        in_place_fuzz.InPlaceMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert in_place_fuzz.STEPS.total - before >= 1000
    reached = in_place_fuzz.REACHED
    switched_back = reached["RolledBack"] + reached["Aborted"]
    assert reached["load"] and reached["CanaryStep"] and reached["Promoted"] and switched_back, reached
