"""rollout.strategy Experiment: an A/B experiment on top of the canary machine. Pure.

A is the stable revision, B the canary (the revision the spec hashes to). The machine runs
the experiment as a canary of one step at ``rollout.experiment.weight`` that is never
promoted by a passing analysis (``RolloutPolicy.auto_promote`` off): after the gate (and a
shadow phase, if any) B gets its weight; the analysis judges B every interval (and every
tick, sequentially) as it judges a canary, and a failing B is rolled back as one; a passing
B is held at its weight. What an experiment adds, from the machine's decision of each tick:

- its window: it starts when B gets its weight and ends ``duration`` later (``endsAt``);
- its conclusion at ``endsAt``: nothing moves, the split is held until a person decides;
- the decision: the promote annotation picks B (promoted as usual), the abort annotation
  picks A (B goes as in a rollback, reported as the experiment's decision, phase Ready);
- ``status.experiment``: the window, both variants' figures (``analysis.experiment``), the
  comparison, the outcome; kept after the experiment ends, until another canary starts.

A/B/n: ``rollout.experiment.variants`` adds variants beyond B, each the spec with its own
model or image, so its own revision (an ``Arm`` of the state, named in status while B is the
canary, so its children stay; gone with B). ``sync_arms`` keeps them in step with the spec:
no weight until B gets its weight, then each its own (routes give weight only to a revision
with ready pods, I1, so one still starting lends its share to A). ``judge_arms`` counts each
one's failed analyses, taken when B's are, and stops one at failureThreshold (weight 0, its
revision removed; the experiment goes on). ``pick_arm``: the promote annotation naming a
variant's revision makes it the stable; B, which the spec still names, is kept as failed
(not retried until the spec changes), A and the other variants go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from tritonop.analysis.experiment import ExperimentFigures, VariantFigures
from tritonop.api.models import CheckResult, Experiment, ExperimentStatus, ExperimentVariant, Phase, Verdict
from tritonop.durations import parse_duration
from tritonop.rollout.decisions import ApplyRevision, Decision, Event, ScaleRevision
from tritonop.rollout.messages import describe_failures, plural
from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.state import Arm, RolloutState, in_shadow
from tritonop.timestamps import format_time, parse_time


def follow(
    record: ExperimentStatus | None,
    before: RolloutState,
    decision: Decision,
    experiment: Experiment | None,
    now: datetime,
    *,
    figures: ExperimentFigures | None = None,
) -> tuple[Decision, ExperimentStatus | None]:
    """The tick's decision as an experiment tells it, and the new ``status.experiment``.

    ``record``: the stored ``status.experiment``; ``before``: the state the machine decided
    from; ``experiment``: ``rollout.experiment`` when the strategy is Experiment, else None;
    ``figures``: fresh figures, when they were fetched this tick (``figures_due``).
    """
    state = decision.state
    if record is not None and not record.ended and _revision(record, "B") != state.canary:
        return _ended(record, before, decision, decided=experiment is not None)
    if record is not None and not record.ended and experiment is None:
        # B runs on as a canary of the new strategy: no longer an experiment.
        return decision, _closed(record, "ended without a decision: rollout.strategy is no longer Experiment")
    if state.canary is None:
        return decision, record  # the last experiment stays on show
    if experiment is None or state.step_started_at is None:
        return decision, None  # a canary of another strategy, or B not weighted yet (gate, shadow)
    events: list[Event] = []
    before_concluded = record is not None and not record.ended and record.concluded
    if record is None or record.ended or _revision(record, "B") != state.canary:
        record = ExperimentStatus(started_at=format_time(state.step_started_at))
        others = "".join(f", {a.name} (revision {a.revision}) {a.weight}%" for a in state.arms if a.active)
        start = (
            f"experiment: B (revision {state.canary}) gets {experiment.weight}%{others} and A (revision "
            f"{state.stable}) the rest for {experiment.duration}"
        )
        state = replace(state, message=start)
        events.append(Event("Normal", "ExperimentStarted", start))
    if state.weight != experiment.weight and not in_shadow(state):
        state = replace(state, weight=experiment.weight)  # rollout.experiment.weight changed: applied at once
    assert record.started_at is not None and state.stable is not None and state.canary is not None
    ends = parse_time(record.started_at) + timedelta(seconds=parse_duration(experiment.duration))
    record = record.model_copy(
        update={
            "ends_at": format_time(ends),
            "variants": _variants(record, state),
            "concluded": now >= ends,
            "message": (
                f"running until {format_time(ends)}"
                if now < ends
                else f"concluded at {format_time(ends)}; held at {state.weight}% until an annotation names revision "
                f"{state.canary}: promote picks B, abort picks A"
            )
            + _not_run(experiment, state),
        }
    )
    if figures is not None:
        record = _with_figures(record, figures)
    if record.concluded and not before_concluded:
        said = "; ".join(c.statement for c in record.comparison) or "no comparison: too little data"
        concluded = f"experiment {record.message}; {said}"
        state = replace(state, message=concluded)
        events.append(Event("Normal", "ExperimentConcluded", concluded))
    decided = replace(decision, state=state, events=(*decision.events, *events))
    return decided, record


def sync_arms(
    state: RolloutState,
    experiment: Experiment | None,
    revisions: Sequence[tuple[str, str]],
    promote: str | None = None,
) -> tuple[RolloutState, tuple[Event, ...]]:
    """The state with its arms as the spec's variants say. ``revisions``: each variant's name
    and revision (the spec with its settings); one that hashes to A, B or an earlier variant
    is not run. ``promote``: the promote annotation's revision. One that already names a
    variant when it starts was set for an earlier experiment: it is ignored (I6), with a
    Warning, until it no longer names the variant; set again, it picks it."""
    if state.canary is None or experiment is None or state.stable is None:
        return (replace(state, arms=()) if state.arms else state), ()
    weights = {v.name: v.weight for v in experiment.variants}
    held = {(a.name, a.revision): a for a in state.arms}
    weighted = state.step_started_at is not None
    arms: list[Arm] = []
    events: list[Event] = []
    for name, revision in revisions:
        if revision in (state.stable, state.canary, *(a.revision for a in arms)) or name not in weights:
            continue
        arm = held.get((name, revision))
        if arm is None:
            arm = Arm(name, revision, stale_promote=promote == revision)
            if arm.stale_promote:
                message = (
                    f"promote annotation already named revision {revision} (variant {name}) before this "
                    "experiment started: ignored as stale; remove it and set it again to pick the variant"
                )
                events.append(Event("Warning", "AnnotationIgnored", message))
        elif arm.stale_promote and promote != revision:
            arm = replace(arm, stale_promote=False)  # removed or changed: set again, it acts
        arms.append(replace(arm, weight=weights[name] if weighted and arm.active else 0))
    return replace(state, arms=tuple(arms)), tuple(events)


def judge_arms(
    state: RolloutState, policy: RolloutPolicy, verdicts: Mapping[str, tuple[Verdict, Sequence[CheckResult]]]
) -> tuple[RolloutState, tuple[Event, ...]]:
    """Count each weighted variant's failed analysis (``verdicts`` by name, taken when B's
    analysis was); at rollout.failureThreshold it is stopped. Only a Fail counts: a variant
    without data has no ready pods, so no weight either (I1)."""
    arms, events = [], []
    for arm in state.arms:
        verdict = verdicts.get(arm.name)
        if verdict is None or not arm.active or verdict[0] != "Fail":
            arms.append(arm)
            continue
        failed = arm.failed_checks + 1
        cause = describe_failures(tuple(verdict[1]))
        if failed >= policy.failure_threshold:
            why = f"stopped after {plural(failed, 'failed check')}: {cause}"
            arms.append(replace(arm, failed_checks=failed, weight=0, stopped=why))
            message = f"experiment variant {arm.name} (revision {arm.revision}) {why}; the experiment goes on"
            events.append(Event("Warning", "VariantStopped", message))
        else:
            arms.append(replace(arm, failed_checks=failed))
            message = (
                f"experiment variant {arm.name} (revision {arm.revision}) failed analysis "
                f"({failed}/{policy.failure_threshold}): {cause}"
            )
            events.append(Event("Warning", "AnalysisFailed", message))
    return replace(state, arms=tuple(arms)), tuple(events)


def armed(state: RolloutState, revision: str | None) -> Arm | None:
    """The running variant beyond B whose revision this is, unless the annotation naming it is
    stale (it named the revision before the variant started, I6)."""
    return next((a for a in state.arms if a.active and a.revision == revision and not a.stale_promote), None)


def pick_arm(state: RolloutState, arm: Arm) -> Decision:
    """The promote annotation named a variant beyond B: it becomes the stable, re-applied with
    the spec's replicas and autoscaler; B is kept at 0 replicas as failed (the spec still names
    it: not retried until the spec changes); A and the other variants go once this status is
    stored and the new stable serves (removable_revisions)."""
    assert state.canary is not None
    b = state.canary
    message = (
        f"experiment decided for {arm.name}: revision {arm.revision} promoted by annotation; the spec's "
        f"revision {b} (B) is not retried until the spec changes: set the spec to {arm.name}'s settings"
    )
    picked = state.without_canary(stable=arm.revision, failed=b, phase=Phase.ready, message=message)
    actions = (ApplyRevision(arm.revision), ScaleRevision(b, 0))
    return Decision(picked, actions, (Event("Normal", "Promoted", message),))


def figures_due(record: ExperimentStatus | None, now: datetime, interval_s: float) -> datetime | None:
    """The end of the window to fetch figures for now, or None: every interval while the
    experiment runs (up to now), once more at its end (the final figures), then never."""
    if record is None or record.ended or record.started_at is None or record.ends_at is None:
        return None
    ends = parse_time(record.ends_at)
    last = None if record.results_at is None else parse_time(record.results_at)
    if last is not None and last >= ends:
        return None
    at = min(now, ends)
    if at - parse_time(record.started_at) < timedelta(seconds=1):
        return None  # no window to speak of yet
    if at == ends or last is None or (now - last).total_seconds() >= interval_s:
        return at
    return None


def _ended(
    record: ExperimentStatus, before: RolloutState, decision: Decision, *, decided: bool
) -> tuple[Decision, ExperimentStatus]:
    """B is no longer the canary: picked, rolled back, or left behind by a spec change.
    ``decided``: the strategy is still Experiment, so a promotion or an abort was an annotation's."""
    state = decision.state
    b, a = _revision(record, "B"), _revision(record, "A")
    reasons = {e.reason for e in decision.events}
    early = "" if record.concluded else " before its end"
    # The variant picked is one of the arms the decision was made on: the record lists those of
    # its last tick, which a spec change since (a variant's new model) may have replaced.
    picked = next((arm for arm in before.arms if arm.revision == state.stable), None)
    if decided and before.canary == b and picked is not None and "Promoted" in reasons:
        record = record.model_copy(update={"variants": _variants(record, before)})
        return decision, _closed(record, state.message or f"experiment decided for {picked.name}", winner=picked.name)
    if decided and before.canary == b and "Promoted" in reasons:
        message = f"experiment decided for B{early}: revision {b} promoted by annotation"
        events = tuple(replace(e, message=message) if e.reason == "Promoted" else e for e in decision.events)
        state = replace(state, message=message)
        return replace(decision, state=state, events=events), _closed(record, message, winner="B")
    if decided and before.canary == b and "Aborted" in reasons:
        # The spec still names B: it stays failedRevision (not retried until the spec changes),
        # but nothing failed: A serves, as decided.
        message = (
            f"experiment decided for A{early}: revision {a} kept, revision {b} removed by the abort annotation; "
            f"revision {b} is not retried until the spec changes"
        )
        events = tuple(
            Event("Normal", "ExperimentDecided", message) if e.reason == "Aborted" else e for e in decision.events
        )
        state = replace(state, phase=Phase.ready, message=message)
        return replace(decision, state=state, events=events), _closed(record, message, winner="A")
    return decision, _closed(record, f"ended without a decision: {state.message or 'the spec moved on'}")


