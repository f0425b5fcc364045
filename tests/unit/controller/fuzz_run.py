"""Run the rollout fuzzes for longer and print their figures: `python -m tests.unit.controller.fuzz_run --steps 10000`
(the revision fuzz; `--in-place` for rollout.strategy InPlace's, `--experiment` for every spec an A/B/n Experiment).

Random (unseeded) runs, unlike the seeded default-suite test. A violation raises (hypothesis prints the shrunk sequence); otherwise it prints the
operator passes run and 0 violations.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.unit.controller import in_place_fuzz, rollout_fuzz
from tests.unit.controller.test_experiment_fuzz import SEEN, ExperimentMachine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000, help="operator passes to run at least")
    parser.add_argument("--in-place", action="store_true", help="fuzz rollout.strategy InPlace (invariant I8)")
    parser.add_argument("--experiment", action="store_true", help="fuzz rollout.strategy Experiment (A/B and A/B/n)")
    args = parser.parse_args()
    fuzz, machine, name = (
        (in_place_fuzz, in_place_fuzz.InPlaceMachine, "in-place fuzz")
        if args.in_place
        else (rollout_fuzz, ExperimentMachine, "experiment fuzz")
        if args.experiment
        else (rollout_fuzz, rollout_fuzz.RolloutMachine, "rollout fuzz")
    )
    started, runs = time.monotonic(), 0
    config = settings(
        max_examples=100,
        stateful_step_count=50,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    while fuzz.STEPS.total < args.steps:
        run_state_machine_as_test(machine, settings=config)
        runs += 1
    elapsed = time.monotonic() - started
    print(f"{name}: {fuzz.STEPS.total} operator passes in {runs} runs, 0 violations, {elapsed:.0f} s")
    if args.experiment:
        reached = dict(SEEN) | {"variants picked": len(rollout_fuzz.PICKED), "variants stopped": len(rollout_fuzz.STOPPED)}
        print(f"reached: {reached}")


if __name__ == "__main__":
    main()
