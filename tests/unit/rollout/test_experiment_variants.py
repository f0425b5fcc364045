"""A/B/n: rollout.experiment.variants beyond B on the pure core: named while B is the canary,
weighted once B is, judged and stopped alone, picked by the promote annotation; every
variant's figures and comparisons in status.experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.unit.rollout.clock import T0
from tritonop.analysis.experiment import ExperimentFigures, VariantFigures, compare
from tritonop.api.models import CheckResult, Experiment, ExperimentStatus, InferenceServiceStatus, Phase, Rollout
from tritonop.rollout import (
    ApplyRevision,
    Decision,
    GateResult,
    RolloutPolicy,
    RolloutState,
    ScaleRevision,
    advance,
    plan,
    removable_revisions,
    traffic,
)
from tritonop.rollout.experiment import armed, follow, judge_arms, pick_arm, sync_arms
from tritonop.rollout.manual import ManualAction
from tritonop.rollout.state import named_revisions

PASS = (CheckResult(name="successRate", result="Pass", value=1.0, bound=">= 0.99"),)
FAIL = (CheckResult(name="successRate", result="Fail", value=0.7, bound=">= 0.99"),)
READY = GateResult(True, "Ready", "")
EXPERIMENT = Experiment.model_validate(
    {
        "weight": 20,
        "duration": "10m",
        "variants": [
            {"name": "int8", "weight": 15, "model": {"version": "3"}},
            {"name": "distilled", "weight": 10, "model": {"storageUri": "s3://m/distilled"}},
        ],
    }
)
ROLLOUT = Rollout.model_validate(
    {"strategy": "Experiment", "interval": "1m", "failureThreshold": 2, "experiment": EXPERIMENT.dump()}
)
REVISIONS = (("int8", "cccc"), ("distilled", "dddd"))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def split(state: RolloutState) -> list[tuple[str, int]]:
    return [(t.revision, t.percent) for t in traffic(state)]


@dataclass
class Run:
    """As the orchestrator drives a tick: advance (or a variant picked), sync and judge the
    variants, then follow; the status round trip in between, as a restart would read it."""

    policy: RolloutPolicy = field(default_factory=lambda: RolloutPolicy.from_spec(ROLLOUT))
    state: RolloutState = field(
        default_factory=lambda: sync_arms(
            plan(RolloutState(stable="aaaa", phase=Phase.ready), "bbbb", T0).state, EXPERIMENT, REVISIONS
        )[0]
    )
    record: ExperimentStatus | None = None
    reasons: list[str] = field(default_factory=list)
    last: Decision | None = None

    def tick(
        self,
        seconds: float,
        *,
        verdict: str | None = None,
        arm_verdicts: dict[str, str] | None = None,
        manual: ManualAction | None = None,
        pick: str | None = None,
        figures: ExperimentFigures | None = None,
        experiment: Experiment = EXPERIMENT,
        revisions: Sequence[tuple[str, str]] = REVISIONS,
    ) -> Decision:
        before = self.state
        arm = armed(before, pick)
        if arm is not None:
            decision = pick_arm(before, arm)
        else:
            checks = PASS if verdict == "Pass" else FAIL if verdict == "Fail" else ()
            decision = advance(
                before,
                self.policy,
                at(seconds),
                gate=READY,
                verdict=verdict,
                checks=checks,
                manual=manual,  # type: ignore[arg-type]
            )
        state, ignored = sync_arms(decision.state, experiment, revisions, pick)  # pick: the annotation now
        verdicts = {name: (v, PASS if v == "Pass" else FAIL) for name, v in (arm_verdicts or {}).items()}
        state, events = judge_arms(state, self.policy, verdicts)  # type: ignore[arg-type]
        decision = Decision(state, decision.actions, (*decision.events, *ignored, *events))
        decision, self.record = follow(self.record, before, decision, experiment, at(seconds), figures=figures)
        stored = decision.state.apply_to(InferenceServiceStatus(), self.policy, at(seconds))
        self.state = RolloutState.from_status(stored)
        assert self.state.arms == decision.state.arms  # status.canary.variants round-trips
        self.last = decision
        self.reasons += [e.reason for e in decision.events]
        return decision


def test_variants_are_named_at_the_canary_s_start_and_weighted_with_b() -> None:
    run = Run()
    assert [(a.name, a.revision, a.weight) for a in run.state.arms] == [("int8", "cccc", 0), ("distilled", "dddd", 0)]
    assert split(run.state) == [("aaaa", 100), ("bbbb", 0), ("cccc", 0), ("dddd", 0)]
    assert named_revisions(run.state) == {"aaaa", "bbbb", "cccc", "dddd"}  # their children stay

    run.tick(0)  # B's gate opens: the experiment starts, every variant at its weight
    assert split(run.state) == [("aaaa", 55), ("bbbb", 20), ("cccc", 15), ("dddd", 10)]
    assert run.record is not None
    assert [(v.name, v.revision, v.weight) for v in run.record.variants] == [
        ("A", "aaaa", 55),
        ("B", "bbbb", 20),
        ("int8", "cccc", 15),
        ("distilled", "dddd", 10),
    ]
    assert run.state.message == (
        "experiment: B (revision bbbb) gets 20%, int8 (revision cccc) 15%, distilled (revision dddd) 10% and "
        "A (revision aaaa) the rest for 10m"
    )


def test_a_variant_that_hashes_to_a_or_b_is_not_run_and_one_left_out_of_the_spec_goes() -> None:
    state = plan(RolloutState(stable="aaaa", phase=Phase.ready), "bbbb", T0).state
    assert sync_arms(state, EXPERIMENT, (("int8", "aaaa"), ("distilled", "bbbb")))[0].arms == ()
    twins = sync_arms(state, EXPERIMENT, (("int8", "cccc"), ("distilled", "cccc")))[0].arms  # the same settings twice
    assert [(a.name, a.revision) for a in twins] == [("int8", "cccc")]
    run = Run()
    run.tick(0, revisions=(("int8", "cccc"), ("distilled", "cccc")))
    assert run.record is not None and run.record.message is not None
    assert run.record.message.endswith("; not run: distilled (the same revision as A, B or an earlier variant)")
    run = Run()
    run.tick(0)
    fewer = Experiment.model_validate({**EXPERIMENT.dump(), "variants": [EXPERIMENT.dump()["variants"][1]]})
    run.tick(30, experiment=fewer, revisions=REVISIONS[1:])
    assert split(run.state) == [("aaaa", 70), ("bbbb", 20), ("dddd", 10)]
    assert "cccc" not in named_revisions(run.state)
    assert removable_revisions(run.state, {"aaaa": 2, "bbbb": 1, "cccc": 1, "dddd": 1}) == ["cccc"]
    assert run.record is not None and [v.name for v in run.record.variants] == ["A", "B", "distilled"]


def test_a_failing_variant_is_stopped_alone_and_the_experiment_goes_on() -> None:
    run = Run()
    run.tick(0)
    run.tick(60, verdict="Pass", arm_verdicts={"int8": "Fail", "distilled": "Pass"})
    assert [a.failed_checks for a in run.state.arms] == [1, 0]
    assert run.reasons[-1] == "AnalysisFailed"
    run.tick(120, verdict="Pass", arm_verdicts={"int8": "Fail", "distilled": "Pass"})
    int8 = run.state.arms[0]
    assert int8.stopped is not None and int8.stopped.startswith("stopped after 2 failed checks: successRate")
    assert run.reasons[-1] == "VariantStopped"
    assert split(run.state) == [("aaaa", 70), ("bbbb", 20), ("dddd", 10)]  # its share back to A
    assert "cccc" not in named_revisions(run.state)  # its children go once this is stored
    assert run.state.canary == "bbbb" and run.state.phase == Phase.progressing
    run.tick(180, verdict="Pass", arm_verdicts={"int8": "Fail"})  # a stopped variant stays stopped
    assert run.state.arms[0].weight == 0 and run.state.arms[0].failed_checks == 2
    assert run.record is not None and [(v.name, v.weight) for v in run.record.variants][2] == ("int8", 0)
    assert run.record.variants[2].stopped == int8.stopped  # said in status.experiment too, after B is gone


def test_no_data_or_an_error_does_not_count_against_a_variant() -> None:
    run = Run()
    run.tick(0)
    run.tick(60, verdict="Pass", arm_verdicts={"int8": "NoData", "distilled": "Error"})
    assert [a.failed_checks for a in run.state.arms] == [0, 0]


def test_the_promote_annotation_on_a_variant_makes_it_the_stable_and_keeps_b_as_failed() -> None:
    run = Run()
    run.tick(0)
    decision = run.tick(300, pick="cccc")
    assert (run.state.stable, run.state.canary, run.state.failed) == ("cccc", None, "bbbb")
    assert run.state.arms == () and run.state.phase == Phase.ready
    assert decision.actions == (ApplyRevision("cccc"), ScaleRevision("bbbb", 0))
    assert split(run.state) == [("cccc", 100)]
    assert run.record is not None and run.record.ended and run.record.winner == "int8"
    assert run.record.message is not None and run.record.message.startswith(
        "experiment decided for int8: revision cccc promoted by annotation"
    )
    # A and the other variant go, but only once the new stable serves.
    assert removable_revisions(run.state, {"aaaa": 2, "bbbb": 0, "cccc": 0, "dddd": 1}) == []
    assert removable_revisions(run.state, {"aaaa": 2, "bbbb": 0, "cccc": 1, "dddd": 1}) == ["aaaa", "dddd"]
    # The spec still hashes to B, which is failed: nothing starts again.
    assert plan(run.state, "bbbb", at(400)).actions == ()


def test_a_promote_annotation_naming_a_variant_before_it_started_is_stale_until_set_again() -> None:
    # Left from an earlier experiment whose variant had the same settings (a Git revert back to them).
    start = plan(RolloutState(stable="aaaa", phase=Phase.ready), "bbbb", T0).state
    started, ignored = sync_arms(start, EXPERIMENT, REVISIONS, "cccc")
    assert [e.reason for e in ignored] == ["AnnotationIgnored"] and "revision cccc (variant int8)" in ignored[0].message
    assert [a.stale_promote for a in started.arms] == [True, False]
    assert armed(started, "cccc") is None
    run = Run(state=started)
    run.tick(0, pick="cccc")
    run.tick(300, pick="cccc")  # still there, after a status round trip: still ignored
    assert (run.state.stable, run.state.canary) == ("aaaa", "bbbb") and run.state.arms[0].stale_promote
    assert "AnnotationIgnored" not in run.reasons  # said once, when the variant started
    run.tick(310)  # removed
    assert not run.state.arms[0].stale_promote
    run.tick(320, pick="cccc")  # set again: it picks the variant
    assert (run.state.stable, run.state.failed) == ("cccc", "bbbb")
    # An annotation set after the variant started acts at once (the usual case).
    fresh = Run()
    fresh.tick(0)
    fresh.tick(60, pick="dddd")
    assert fresh.state.stable == "dddd"


def test_a_stopped_variant_cannot_be_picked() -> None:
    run = Run()
    run.tick(0)
    run.tick(60, verdict="Pass", arm_verdicts={"int8": "Fail"})
    run.tick(120, verdict="Pass", arm_verdicts={"int8": "Fail"})
    assert armed(run.state, "cccc") is None
    run.tick(180, pick="cccc")
    assert run.state.stable == "aaaa" and run.state.canary == "bbbb"


def test_b_rolled_back_or_promoted_takes_the_variants_with_it() -> None:
    run = Run()
    run.tick(0)
    run.tick(60, verdict="Fail")
    run.tick(120, verdict="Fail")
    assert (run.state.stable, run.state.canary, run.state.failed) == ("aaaa", None, "bbbb")
    assert run.state.arms == () and split(run.state) == [("aaaa", 100)]
    assert removable_revisions(run.state, {"aaaa": 2, "bbbb": 0, "cccc": 1, "dddd": 1}) == ["cccc", "dddd"]

    promoted = Run()
    promoted.tick(0)
    promoted.tick(60, manual="promote")
    assert (promoted.state.stable, promoted.state.arms) == ("bbbb", ())
    assert promoted.record is not None and promoted.record.winner == "B"


def test_every_variant_gets_figures_and_a_bonferroni_corrected_comparison_with_a() -> None:
    run = Run()
    run.tick(0)
    a = VariantFigures(requests=5500, success_rate=0.999, mean_latency_ms=10.0)
    b = VariantFigures(requests=2000, success_rate=0.998, mean_latency_ms=11.0)
    c = VariantFigures(requests=1500, success_rate=0.90, mean_latency_ms=9.0)
    d = VariantFigures(requests=1000, success_rate=0.999, mean_latency_ms=9.5)
    comparison = [
        *compare(a, b, None, variant="B", compared=3),
        *compare(a, c, None, variant="int8", compared=3),
        *compare(a, d, None, variant="distilled", compared=3),
    ]
    figures = ExperimentFigures(at(60), a, b, comparison, {"int8": c, "distilled": d})
    run.tick(60, verdict="Pass", figures=figures)
    assert run.record is not None
    assert [(v.name, v.requests) for v in run.record.variants] == [
        ("A", 5500),
        ("B", 2000),
        ("int8", 1500),
        ("distilled", 1000),
    ]
    assert [(c.variant, c.metric) for c in run.record.comparison] == [
        ("B", "successRate"),
        ("int8", "successRate"),
        ("distilled", "successRate"),
    ]
    int8 = run.record.comparison[1]
    assert int8.significant and int8.statement.startswith("int8's success rate is lower than A's by 9.89 points")
    assert "98.33% CI" in int8.statement and "Bonferroni for 3 variants" in int8.statement


def test_bonferroni_widens_each_interval() -> None:
    a = VariantFigures(requests=4000, success_rate=0.995)
    b = VariantFigures(requests=1000, success_rate=0.99)
    (alone,) = compare(a, b, None)
    (among_three,) = compare(a, b, None, variant="B", compared=3)
    assert among_three.low < alone.low and among_three.high > alone.high
    assert "95% CI" in alone.statement and "Bonferroni" not in alone.statement
