"""advance() while the canary waits for traffic: readiness and acceptance gates."""

from __future__ import annotations

import pytest

from tritonop.api.models import Phase, TrafficTarget
from tritonop.rollout import (
    ApplyRevision,
    Event,
    GateResult,
    RolloutState,
    ScaleRevision,
    advance,
    plan,
    traffic,
)

LOAD_FAILED = GateResult(ready=False, reason="ModelLoadFailed", message="failed to load 'resnet50'")
READY = GateResult(ready=True, reason="Ready", message="model resnet50 ready")


@pytest.fixture
def gated(at) -> RolloutState:
    """Canary rev-b started at t=0 over stable rev-a, waiting for readiness."""
    return plan(RolloutState(stable="rev-a", phase=Phase.ready), "rev-b", at(0)).state


def test_no_gate_result_waits(gated, make_policy, at):
    decision = advance(gated, make_policy(), at(599))

    assert decision.state == gated
    assert decision.actions == ()
    assert decision.events == ()


def test_not_ready_before_timeout_waits_with_the_reason(gated, make_policy, at):
    decision = advance(gated, make_policy(readiness_timeout_s=600), at(599), gate=LOAD_FAILED)

    assert decision.state.phase == Phase.progressing
    assert decision.state.canary == "rev-b"
    assert decision.state.weight == 0
    assert decision.state.waiting_for == "ModelLoadFailed: failed to load 'resnet50'"
    assert decision.actions == ()


@pytest.mark.parametrize(
    "timeout_s, elapsed_s, written",
    [(600, 600, "10m"), (600, 4000, "10m"), (90, 90, "1m30s"), (3600, 3600, "1h")],
)
def test_not_ready_at_the_timeout_fails_the_rollout(gated, make_policy, at, timeout_s, elapsed_s, written):
    decision = advance(gated, make_policy(readiness_timeout_s=timeout_s), at(elapsed_s), gate=LOAD_FAILED)

    assert decision.state.phase == Phase.failed
    assert decision.state.failed == "rev-b"
    assert decision.state.canary is None
    assert decision.state.stable == "rev-a"
    assert traffic(decision.state) == [TrafficTarget(revision="rev-a", percent=100)]
    assert decision.actions == (ScaleRevision("rev-b", 0),)
    message = f"revision rev-b not ready after {written}: ModelLoadFailed: failed to load 'resnet50'"
    assert decision.events == (Event("Warning", "RolloutFailed", message),)
    assert decision.state.message is not None and decision.state.message.startswith(message)


def test_failed_acceptance_fails_the_rollout(gated, make_policy, at):
    gate = GateResult(ready=True, reason="AcceptanceFailed", message="case smoke: OUT differs", acceptance_passed=False)

    decision = advance(gated, make_policy(acceptance_required=True), at(30), gate=gate)

    assert decision.state.phase == Phase.failed
    assert decision.state.failed == "rev-b"
    assert decision.actions == (ScaleRevision("rev-b", 0),)
    assert decision.events == (
        Event(
            "Warning", "RolloutFailed", "revision rev-b failed acceptance: AcceptanceFailed: case smoke: OUT differs"
        ),
    )


def test_required_acceptance_not_yet_run_waits(gated, make_policy, at):
    decision = advance(gated, make_policy(acceptance_required=True), at(30), gate=READY)

    assert decision.state.waiting_for == "Acceptance"
    assert decision.state.weight == 0
    assert decision.state.step_started_at is None


@pytest.mark.parametrize(
    "required, passed",
    [(False, None), (True, True), (False, False)],  # an acceptance result nobody asked for is ignored
)
def test_ready_canary_enters_the_first_step(gated, make_policy, at, required, passed):
    gate = GateResult(ready=True, reason="Ready", message="", acceptance_passed=passed)
    policy = make_policy(steps=(5, 50), acceptance_required=required)

    decision = advance(gated, policy, at(30), gate=gate)

    assert (decision.state.step, decision.state.weight) == (0, 5)
    assert decision.state.step_started_at == at(30)
    assert decision.state.waiting_for is None
    assert traffic(decision.state) == [
        TrafficTarget(revision="rev-a", percent=95),
        TrafficTarget(revision="rev-b", percent=5),
    ]
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "CanaryStep")]
    assert "weight 5%" in decision.events[0].message


def test_no_steps_promotes_at_the_gate(gated, make_policy, at):
    decision = advance(gated, make_policy(steps=()), at(30), gate=READY)

    assert decision.state == RolloutState(
        stable="rev-b", phase=Phase.ready, message="revision rev-b promoted after 0 steps"
    )
    assert decision.actions == (ApplyRevision("rev-b"),)  # re-applied as the stable; rev-a removed later


def test_pause_holds_the_gate(gated, make_policy, at):
    paused = advance(gated, make_policy(paused=True), at(30), gate=READY).state

    assert paused.weight == 0
    assert paused.step_started_at is None
    assert paused.waiting_for == "Paused"
    # The hold also covers the readiness deadline's check: no failure while paused.
    assert advance(gated, make_policy(paused=True), at(5000), gate=LOAD_FAILED).state.phase == Phase.progressing
    resumed = advance(paused, make_policy(), at(40))
    assert resumed.state.waiting_for == "Readiness"


def test_verdict_during_the_gate_is_ignored(gated, make_policy, at):
    decision = advance(gated, make_policy(), at(600), verdict="Fail")

    assert decision.state == gated


def test_a_canary_recorded_without_start_time_starts_its_readiness_clock_now(make_policy, at):
    state = RolloutState(stable="rev-a", canary="rev-b", phase=Phase.progressing, waiting_for="Readiness")

    decision = advance(state, make_policy(readiness_timeout_s=600), at(1000), gate=LOAD_FAILED)

    assert decision.state.started_at == at(1000)
    assert decision.state.phase == Phase.progressing
    assert advance(decision.state, make_policy(readiness_timeout_s=600), at(1600), gate=LOAD_FAILED).state.phase == (
        Phase.failed
    )
