"""Run the rollout fuzz for longer and print its figures: `python -m tests.unit.controller.fuzz_run --steps 10000`.

Random (unseeded) runs, unlike the seeded default-suite test. A violation raises (hypothesis prints the shrunk sequence); otherwise it prints the
operator passes run and 0 violations.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.unit.controller import rollout_fuzz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000, help="operator passes to run at least")
    args = parser.parse_args()
    started, runs = time.monotonic(), 0
    config = settings(
        max_examples=100,
        stateful_step_count=50,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    while rollout_fuzz.STEPS.total < args.steps:
        run_state_machine_as_test(rollout_fuzz.RolloutMachine, settings=config)
        runs += 1
    elapsed = time.monotonic() - started
    print(f"rollout fuzz: {rollout_fuzz.STEPS.total} operator passes in {runs} runs, 0 violations, {elapsed:.0f} s")


if __name__ == "__main__":
    main()
