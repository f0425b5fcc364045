"""The canary state machine: plan() on every reconcile, advance() on every rollout tick.

Pure: no I/O, no clock. ``now`` is a timezone-aware datetime passed in by the caller.
See docs/rollout.md for the state diagram.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tritonop.api.models import CheckResult, Phase, Verdict
from tritonop.durations import format_duration
from tritonop.rollout.decisions import ApplyRevision, Decision, Event, ScaleRevision
from tritonop.rollout.manual import ManualAction
from tritonop.rollout.messages import describe_failures, describe_missing_data, plural
from tritonop.rollout.policy import RolloutPolicy
from tritonop.rollout.schedule import analysis_due
from tritonop.rollout.state import RolloutState, in_shadow, named_revisions, waiting_for_traffic
from tritonop.timestamps import require_aware

# Values of RolloutState.waiting_for other than a gate's "<reason>: <message>".
WAITING_READINESS = "Readiness"
WAITING_ACCEPTANCE = "Acceptance"
WAITING_PAUSED = "Paused"


@dataclass(frozen=True)
class GateResult:
    """What the handler found out about a canary that waits for traffic."""

    ready: bool  # Triton ready with the model loaded
    reason: str  # short CamelCase cause, e.g. "ModelLoadFailed"
    message: str
    acceptance_passed: bool | None = None  # None: not run (not required, or not ready yet)


def plan(
    state: RolloutState, desired: str, now: datetime, *, manual_at_start: tuple[ManualAction, ...] = ()
) -> Decision:
    """React to the revision the current spec hashes to.

    ``manual_at_start``: the manual annotations that already name ``desired``; should it
    start as a canary, they are stale (set for an earlier canary) and ignored (I6).
    """
    require_aware(now)
    if state.stable is None:
        # First revision: nothing to compare against, it serves 100% once available.
        first = RolloutState(stable=desired, phase=Phase.pending, message=f"deploying revision {desired}")
        return Decision(first, (ApplyRevision(desired),))
    if state.phase == Phase.pending and state.canary is None and desired != state.stable:
        # The first revision never served (a typo in the image, say; the handler marks one with
        # any ready pod available first): there is nothing to protect with a canary. Replace it
        # outright; its children go once this status is persisted (see removable_revisions).
        message = f"revision {state.stable} never became available; replaced by revision {desired}"
        replaced = RolloutState(stable=desired, phase=Phase.pending, message=message)
        return Decision(replaced, (ApplyRevision(desired),), (Event("Normal", "RevisionReplaced", message),))
    if desired == state.stable:
        if state.canary is None:
            # Re-applying carries autoscaling changes, which create no revision.
            return Decision(state, (ApplyRevision(desired),))
        message = f"spec reverted to the stable revision {state.stable}; canary {state.canary} removed"
        reverted = state.without_canary(phase=Phase.ready, message=message)
        return Decision(reverted, (ApplyRevision(desired),), (Event("Normal", "CanaryAbandoned", message),))
    if desired == state.canary:
        return Decision(state, (ApplyRevision(desired),))
    if desired == state.failed and state.canary is None:
        return Decision(replace(state, message=_with_not_retried(state.message, desired)))
    return _start_canary(state, desired, now, manual_at_start)


def mark_available(state: RolloutState) -> RolloutState:
    """The handler saw the stable Deployment available: a first revision becomes Ready."""
    if state.canary is None and state.phase == Phase.pending:
        return replace(state, phase=Phase.ready, message=f"revision {state.stable} serves 100%")
    return state


def advance(
    state: RolloutState,
    policy: RolloutPolicy,
    now: datetime,
    *,
    gate: GateResult | None = None,
    verdict: Verdict | None = None,
    checks: Sequence[CheckResult] = (),
    manual: ManualAction | None = None,
    conclusive: bool = False,
) -> Decision:
    """One rollout tick: manual action, pause, gate, or analysis verdict, in that order.

    ``conclusive``: the verdict comes from a sequential test that may be read at any moment
    (analysis.mode sequential); a conclusive ``Fail`` then rolls back at once, due or not and
    whatever failureThreshold, since its false-rollback rate is already bounded by alpha.
    """
    require_aware(now)
    if state.canary is None:
        return Decision(state)
    if state.started_at is None:
        # A status written without startedAt (by hand) starts the readiness clock now.
        state = replace(state, started_at=now)
    if manual == "abort":
        return _reject(
            state, Phase.rolled_back, "Aborted", f"rolled back revision {state.canary}: aborted by annotation"
        )
    if manual == "promote":
        return _promote(state, by_annotation=True)
    if policy.paused:
        return Decision(replace(state, waiting_for=WAITING_PAUSED))
    if waiting_for_traffic(state):
        return _pass_gate(state, policy, now, gate)
    state = replace(state, waiting_for=None)  # past the gate only a pause is waited for
    if conclusive and verdict == "Fail":
        return _fail_fast(state, tuple(checks))
    if verdict is None or not analysis_due(state, policy, now):
        return Decision(state)
    return _judge(state, policy, now, verdict, tuple(checks))


# ---------------------------------------------------------------- transitions


def _start_canary(
    state: RolloutState, desired: str, now: datetime, stale: tuple[ManualAction, ...] = ()
) -> Decision:
    # A superseded canary and an earlier failed revision are no longer named by the state:
    # their children go once it is persisted (see removable_revisions).
    actions = (ApplyRevision(desired),)
    events: list[Event] = []
    if state.canary is not None:
        events.append(Event("Normal", "CanaryAbandoned", f"canary {state.canary} superseded by revision {desired}"))
    events.append(Event("Normal", "CanaryStarted", f"revision {desired} started as canary of {state.stable}"))
    if stale:
        message = (
            f"{' and '.join(stale)} annotation already named revision {desired} before this canary started: "
            "ignored as stale; remove it and set it again to act on this canary"
        )
        events.append(Event("Warning", "AnnotationIgnored", message))
    started = state.without_canary(
        canary=desired,
        failed=None,
        phase=Phase.progressing,
        started_at=now,
        waiting_for=WAITING_READINESS,
        message=f"canary {desired} waits for readiness before it gets traffic",
        ignored_manual=stale,
    )
    return Decision(started, actions, tuple(events))


def _pass_gate(state: RolloutState, policy: RolloutPolicy, now: datetime, gate: GateResult | None) -> Decision:
    if gate is None:
        waiting = WAITING_READINESS if state.waiting_for in (None, WAITING_PAUSED) else state.waiting_for
        return Decision(replace(state, waiting_for=waiting))
    assert state.started_at is not None  # set by advance()
    timeout = policy.readiness_timeout_s
    timed_out = now - state.started_at >= timedelta(seconds=timeout)
    cause = f"{gate.reason}: {gate.message}" if gate.message else gate.reason
    if not gate.ready:
        if timed_out:
            return _reject(
                state,
                Phase.failed,
                "RolloutFailed",
                f"revision {state.canary} not ready after {format_duration(timeout)}: {cause}",
            )
        return Decision(replace(state, waiting_for=cause))
    if policy.acceptance_required and gate.acceptance_passed is not True:
        if gate.acceptance_passed is False:
            return _reject(state, Phase.failed, "RolloutFailed", f"revision {state.canary} failed acceptance: {cause}")
        if timed_out:
            return _reject(
                state,
                Phase.failed,
                "RolloutFailed",
                f"revision {state.canary} not accepted after {format_duration(timeout)}: acceptance did not run",
            )
        return Decision(replace(state, waiting_for=WAITING_ACCEPTANCE))
    if policy.shadow_s is not None:
        return _enter_shadow(replace(state, waiting_for=None), policy, now)
    if not policy.steps:
        return _promote(state, by_annotation=False)
    return _enter_step(replace(state, waiting_for=None), policy, now, 0)


def _enter_shadow(state: RolloutState, policy: RolloutPolicy, now: datetime) -> Decision:
    assert policy.shadow_s is not None
    what = f"{policy.shadow_percent}% of requests mirrored to canary {state.canary} for {format_duration(policy.shadow_s)}"
    shadowed = replace(state, shadow_started_at=now, message=f"shadow: {what}; clients get the stable's answers")
    return Decision(shadowed, events=(Event("Normal", "ShadowStarted", what),))


def _enter_step(state: RolloutState, policy: RolloutPolicy, now: datetime, step: int) -> Decision:
    weight = policy.steps[step]
    position = f"step {step + 1} of {len(policy.steps)}"
    stepped = replace(
        state, step=step, weight=weight, step_started_at=now, message=f"canary {state.canary} at {weight}% ({position})"
    )
    return Decision(
        stepped, events=(Event("Normal", "CanaryStep", f"weight {weight}% for {state.canary} ({position})"),)
    )


def _judge(
    state: RolloutState, policy: RolloutPolicy, now: datetime, verdict: Verdict, checks: tuple[CheckResult, ...]
) -> Decision:
    # Every verdict restarts the interval: the next judgement covers fresh data at this weight
    # (in the shadow phase, another shadow period).
    shadow = in_shadow(state)
    judged = replace(state, last_analysis=checks)
    judged = replace(judged, shadow_started_at=now) if shadow else replace(judged, step_started_at=now)
    if verdict == "Pass":
        judged = replace(judged, no_data_since=None)
        if shadow and policy.steps:
            return _enter_step(judged, policy, now, 0)
        if not shadow and not policy.auto_promote and state.step + 1 >= len(policy.steps):
            return Decision(judged)  # an Experiment holds its split until a person decides
        if shadow or state.step + 1 >= len(policy.steps):
            return _promote(judged, by_annotation=False)
        return _enter_step(judged, policy, now, state.step + 1)
    if verdict == "Fail":
        return _count_failure(replace(judged, no_data_since=None), policy, describe_failures(checks))
    missing = describe_missing_data(checks)
    if state.no_data_since is None:
        hold = format_duration(policy.no_data_timeout_s)
        message = (
            f"no analysis data for {state.canary} ({verdict}): {missing}; holding {state.weight}% for up to {hold}"
        )
        return Decision(replace(judged, no_data_since=now), events=(Event("Warning", "AnalysisNoData", message),))
    silent = now - state.no_data_since
    if silent < timedelta(seconds=policy.no_data_timeout_s):
        return Decision(judged)
    # Fail closed: no data past the timeout is judged like a failed check.
    return _count_failure(judged, policy, f"no data for {format_duration(silent.total_seconds())}: {missing}")


def _fail_fast(state: RolloutState, checks: tuple[CheckResult, ...]) -> Decision:
    """A sequential test is conclusive: roll back now, without waiting for the interval."""
    failed = replace(state, last_analysis=checks, failed_checks=state.failed_checks + 1, no_data_since=None)
    message = f"rolled back revision {state.canary}: {describe_failures(checks)}"
    return _reject(failed, Phase.rolled_back, "RolledBack", message)


def _count_failure(state: RolloutState, policy: RolloutPolicy, cause: str) -> Decision:
    failed_checks = state.failed_checks + 1
    counted = replace(state, failed_checks=failed_checks)
    if failed_checks >= policy.failure_threshold:
        message = f"rolled back revision {state.canary}: {cause} ({plural(failed_checks, 'failed check')})"
        return _reject(counted, Phase.rolled_back, "RolledBack", message)
    progress = f"{failed_checks}/{policy.failure_threshold}"
    where = "in its shadow phase" if in_shadow(state) else f"at {state.weight}%"
    message = f"canary {state.canary} failed analysis ({progress}) {where}: {cause}"
    return Decision(replace(counted, message=message), events=(Event("Warning", "AnalysisFailed", message),))


def _promote(state: RolloutState, *, by_annotation: bool) -> Decision:
    assert state.canary is not None
    if by_annotation:
        message = f"revision {state.canary} promoted by annotation at {state.weight}%"
    else:
        steps_done = 0 if state.step_started_at is None else state.step + 1
        message = f"revision {state.canary} promoted after {plural(steps_done, 'step')}"
    promoted = state.without_canary(stable=state.canary, failed=None, phase=Phase.ready, message=message)
    # Re-applied as a stable: replica-split canaries get the spec's replicas and autoscaler back.
    # The old stable stays until this status is persisted and the new one serves (removable_revisions).
    return Decision(promoted, (ApplyRevision(state.canary),), (Event("Normal", "Promoted", message),))


def _reject(state: RolloutState, phase: Phase, reason: str, message: str) -> Decision:
    """Roll back or fail: all traffic to stable; the canary is kept at 0 replicas for inspection."""
    assert state.canary is not None
    rejected = state.without_canary(failed=state.canary, phase=phase, message=_with_not_retried(message, state.canary))
    return Decision(rejected, (ScaleRevision(state.canary, 0),), (Event("Warning", reason, message),))


def _with_not_retried(message: str | None, revision: str) -> str:
    notice = f"revision {revision} is not retried until the spec changes"
    if not message:
        return notice
    return message if message.endswith(notice) else f"{message}; {notice}"


def removable_revisions(persisted: RolloutState, live: Mapping[str, int]) -> list[str]:
    """Which live revisions (name -> ready pods) may be deleted now, given the persisted state.

    Only revisions the persisted status names in none of stable, canary, failed and an
    experiment's running variants (``named_revisions``): a
    decision that stops naming a revision must be stored before its children go, or a lost
    status write would leave the state pointing at a deleted revision. One that still has
    ready pods goes only once the stable has ready pods too, so capacity is never removed
    before its successor serves.
    """
    named = named_revisions(persisted)
    stable_serves = persisted.stable is not None and live.get(persisted.stable, 0) > 0
    return sorted(r for r, ready in live.items() if r not in named and (ready == 0 or stable_serves))


def recovered_state(live: Mapping[str, int], routed: str | None) -> RolloutState:
    """The state to resume from when status holds none but revisions exist (I3).

    ``live`` maps each revision that has a Deployment to its ready pods; ``routed`` is the
    stable the entry Service names (its stable-revision annotation), else the one revision
    it selects, if any. The stable is the routed revision, else
    the one with the most ready pods; a spec that hashes elsewhere then starts a canary
    against it (plan), never a "first deploy" that would route 100% to pods not yet up.
    Empty when nothing exists (a true first deploy).
    """
    if not live:
        return RolloutState()
    stable = routed if routed is not None and routed in live else max(live, key=lambda r: (live[r], r))
    phase = Phase.ready if live[stable] > 0 else Phase.pending
    message = f"status held no rollout state; resumed from the cluster with stable revision {stable}"
    return RolloutState(stable=stable, phase=phase, message=message)
