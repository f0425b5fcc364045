"""Canary verdicts side by side: Flagger-style interval judging vs tritonop's sequential defaults.

    python -m bench.verdicts [--seed 14] [--runs 10] [--healthy 60] [--tick 1]

A simulation, run in one process in seconds: no cluster, no Triton. What is simulated is the
traffic: one canary pod and one stable pod, each request failing with the case's rate and
taking a normally distributed time (mean per case, sd 15 ms), 60 requests/s in all, the
canary getting its step's share (10% = 6 requests/s at the first step). What is real is
tritonop's decision code: every tick each pod's cumulative counters are rendered as Triton's
metrics text and go through the operator's parser (analysis.triton_metrics), per-revision
tally (counter resets included: some healthy canaries restart mid-run), sequential judge
(analysis.direct) and the rollout state machine (rollout.advance, rollout.analysis_due), as
Controller._advance wires them. The spec is the API's defaults (steps [10, 25, 50], interval
1m, mode sequential, alpha 0.001, minRequests 20, successRate.min 0.99) plus latency.maxMs 60.

Flagger is modelled as its docs describe its analysis: Prometheus scrapes every 15 s (random
phase); every interval (1m) each check reads the rate over the last 1m of scraped samples
(request success rate >= 99%, mean latency <= 60 ms; Flagger's own latency check uses a
histogram p99, the mean keeps the two sides comparable); a failed check counts, threshold 2
rolls back; a step passes when its check passes; after the last step it promotes.

Both sides judge the same kinds of canary with the same seeds; each draws its own requests.
Per case it prints the time from the canary's first traffic to RolledBack (or Promoted), and
false rollbacks among the healthy and borderline canaries (rates 0 .. 0.9%, latency up to 52
ms; the bound is 1% and 60 ms: every one of them is within its bounds).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tritonop.analysis.direct import judge_direct
from tritonop.analysis.triton_metrics import DirectTally, parse_counters
from tritonop.api.models import Phase, Rollout
from tritonop.rollout import RolloutPolicy, RolloutState, advance, analysis_due

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TOTAL_RPS = 60.0
LATENCY_SD_MS = 15.0
STABLE_MS = 30.0
MODEL = "classifier"
SPEC = Rollout.model_validate({"analysis": {"latency": {"maxMs": 60}}})
HORIZON_S = 900  # a canary not decided by then counts as held (never the case with these specs)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    failure_rate: float
    latency_ms: float
    bad: bool  # should be rolled back
    restart_at_s: int | None = None  # the canary's Triton restarts: counters back to 0


@dataclasses.dataclass
class Side:
    """One pod's cumulative counters, as Triton keeps them."""

    success: int = 0
    failure: int = 0
    duration_us: float = 0.0

    def serve(self, rng: random.Random, rps: float, failure_rate: float, mean_ms: float) -> None:
        for _ in range(_poisson(rng, rps)):
            if rng.random() < failure_rate:
                self.failure += 1
            else:
                self.success += 1
                self.duration_us += max(1.0, rng.gauss(mean_ms, LATENCY_SD_MS)) * 1000

    def text(self) -> str:
        labels = f'model="{MODEL}",version="1"'
        return (
            "# TYPE nv_inference_request_success counter\n"
            f"nv_inference_request_success{{{labels}}} {self.success}\n"
            "# TYPE nv_inference_request_failure counter\n"
            f'nv_inference_request_failure{{model="{MODEL}",reason="BACKEND",version="1"}} {self.failure}\n'
            f"nv_inference_count{{{labels}}} {self.success + self.failure}\n"
            f"nv_inference_request_duration_us{{{labels}}} {self.duration_us:.0f}\n"
            f"nv_inference_queue_duration_us{{{labels}}} 0\n"
        )


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is fine for the few dozen a second here.
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclasses.dataclass(frozen=True)
class Outcome:
    result: str  # RolledBack | Promoted | Held
    seconds: float  # from the canary's first traffic
    message: str = ""


def tritonop(case: Case, seed: int, tick_s: float) -> Outcome:
    """The real parser, tally, sequential judge and state machine, ticking every tick_s."""
    rng = random.Random(seed)
    policy = RolloutPolicy.from_spec(SPEC)
    state = RolloutState(
        stable="s",
        canary="c",
        phase=Phase.progressing,
        step=0,
        weight=policy.steps[0],
        started_at=T0,
        step_started_at=T0,
    )
    canary, stable, tally = Side(), Side(), DirectTally("c", "s")
    tally.observe({"c-0": parse_counters(canary.text(), MODEL)}, {"s-0": parse_counters(stable.text(), MODEL)})
    elapsed = 0.0
    next_tick = tick_s
    while elapsed < HORIZON_S:
        elapsed += 1.0
        share = state.weight / 100
        canary.serve(rng, TOTAL_RPS * share, case.failure_rate, case.latency_ms)
        stable.serve(rng, TOTAL_RPS * (1 - share), 0.0, STABLE_MS)
        if case.restart_at_s is not None and elapsed == case.restart_at_s:
            canary = Side()  # the same pod, its container restarted: counters from zero
        if elapsed + 1e-9 < next_tick:
            continue
        next_tick += tick_s
        now = T0 + timedelta(seconds=elapsed)
        tally.observe({"c-0": parse_counters(canary.text(), MODEL)}, {"s-0": parse_counters(stable.text(), MODEL)})
        judged = judge_direct(SPEC.analysis, tally)
        conclusive = judged.conclusive_failure
        verdict = judged.verdict if conclusive or analysis_due(state, policy, now) else None
        state = advance(state, policy, now, verdict=verdict, checks=judged.checks, conclusive=conclusive).state
        if state.canary is None:
            result = "RolledBack" if state.phase == Phase.rolled_back else "Promoted"
            return Outcome(result, elapsed, state.message or "")
    return Outcome("Held", elapsed)