def _not_run(experiment: Experiment, state: RolloutState) -> str:
    """Say which of the spec's variants beyond B do not run (sync_arms left them out)."""
    running = {a.name for a in state.arms}
    names = [v.name for v in experiment.variants if v.name not in running]
    if not names:
        return ""
    return f"; not run: {', '.join(names)} (the same revision as A, B or an earlier variant)"


def _closed(record: ExperimentStatus, message: str, *, winner: str | None = None) -> ExperimentStatus:
    return record.model_copy(update={"ended": True, "winner": winner, "message": message})


def _revision(record: ExperimentStatus, name: str) -> str | None:
    return next((v.revision for v in record.variants if v.name == name), None)


def _variants(record: ExperimentStatus, state: RolloutState) -> list[ExperimentVariant]:
    """A, B and the variants beyond B with their current weights, keeping the figures already
    recorded (of a stopped variant too: it stays listed at 0%)."""
    assert state.stable is not None and state.canary is not None
    previous = {(v.name, v.revision): v for v in record.variants}
    arms = tuple((a.name, a.revision, a.weight, a.stopped) for a in state.arms)
    a_share = 100 - state.weight - sum(a.weight for a in state.arms if a.active)
    sides = (("A", state.stable, a_share, None), ("B", state.canary, state.weight, None), *arms)
    return [
        previous[(name, revision)].model_copy(update={"weight": share, "stopped": stopped})
        if (name, revision) in previous
        else ExperimentVariant(name=name, revision=revision, weight=share, stopped=stopped)
        for name, revision, share, stopped in sides
    ]


def _with_figures(record: ExperimentStatus, figures: ExperimentFigures) -> ExperimentStatus:
    if not figures.complete:
        return record.model_copy(update={"problems": [f"not updated at {format_time(figures.at)}", *figures.problems]})
    sides = figures.by_variant
    update = {
        "variants": [_figured(v, sides[v.name]) if v.name in sides else v for v in record.variants],
        "comparison": figures.comparison,
        "results_at": format_time(figures.at),
        "problems": figures.problems,
    }
    return record.model_copy(update=update)


def _figured(variant: ExperimentVariant, figures: VariantFigures) -> ExperimentVariant:
    return variant.model_copy(
        update={
            "requests": figures.requests,
            "success_rate": None if figures.success_rate is None else round(figures.success_rate, 6),
            "mean_latency_ms": None if figures.mean_latency_ms is None else round(figures.mean_latency_ms, 3),
            "metrics": {name: float(format(value, ".6g")) for name, value in figures.metrics.items()},
        }
    )
