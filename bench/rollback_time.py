"""How fast a bad canary is rolled back, and how often a good one is rolled back by mistake.

    python -m bench.rollback_time [--runs N] [--healthy-runs M] [--interval 6s]

On the local end-to-end stack (e2e/local: the real operator, Triton and Prometheus; an
emulated API server, kubelet and gateway), starting from a Ready stable revision:

- N times, roll out a canary failing 30% of its requests and time CanaryStarted ->
  RolledBack (median/min/max), split into the readiness gate (CanaryStarted -> first
  traffic step) and the analysis (first step -> RolledBack);
- M times, roll out a healthy canary and count the rollouts that were not promoted
  (false rollbacks).

Each run rolls out a fresh copy of the model (a new revision with the same behaviour).
Times come from polling status every 0.1 s, so each is good to about +-0.1 s plus the
operator's tick (--tick-seconds 0.5). See docs/benchmarks.md for recorded figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from e2e.local.harness import StackSettings, local_stack
from e2e.local.stages import RolloutRecord, deploy, roll_out
from e2e.scenario import PROFILES, VARIANTS, Profile


@dataclasses.dataclass(frozen=True)
class Figures:
    """Seconds, over the runs that had the figure."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, records: Sequence[RolloutRecord], measure: Callable[[RolloutRecord], float | None]) -> Figures:
        return cls(tuple(v for r in records if (v := measure(r)) is not None))

    def text(self) -> str:
        if not self.values:
            return "no runs"
        return (
            f"median {statistics.median(self.values):.1f}s, min {min(self.values):.1f}s, "
            f"max {max(self.values):.1f}s (n={len(self.values)})"
        )


def gate_s(record: RolloutRecord) -> float | None:
    if record.first_step_s is None or record.canary_seen_s is None:
        return None
    return record.first_step_s - record.canary_seen_s


def analysis_s(record: RolloutRecord) -> float | None:
    if record.first_step_s is None or record.decided_s is None:
        return None
    return record.decided_s - record.first_step_s


async def benchmark(runs: int, healthy_runs: int, profile: Profile, rate: float, workdir: Path | None) -> int:
    settings = StackSettings(profile=profile, request_rate=rate)
    failing: list[RolloutRecord] = []
    healthy: list[RolloutRecord] = []
    async with local_stack(workdir, settings) as stack:
        await deploy(stack, "v1")
        for i in range(runs):
            record = await roll_out(stack, "v3", folder=f"v3-run{i}")
            failing.append(record)
            print(
                f"failing canary {i + 1}/{runs}: {record.outcome} {record.canary_to_decision_s:.1f}s after CanaryStarted "
                f"(gate {_seconds(gate_s(record))}, analysis {_seconds(analysis_s(record))}), "
                f"canary {record.canary_traffic.failures}/{record.canary_traffic.requests} requests failed",
                flush=True,
            )
        for i in range(healthy_runs):
            record = await roll_out(stack, "v2", folder=f"v2-run{i}")
            healthy.append(record)
            print(
                f"healthy canary {i + 1}/{healthy_runs}: {record.outcome} {record.canary_to_decision_s:.1f}s after "
                f"CanaryStarted, canary {record.canary_traffic.successes}/{record.canary_traffic.requests} requests ok",
                flush=True,
            )

    rolled_back = [r for r in failing if r.outcome == "RolledBack"]
    false_rollbacks = [r for r in healthy if r.outcome != "Promoted"]
    print("\n== results ==")
    print(
        f"failing canary ({VARIANTS['v3'].failure_rate:.0%} of requests fail), {runs} runs, {len(rolled_back)} rolled back:"
    )
    print(f"  CanaryStarted -> RolledBack: {Figures.of(rolled_back, lambda r: r.canary_to_decision_s).text()}")
    print(f"  of which readiness gate:     {Figures.of(rolled_back, gate_s).text()}")
    print(f"  of which analysis:           {Figures.of(rolled_back, analysis_s).text()}")
    print(
        f"healthy canary, {healthy_runs} runs: {len(false_rollbacks)} false rollbacks "
        f"({healthy_runs - len(false_rollbacks)} promoted)"
    )
    for record in false_rollbacks:
        print(f"  {record.canary}: {record.outcome}: {record.status.get('message')}")
    missed = runs - len(rolled_back)
    return 0 if missed == 0 and not false_rollbacks else 1


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollback_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="failing canaries to time (N, default 5)")
    parser.add_argument("--healthy-runs", type=int, default=5, help="healthy canaries to roll out (M, default 5)")
    parser.add_argument("--interval", default=PROFILES["local"].interval, help="rollout.interval (default %(default)s)")
    parser.add_argument(
        "--rate", type=float, default=StackSettings.request_rate, help="router requests/s (default %(default)s)"
    )
    parser.add_argument(
        "--mode",
        choices=("interval", "sequential"),
        default=PROFILES["local"].analysis_mode,
        help="rollout.analysis.mode (default %(default)s)",
    )
    parser.add_argument(
        "--success-rate-min",
        type=float,
        default=PROFILES["local"].success_rate_min,
        help="rollout.analysis.successRate.min (default %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    profile = dataclasses.replace(
        PROFILES["local"], interval=args.interval, analysis_mode=args.mode, success_rate_min=args.success_rate_min
    )
    print(
        f"rollback-time benchmark: analysis {profile.analysis_mode}, steps {list(profile.steps)}, "
        f"interval {profile.interval}, successRate.min {profile.success_rate_min:g}, failureThreshold "
        f"{profile.failure_threshold}, minRequests {profile.min_requests}, router {args.rate:g} requests/s",
        flush=True,
    )
    started = time.monotonic()
    code = asyncio.run(benchmark(args.runs, args.healthy_runs, profile, args.rate, args.workdir))
    print(f"took {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
