"""plan(): what a spec revision change does to the rollout."""

from __future__ import annotations

from datetime import datetime

import pytest

from tritonop.api.models import CheckResult, Phase, TrafficTarget
from tritonop.rollout import (
    ApplyRevision,
    Event,
    RolloutState,
    mark_available,
    plan,
    traffic,
)


def test_first_revision_becomes_stable_at_full_weight(at):
    decision = plan(RolloutState(), "rev-a", at(0))

    assert decision.state.stable == "rev-a"
    assert decision.state.canary is None
    assert decision.state.phase == Phase.pending
    assert decision.actions == (ApplyRevision("rev-a"),)
    assert traffic(decision.state) == [TrafficTarget(revision="rev-a", percent=100)]


def test_first_revision_is_ready_once_available(at):
    pending = plan(RolloutState(), "rev-a", at(0)).state

    ready = mark_available(pending)

    assert ready.phase == Phase.ready
    assert ready.stable == "rev-a"


def test_mark_available_leaves_a_canary_rollout_progressing(running_canary):
    state = running_canary()

    assert mark_available(state) == state


@pytest.mark.parametrize(
    "phase, failed",
    [(Phase.ready, None), (Phase.rolled_back, "rev-b"), (Phase.failed, "rev-b")],
)
def test_unchanged_stable_is_reapplied_and_keeps_its_phase(phase, failed, at):
    state = RolloutState(stable="rev-a", failed=failed, phase=phase, message="as before")

    decision = plan(state, "rev-a", at(0))

    assert decision.state == state
    assert decision.actions == (ApplyRevision("rev-a"),)
    assert decision.events == ()


def test_reverting_the_spec_to_stable_abandons_the_canary(running_canary, at):
    state = running_canary(step=1, failed_checks=1)

    decision = plan(state, "stable1", at(30))

    assert decision.state.canary is None
    assert decision.state.phase == Phase.ready
    assert decision.state.weight == 0
    assert decision.state.failed_checks == 0
    assert traffic(decision.state) == [TrafficTarget(revision="stable1", percent=100)]
    assert decision.after_routing == ()  # canary1 is removed once the new state is persisted
    assert decision.before_routing == (ApplyRevision("stable1"),)
    assert decision.events == (
        Event("Normal", "CanaryAbandoned", "spec reverted to the stable revision stable1; canary canary1 removed"),
    )


def test_desired_canary_lets_the_rollout_continue(running_canary, at):
    state = running_canary(step=2, failed_checks=1)

    decision = plan(state, "canary1", at(30))

    assert decision.state == state
    assert decision.actions == (ApplyRevision("canary1"),)
    assert decision.events == ()


@pytest.mark.parametrize("phase", [Phase.rolled_back, Phase.failed])
def test_failed_revision_is_not_retried(phase, at):
    state = RolloutState(stable="rev-a", failed="rev-b", phase=phase, message="rolled back revision rev-b: boom")

    decision = plan(state, "rev-b", at(0))
    again = plan(decision.state, "rev-b", at(5))

    assert decision.state.canary is None
    assert decision.state.failed == "rev-b"
    assert decision.state.phase == phase
    assert decision.actions == ()
    assert decision.events == ()
    assert decision.state.message == (
        "rolled back revision rev-b: boom; revision rev-b is not retried until the spec changes"
    )
    assert again.state == decision.state


def test_new_revision_starts_a_canary_waiting_for_readiness(at):
    state = RolloutState(stable="rev-a", phase=Phase.ready)

    decision = plan(state, "rev-b", at(5))

    started = decision.state
    assert (started.stable, started.canary, started.phase) == ("rev-a", "rev-b", Phase.progressing)
    assert (started.step, started.weight, started.failed_checks) == (0, 0, 0)
    assert started.started_at == at(5)
    assert started.step_started_at is None
    assert started.no_data_since is None
    assert started.waiting_for == "Readiness"
    assert decision.actions == (ApplyRevision("rev-b"),)
    assert [e.reason for e in decision.events] == ["CanaryStarted"]
    assert traffic(started) == [
        TrafficTarget(revision="rev-a", percent=100),
        TrafficTarget(revision="rev-b", percent=0),
    ]


def test_new_revision_drops_the_previously_failed_one_from_the_state(at):
    state = RolloutState(stable="rev-a", failed="rev-b", phase=Phase.rolled_back, message="rolled back")

    decision = plan(state, "rev-c", at(0))

    assert decision.state.failed is None
    assert decision.state.canary == "rev-c"
    assert decision.actions == (ApplyRevision("rev-c"),)


def test_third_revision_mid_canary_replaces_it_from_step_zero(running_canary, at):
    state = running_canary(
        step=2,
        failed_checks=2,
        no_data_since=at(-10),
        last_analysis=(CheckResult(name="success-rate", result="Fail", value=0.5, bound=">= 0.99"),),
    )

    decision = plan(state, "canary2", at(100))

    assert decision.state == RolloutState(
        stable="stable1",
        canary="canary2",
        phase=Phase.progressing,
        started_at=at(100),
        waiting_for="Readiness",
        message=decision.state.message,
    )
    assert decision.actions == (ApplyRevision("canary2"),)
    assert [e.reason for e in decision.events] == ["CanaryAbandoned", "CanaryStarted"]
    assert decision.events[0].message == "canary canary1 superseded by revision canary2"


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(RolloutState(), "rev-a", datetime(2025, 3, 1, 12, 0))


def test_a_first_revision_that_never_became_available_is_replaced_without_a_canary(at) -> None:
    from tritonop.rollout import ApplyRevision, plan

    pending = plan(RolloutState(), "typo", at(0)).state
    assert pending.phase == Phase.pending

    decision = plan(pending, "fixed", at(30))
    assert decision.state.stable == "fixed" and decision.state.canary is None
    assert decision.state.phase == Phase.pending
    assert decision.actions == (ApplyRevision("fixed"),)
    assert [e.reason for e in decision.events] == ["RevisionReplaced"]


def test_a_ready_stable_is_never_replaced_outright(at) -> None:
    from tritonop.rollout import mark_available, plan

    ready = mark_available(plan(RolloutState(), "v1", at(0)).state)
    decision = plan(ready, "v2", at(30))
    assert decision.state.stable == "v1" and decision.state.canary == "v2"
