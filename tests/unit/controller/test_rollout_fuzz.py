"""The stateful fuzz (rollout_fuzz.RolloutMachine) in the default suite: >= 1,000 steps, seeded.

`python -m tests.unit.controller.fuzz_run --steps 10000` runs a longer one and prints the
figures (docs/benchmarks.md).
"""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from tests.unit.controller import rollout_fuzz


def test_rollout_invariants_hold_under_random_steps_and_faults() -> None:
    before = rollout_fuzz.STEPS.total
    run_state_machine_as_test(
        rollout_fuzz.RolloutMachine,
        settings=rollout_fuzz.seeded(100),
    )
    assert rollout_fuzz.STEPS.total - before >= 1000
    assert rollout_fuzz.MIRRORED, "no shadow phase mirrored to a canary: the fuzz never reached one"
