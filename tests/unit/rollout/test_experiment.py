"""rollout.strategy Experiment on the machine: gate -> fixed split -> concluded -> promote or abort;
a B that fails its checks is still rolled back; status.experiment's window, figures and outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

from tests.unit.rollout.clock import T0
from tritonop.analysis.experiment import ExperimentFigures, VariantFigures, compare
from tritonop.api.models import CheckResult, Experiment, ExperimentStatus, Phase, Rollout, RolloutStrategy
from tritonop.rollout import (
    Decision,
    GateResult,
    RolloutPolicy,
    RolloutState,
    ScaleRevision,
    advance,
    plan,
    traffic,
)
from tritonop.rollout.experiment import figures_due, follow
from tritonop.rollout.manual import ManualAction
from tritonop.timestamps import format_time

PASS = (CheckResult(name="successRate", result="Pass", value=1.0, bound=">= 0.99"),)
FAIL = (CheckResult(name="successRate", result="Fail", value=0.7, bound=">= 0.99"),)
READY = GateResult(True, "Ready", "")
EXPERIMENT = Experiment(weight=20, duration="10m")
ROLLOUT = Rollout.model_validate({"strategy": "Experiment", "interval": "1m", "experiment": EXPERIMENT.dump()})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Run:
    """One experiment driven tick by tick as the orchestrator drives it: advance, then follow."""

    policy: RolloutPolicy = field(default_factory=lambda: RolloutPolicy.from_spec(ROLLOUT))
    state: RolloutState = field(
        default_factory=lambda: plan(RolloutState(stable="aaaa", phase=Phase.ready), "bbbb", T0).state
    )
    record: ExperimentStatus | None = None
    reasons: list[str] = field(default_factory=list)
    last: Decision | None = None

    def tick(
        self,
        seconds: float,
        *,
        verdict: str | None = None,
        checks: tuple[CheckResult, ...] = (),
        manual: ManualAction | None = None,
        conclusive: bool = False,
        figures: ExperimentFigures | None = None,
        experiment: Experiment | None = EXPERIMENT,
    ) -> Decision:
        before = self.state
        decision = advance(
            before,
            self.policy,
            at(seconds),
            gate=READY,
            verdict=verdict,  # type: ignore[arg-type]
            checks=checks,
            manual=manual,
            conclusive=conclusive,
        )
        decision, self.record = follow(self.record, before, decision, experiment, at(seconds), figures=figures)
        self.state, self.last = decision.state, decision
        self.reasons += [e.reason for e in decision.events]
        return decision


def figures_at(seconds: float, a_failures: int = 0, b_failures: int = 40) -> ExperimentFigures:
    a = VariantFigures(requests=8000, success_rate=1 - a_failures / 8000, mean_latency_ms=10.0, metrics={"kpi": 0.3})
    b = VariantFigures(requests=2000, success_rate=1 - b_failures / 2000, mean_latency_ms=12.0, metrics={"kpi": 0.4})
    return ExperimentFigures(at(seconds), a, b, compare(a, b, None))


def test_the_policy_of_an_experiment_is_one_step_at_b_s_weight_never_promoted_by_itself() -> None:
    policy = RolloutPolicy.from_spec(ROLLOUT)
    assert (policy.steps, policy.auto_promote) == ((20,), False)
    canary = RolloutPolicy.from_spec(Rollout())
    assert (canary.steps, canary.auto_promote) == ((10, 25, 50), True)
    assert ROLLOUT.strategy == RolloutStrategy.experiment


def test_gate_then_a_fixed_split_held_through_passing_analyses_until_the_duration_ends() -> None:
    run = Run()
    assert run.state.canary == "bbbb" and run.record is None

    run.tick(0)  # the gate opens: B gets its weight, the experiment starts
    assert [(t.revision, t.percent) for t in traffic(run.state)] == [("aaaa", 80), ("bbbb", 20)]
    assert run.record is not None
    assert (run.record.started_at, run.record.ends_at) == (format_time(at(0)), format_time(at(600)))
    assert [(v.name, v.revision, v.weight) for v in run.record.variants] == [("A", "aaaa", 80), ("B", "bbbb", 20)]
    assert run.reasons == ["CanaryStep", "ExperimentStarted"]
    assert run.state.message == "experiment: B (revision bbbb) gets 20% and A (revision aaaa) the rest for 10m"

    for minute in range(1, 10):  # every analysis passes; a canary would have been promoted at the first
        run.tick(60 * minute, verdict="Pass", checks=PASS)
        assert run.state.canary == "bbbb" and run.state.weight == 20
        assert not run.record.concluded
    assert "Promoted" not in run.reasons

    run.tick(600, figures=figures_at(600))
    assert run.record.concluded and not run.record.ended
    assert run.reasons[-1] == "ExperimentConcluded"
    assert run.state.message is not None and run.state.message.startswith("experiment concluded at")
    assert "B's success rate is lower than A's by 2 points" in run.state.message
    assert run.state.weight == 20 and run.state.phase == Phase.progressing  # held: no automatic promotion

    run.tick(3600, verdict="Pass", checks=PASS)  # an hour later: still held, still judged
    assert (run.state.canary, run.state.weight, run.record.concluded) == ("bbbb", 20, True)
    assert run.reasons.count("ExperimentConcluded") == 1


def test_the_promote_annotation_picks_b_which_is_promoted_as_usual() -> None:
    run = Run()
    run.tick(0)
    run.tick(600, figures=figures_at(600))
    decision = run.tick(700, manual="promote")

    assert (run.state.stable, run.state.canary, run.state.phase) == ("bbbb", None, Phase.ready)
    assert run.record is not None and (run.record.winner, run.record.ended) == ("B", True)
    assert run.state.message == "experiment decided for B: revision bbbb promoted by annotation"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [("Normal", "Promoted", run.state.message)]
    # The figures stay on show with the outcome.
    assert [v.requests for v in run.record.variants] == [8000, 2000]


def test_the_abort_annotation_picks_a_reported_as_the_experiment_s_decision_not_a_failure() -> None:
    run = Run()
    run.tick(0)
    run.tick(600, figures=figures_at(600))
    decision = run.tick(700, manual="abort")

    assert (run.state.stable, run.state.canary, run.state.failed) == ("aaaa", None, "bbbb")
    assert run.state.phase == Phase.ready
    assert ScaleRevision("bbbb", 0) in decision.actions  # B leaves as in a rollback
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "ExperimentDecided")]
    assert run.record is not None and (run.record.winner, run.record.ended) == ("A", True)
    assert run.state.message is not None
    assert run.state.message.startswith("experiment decided for A: revision aaaa kept, revision bbbb removed")
    # The spec still names B: it is not started again.
    again = plan(run.state, "bbbb", at(800))
    assert again.state.canary is None and again.actions == ()


def test_a_decision_before_the_end_says_so() -> None:
    run = Run()
    run.tick(0)
    run.tick(120, manual="abort")
    assert run.record is not None and run.record.winner == "A" and not run.record.concluded
    assert run.state.message is not None and run.state.message.startswith("experiment decided for A before its end")


@pytest.mark.parametrize("concluded", [False, True])
def test_a_b_that_fails_its_checks_is_rolled_back_as_a_canary_before_or_after_the_conclusion(concluded: bool) -> None:
    run = Run()
    run.tick(0)
    start = 600 if concluded else 0
    if concluded:
        run.tick(600, figures=figures_at(600))
    for n in range(1, 4):  # failureThreshold 3
        run.tick(start + 60 * n, verdict="Fail", checks=FAIL)
    assert (run.state.canary, run.state.failed, run.state.phase) == (None, "bbbb", Phase.rolled_back)
    assert run.reasons[-1] == "RolledBack"
    assert run.record is not None and run.record.ended and run.record.winner is None
    assert run.record.message is not None and run.record.message.startswith("ended without a decision: rolled back")


def test_a_conclusive_sequential_failure_stops_the_experiment_at_once() -> None:
    run = Run()
    run.tick(0)
    run.tick(5, verdict="Fail", checks=FAIL, conclusive=True)
    assert (run.state.canary, run.state.phase) == (None, Phase.rolled_back)
    assert run.record is not None and run.record.ended and run.record.winner is None


def test_a_changed_weight_applies_at_once_and_a_changed_duration_moves_the_end() -> None:
    run = Run()
    run.tick(0)
    longer = Experiment(weight=50, duration="1h")
    run.tick(600, experiment=longer)
    assert run.state.weight == 50 and run.record is not None
    assert [v.weight for v in run.record.variants] == [50, 50]
    assert run.record.ends_at == format_time(at(3600)) and not run.record.concluded


def test_figures_are_recorded_per_variant_and_incomplete_ones_keep_the_last() -> None:
    run = Run()
    run.tick(0)
    run.tick(60, verdict="Pass", checks=PASS, figures=figures_at(60, b_failures=0))
    assert run.record is not None and run.record.results_at == format_time(at(60))
    a, b = run.record.variants
    assert (a.requests, a.success_rate, a.mean_latency_ms, a.metrics) == (8000, 1.0, 10.0, {"kpi": 0.3})
    assert (b.requests, b.success_rate, b.mean_latency_ms, b.metrics) == (2000, 1.0, 12.0, {"kpi": 0.4})
    assert [c.metric for c in run.record.comparison] == ["successRate"]

    down = ExperimentFigures(at(120), VariantFigures(problems=("requests: unreachable",)), VariantFigures(), [])
    run.tick(120, figures=down)
    assert run.record.results_at == format_time(at(60))  # the last figures stand
    assert [v.requests for v in run.record.variants] == [8000, 2000]
    assert run.record.problems == [f"not updated at {format_time(at(120))}", "A: requests: unreachable"]


def test_figures_are_due_every_interval_then_once_at_the_end_then_never() -> None:
    record = ExperimentStatus(started_at=format_time(at(0)), ends_at=format_time(at(600)))
    assert figures_due(None, at(60), 60) is None
    assert figures_due(record, at(0.5), 60) is None  # no window yet
    assert figures_due(record, at(30), 60) == at(30)  # none recorded yet
    seen = record.model_copy(update={"results_at": format_time(at(30))})
    assert figures_due(seen, at(60), 60) is None
    assert figures_due(seen, at(90), 60) == at(90)
    assert figures_due(seen, at(900), 60) == at(600)  # the final window ends at the end, however late
    final = record.model_copy(update={"results_at": format_time(at(600))})
    assert figures_due(final, at(2000), 60) is None
    assert figures_due(seen.model_copy(update={"ended": True}), at(2000), 60) is None


def test_the_last_experiment_stays_on_show_until_another_canary_starts() -> None:
    run = Run()
    run.tick(0)
    run.tick(100, manual="promote")
    kept = run.record
    run.tick(200)  # no canary: kept as it is
    assert run.record == kept
    run.state = plan(run.state, "cccc", at(300)).state
    run.tick(301)  # a new experiment starts at the gate's opening, with its own record
    assert run.record is not None and not run.record.ended
    assert [v.revision for v in run.record.variants] == ["bbbb", "cccc"]
    assert run.record.started_at == format_time(at(301))


def test_a_canary_of_another_strategy_clears_the_record(make_policy: Callable[..., RolloutPolicy]) -> None:
    run = Run()
    run.tick(0)
    run.tick(100, manual="promote")
    run.state = plan(run.state, "cccc", at(300)).state
    run.policy = make_policy(steps=(10, 50), interval_s=60)
    run.tick(301, experiment=None)
    assert run.record is None


def test_a_spec_that_moves_on_ends_the_experiment_without_a_decision() -> None:
    run = Run()
    run.tick(0)
    run.state = plan(run.state, "aaaa", at(100)).state  # reverted to A: CanaryAbandoned on reconcile
    run.tick(101)
    assert run.record is not None and run.record.ended and run.record.winner is None
    assert (
        run.record.message == "ended without a decision: spec reverted to the stable revision aaaa; canary bbbb removed"
    )


def test_paused_experiments_conclude_on_time_and_keep_their_split() -> None:
    run = Run()
    run.tick(0)
    run.policy = replace(run.policy, paused=True)
    run.tick(600)
    assert run.record is not None and run.record.concluded and run.state.weight == 20


def test_a_strategy_changed_mid_experiment_ends_it_and_a_later_promotion_is_no_decision(
    make_policy: Callable[..., RolloutPolicy],
) -> None:
    run = Run()
    run.tick(0)
    run.policy = make_policy(steps=(20,), interval_s=60)  # strategy Canary now: a pass promotes
    run.tick(60, verdict="Pass", checks=PASS, experiment=None)
    assert run.state.stable == "bbbb" and run.reasons[-1] == "Promoted"
    assert run.record is not None and run.record.ended and run.record.winner is None
    assert run.state.message == "revision bbbb promoted after 1 step"


def test_with_a_shadow_phase_the_experiment_starts_when_b_gets_its_weight() -> None:
    run = Run()
    run.policy = replace(run.policy, shadow_s=30, shadow_percent=10)
    run.tick(0)  # the gate opens into the shadow phase: mirrored, no weight, no experiment yet
    assert run.state.shadow_started_at == at(0) and run.state.weight == 0 and run.record is None
    run.tick(30, verdict="Pass", checks=PASS)
    assert run.state.weight == 20 and run.record is not None
    assert (run.record.started_at, run.record.ends_at) == (format_time(at(30)), format_time(at(630)))
    assert run.reasons[-2:] == ["CanaryStep", "ExperimentStarted"]
