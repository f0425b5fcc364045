"""Whole rollouts driven the way the handler drives them: plan on reconcile, advance on each
timer tick, with the state read back from status every time (as after an operator restart)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.rollout.clock import T0
from tritonop.api.models import CheckResult, InferenceServiceStatus, Phase, Rollout
from tritonop.rollout import (
    ApplyRevision,
    GateResult,
    RolloutPolicy,
    RolloutState,
    ScaleRevision,
    Verdict,
    advance,
    analysis_due,
    mark_available,
    plan,
    waiting_for_traffic,
)

TICK = timedelta(seconds=5)
POLICY = RolloutPolicy.from_spec(Rollout(steps=[10, 25, 50], interval="1m", failure_threshold=2))


class FakeOperator:
    """Keeps only status between calls, like the real operator; records routes and actions."""

    def __init__(self) -> None:
        self.status = InferenceServiceStatus()
        self.now = T0
        self.routes: list[list[tuple[str, int]]] = []
        self.actions: list[object] = []

    def reconcile(self, desired: str) -> None:
        decision = plan(RolloutState.from_status(self.status), desired, self.now)
        self._record(decision.state, decision.actions)

    def deployment_available(self) -> None:
        self._record(mark_available(RolloutState.from_status(self.status)), ())

    def tick(self, ready_after: timedelta, verdict: Verdict) -> None:
        self.now += TICK
        state = RolloutState.from_status(self.status)
        gate = None
        if waiting_for_traffic(state):
            assert state.started_at is not None
            ready = self.now - state.started_at >= ready_after
            gate = GateResult(ready=ready, reason="Ready" if ready else "ModelLoading", message="")
        due = analysis_due(state, POLICY, self.now)
        checks = (CheckResult(name="success-rate", result=verdict, value=0.5, bound=">= 0.99"),)
        decision = advance(state, POLICY, self.now, gate=gate, verdict=verdict if due else None, checks=checks)
        self._record(decision.state, decision.actions)

    def _record(self, state: RolloutState, actions: tuple[object, ...]) -> None:
        self.status = InferenceServiceStatus.model_validate(state.apply_to(self.status, POLICY, self.now).dump())
        route = [(t.revision, t.percent) for t in self.status.traffic]
        if not self.routes or self.routes[-1] != route:
            self.routes.append(route)
        self.actions.extend(actions)


def roll_out(operator: FakeOperator, desired: str, verdict: Verdict) -> None:
    operator.reconcile(desired)
    for _ in range(200):
        if operator.status.canary_revision is None:
            return
        operator.tick(ready_after=timedelta(seconds=20), verdict=verdict)
        operator.reconcile(desired)  # reconciles interleave with ticks and must not disturb them
    raise AssertionError(f"rollout of {desired} did not finish: {operator.status}")


def test_healthy_canary_is_promoted_through_every_step():
    operator = FakeOperator()
    operator.reconcile("rev-a")
    operator.deployment_available()

    roll_out(operator, "rev-b", "Pass")

    assert operator.routes == [
        [("rev-a", 100)],
        [("rev-a", 100), ("rev-b", 0)],
        [("rev-a", 90), ("rev-b", 10)],
        [("rev-a", 75), ("rev-b", 25)],
        [("rev-a", 50), ("rev-b", 50)],
        [("rev-b", 100)],
    ]
    # Ready after 20 s, then one minute per step: promoted at 20 s + 3 x 60 s.
    assert operator.now == T0 + timedelta(seconds=200)
    assert operator.status.phase == Phase.ready
    assert operator.status.stable_revision == "rev-b"
    assert operator.status.canary is None
    assert ApplyRevision("rev-b") == operator.actions[-1]  # re-applied as the stable; rev-a goes later
    assert ScaleRevision("rev-b", 0) not in operator.actions


def test_failing_canary_is_rolled_back_and_not_retried():
    operator = FakeOperator()
    operator.reconcile("rev-a")
    operator.deployment_available()

    roll_out(operator, "rev-b", "Fail")

    assert operator.routes == [
        [("rev-a", 100)],
        [("rev-a", 100), ("rev-b", 0)],
        [("rev-a", 90), ("rev-b", 10)],
        [("rev-a", 100)],
    ]
    # Gate at 20 s, failed checks at 80 s and 140 s: threshold 2 reached.
    assert operator.now == T0 + timedelta(seconds=140)
    assert operator.status.phase == Phase.rolled_back
    assert operator.status.failed_revision == "rev-b"
    assert operator.actions[-1] == ScaleRevision("rev-b", 0)

    operator.actions.clear()
    operator.reconcile("rev-b")
    assert operator.status.canary_revision is None
    assert operator.actions == []

    operator.reconcile("rev-c")
    assert operator.status.canary_revision == "rev-c"
    assert operator.status.failed_revision is None
    assert operator.actions == [ApplyRevision("rev-c")]
