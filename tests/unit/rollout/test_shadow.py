"""rollout.shadow in the state machine: after the gate, before the first step, the canary is
judged on mirrored requests with no weight; a failing shadow rolls back before any user was served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tritonop.api.models import CheckResult, InferenceServiceStatus, Phase, Rollout
from tritonop.rollout import GateResult, RolloutPolicy, RolloutState, advance, plan, traffic
from tritonop.rollout.state import in_shadow, next_analysis_at, waiting_for_traffic

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
READY = GateResult(True, "Ready", "")
FAILED = (CheckResult(name="successRate", result="Fail", value=0.7, bound=">= 0.99"),)


def policy(**rollout: Any) -> RolloutPolicy:
    fields = {"steps": [20, 50], "interval": "10s", "failureThreshold": 2, "shadow": {"percent": 30, "duration": "1m"}}
    return RolloutPolicy.from_spec(Rollout.model_validate(fields | rollout))


def shadowed(p: RolloutPolicy) -> RolloutState:
    started = plan(RolloutState(stable="a", phase=Phase.ready), "b", NOW).state
    decision = advance(started, p, NOW, gate=READY)
    assert [e.reason for e in decision.events] == ["ShadowStarted"]
    assert "30% of requests mirrored to canary b for 1m" in decision.events[0].message
    return decision.state


def test_after_the_gate_the_canary_is_mirrored_with_no_weight() -> None:
    state = shadowed(policy())
    assert in_shadow(state) and not waiting_for_traffic(state)
    assert state.weight == 0 and [(t.revision, t.percent) for t in traffic(state)] == [("a", 100), ("b", 0)]
    assert next_analysis_at(state, policy()) == NOW + timedelta(minutes=1)  # judged once the shadow ends


def test_a_shadow_that_passes_enters_the_first_step() -> None:
    p = policy()
    state = shadowed(p)
    early = advance(state, p, NOW + timedelta(seconds=30), verdict="Pass")
    assert early.state == state  # not due yet
    stepped = advance(state, p, NOW + timedelta(minutes=1), verdict="Pass")
    assert not in_shadow(stepped.state) and stepped.state.weight == 20
    assert [e.reason for e in stepped.events] == ["CanaryStep"]


def test_a_failing_shadow_rolls_back_before_any_weight() -> None:
    p = policy()
    state = shadowed(p)
    once = advance(state, p, NOW + timedelta(minutes=1), verdict="Fail", checks=FAILED)
    assert in_shadow(once.state) and once.state.weight == 0 and once.state.failed_checks == 1
    assert "failed analysis (1/2) in its shadow phase" in (once.state.message or "")
    assert once.state.shadow_started_at == NOW + timedelta(minutes=1)  # another shadow period
    twice = advance(once.state, p, NOW + timedelta(minutes=2), verdict="Fail", checks=FAILED)
    assert twice.state.phase == Phase.rolled_back and twice.state.canary is None and twice.state.failed == "b"
    assert [(t.revision, t.percent) for t in traffic(twice.state)] == [("a", 100)]


def test_a_conclusive_failure_in_the_shadow_rolls_back_at_once() -> None:
    p = policy()
    state = shadowed(p)
    decision = advance(state, p, NOW + timedelta(seconds=3), verdict="Fail", checks=FAILED, conclusive=True)
    assert decision.state.phase == Phase.rolled_back and decision.state.failed == "b"


def test_a_shadow_without_steps_is_followed_by_promotion() -> None:
    p = policy(steps=[])
    state = shadowed(p)
    promoted = advance(state, p, NOW + timedelta(minutes=1), verdict="Pass")
    assert promoted.state.stable == "b" and promoted.state.canary is None


def test_the_shadow_survives_a_status_round_trip() -> None:
    p = policy()
    state = shadowed(p)
    status = state.apply_to(InferenceServiceStatus(), p, NOW)
    assert status.canary is not None and status.canary.shadow_started_at == "2026-11-30T12:00:00Z"
    assert status.canary.next_analysis_at == "2026-11-30T12:01:00Z"
    again = RolloutState.from_status(InferenceServiceStatus.model_validate(status.dump()))
    assert in_shadow(again) and again.shadow_started_at == NOW