def flagger(case: Case, seed: int, interval_s: int = 60, scrape_s: int = 15, threshold: int = 2) -> Outcome:
    """Interval analysis over Prometheus-scraped counters, as Flagger runs it."""
    rng = random.Random(seed)
    steps = list(SPEC.steps)
    phase = rng.randrange(scrape_s)
    canary = Side()
    scrapes: list[tuple[float, int, int, float]] = []  # (t, success, failure, duration_us)
    step, failed, elapsed, next_check = 0, 0, 0, interval_s
    while elapsed < HORIZON_S:
        elapsed += 1
        canary.serve(rng, TOTAL_RPS * steps[step] / 100, case.failure_rate, case.latency_ms)
        if case.restart_at_s is not None and elapsed == case.restart_at_s:
            canary = Side()
        if elapsed % scrape_s == phase:
            scrapes.append((elapsed, canary.success, canary.failure, canary.duration_us))
        if elapsed < next_check:
            continue
        next_check += interval_s
        ok = _flagger_checks(scrapes, elapsed, interval_s)
        if ok:
            step += 1
            if step == len(steps):
                return Outcome("Promoted", elapsed)
        else:
            failed += 1
            if failed >= threshold:
                return Outcome("RolledBack", elapsed)
    return Outcome("Held", elapsed)


def _flagger_checks(scrapes: list[tuple[float, int, int, float]], now: float, window_s: int) -> bool:
    """Both checks over the scrapes inside the window (increase between the first and last,
    a reset counted from zero as rate() does). No data (NaN) fails, as in Flagger."""
    inside = [s for s in scrapes if now - window_s <= s[0] <= now]
    if len(inside) < 2:
        return False
    success = failure = 0.0
    duration = 0.0
    for before, after in itertools.pairwise(inside):
        for index in (1, 2, 3):
            delta = after[index] - before[index]
            value = after[index] if delta < 0 else delta
            if index == 1:
                success += value
            elif index == 2:
                failure += value
            else:
                duration += value
    if success + failure == 0 or success == 0:
        return False
    return success / (success + failure) >= 0.99 and duration / success / 1000 <= 60.0


def cases(runs: int, healthy: int) -> list[Case]:
    bad = [
        Case("30% failing", 0.30, STABLE_MS, True),
        Case("10% failing", 0.10, STABLE_MS, True),
        Case("5% failing", 0.05, STABLE_MS, True),
        Case("+60 ms latency", 0.0, STABLE_MS + 60, True),
    ]
    good_kinds = [
        Case("healthy", 0.0, STABLE_MS, False),
        Case("healthy, restarts at 30 s", 0.0, STABLE_MS, False, restart_at_s=30),
        Case("borderline 0.5% failing", 0.005, STABLE_MS, False),
        Case("borderline 0.9% failing", 0.009, STABLE_MS, False),
        Case("borderline 52 ms latency", 0.0, 52.0, False),
    ]
    out = [c for c in bad for _ in range(runs)]
    out += [good_kinds[i % len(good_kinds)] for i in range(healthy)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verdicts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--runs", type=int, default=10, help="runs per failing kind (default 10)")
    parser.add_argument("--healthy", type=int, default=60, help="healthy and borderline canaries (default 60)")
    parser.add_argument("--tick", type=float, default=1.0, help="operator tick in seconds (default 1)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(
        f"verdicts benchmark (simulated traffic, real tritonop decision code): seed {args.seed}, "
        f"tritonop tick {args.tick:g}s, canary 6 requests/s at the first step"
    )
    rows: dict[str, list[tuple[Outcome, Outcome]]] = {}
    for index, case in enumerate(cases(args.runs, args.healthy)):
        seed = args.seed * 1_000_003 + index
        rows.setdefault(case.name, []).append((flagger(case, seed), tritonop(case, seed, args.tick)))
    print(
        f"\n{'case':<28} {'n':>3}  {'Flagger (1m, threshold 2, 15 s scrape)':<40} {'tritonop defaults (sequential)':<40}"
    )
    false_rollbacks = {"flagger": 0, "tritonop": 0}
    good_total = 0
    for name, outcomes in rows.items():
        bad = next(c for c in cases(1, 5) if c.name == name).bad
        columns = []
        for side, pick in (("flagger", 0), ("tritonop", 1)):
            results = [pair[pick] for pair in outcomes]
            columns.append(_summary(results, bad))
            if not bad:
                false_rollbacks[side] += sum(r.result != "Promoted" for r in results)
        if not bad:
            good_total += len(outcomes)
        print(f"{name:<28} {len(outcomes):>3}  {columns[0]:<40} {columns[1]:<40}")
    print(
        f"\nfalse rollbacks (or holds) among {good_total} healthy/borderline canaries: "
        f"Flagger {false_rollbacks['flagger']}, tritonop {false_rollbacks['tritonop']}"
    )
    example = next((pair[1] for pair in rows.get("30% failing", []) if pair[1].result == "RolledBack"), None)
    if example is not None:
        print(f"a 30% rollback message: {example.message}")
    print(f"took {time.monotonic() - started:.1f}s")
    return 0


def _summary(results: list[Outcome], bad: bool) -> str:
    wanted = "RolledBack" if bad else "Promoted"
    hits = [r.seconds for r in results if r.result == wanted]
    if not hits:
        return f"0/{len(results)} {wanted}"
    return (
        f"{len(hits)}/{len(results)} {wanted}: median {statistics.median(hits):.0f}s "
        f"(min {min(hits):.0f}, max {max(hits):.0f})"
    )


if __name__ == "__main__":
    sys.exit(main())
