"""The InPlace stateful fuzz (in_place_fuzz.InPlaceMachine) in the default suite: >= 1,000 steps, seeded."""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from tests.unit.controller import in_place_fuzz, rollout_fuzz


def test_in_place_invariants_hold_under_random_steps_and_faults() -> None:
    before = in_place_fuzz.STEPS.total
    run_state_machine_as_test(
        in_place_fuzz.InPlaceMachine,
        settings=rollout_fuzz.seeded(100),
    )
    assert in_place_fuzz.STEPS.total - before >= 1000
    reached = in_place_fuzz.REACHED
    switched_back = reached["RolledBack"] + reached["Aborted"]
    assert reached["load"] and reached["CanaryStep"] and reached["Promoted"] and switched_back, reached
    assert reached["PodWedged"] and reached["evicted wedged"], reached
