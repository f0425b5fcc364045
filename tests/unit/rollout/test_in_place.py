"""rollout.strategy InPlace's pure decisions: which versions each pod holds, and the switch's
course through the canary machine (gate on one pod, its one step, promotion or switch back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tritonop.api.models import InPlaceStatus, Phase, Rollout
from tritonop.rollout import GateResult, RolloutPolicy, advance, plan
from tritonop.rollout.in_place import (
    as_versions,
    choose_canary_pod,
    in_place_status,
    next_load,
    pod_targets,
    recovered_version,
    step_policy,
    version_state,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PODS = ["p-a", "p-b", "p-c", "p-d"]


def policy() -> RolloutPolicy:
    return step_policy(RolloutPolicy.from_spec(Rollout.model_validate({"interval": "30s"})), len(PODS))


@pytest.mark.parametrize(
    ("ready", "target", "expected"),
    [
        (("1",), ("1",), None),
        (("1",), ("2",), ("1", "2")),  # the union first: 1 serves until 2 is ready
        (("1", "2"), ("2",), ("2",)),  # then the target
        (("1", "2"), ("1", "2"), None),
        (("2",), ("1", "2"), ("1", "2")),
        ((), ("2",), ("2",)),  # nothing ready (a new pod, a failed load): straight to the target
        (("3", "10"), ("9",), ("3", "9", "10")),  # numeric order
    ],
)
def test_a_pod_never_drops_what_it_serves_before_its_successor_is_ready(
    ready: tuple[str, ...], target: tuple[str, ...], expected: tuple[str, ...] | None
) -> None:
    assert next_load(ready, target) == expected


def test_the_step_is_one_pods_share_of_the_traffic() -> None:
    base = RolloutPolicy.from_spec(Rollout())
    assert step_policy(base, 4).steps == (25,)
    assert step_policy(base, 3).steps == (33,)
    assert step_policy(base, 1).steps == (100,)
    assert step_policy(base, 200).steps == (1,)


def test_a_switch_goes_from_gate_to_step_to_every_pod() -> None:
    state = version_state(InPlaceStatus(revision="r1", version="2"))
    assert pod_targets(state, None, PODS) == dict.fromkeys(PODS, ("2",))

    started = plan(state, "3", NOW)
    state, canary_pod = choose_canary_pod(started.state, None, PODS)
    assert (state.canary, canary_pod, state.phase) == ("3", "p-a", Phase.progressing)
    # In the gate, the canary pod holds both: acceptance runs against version 3 by name.
    assert pod_targets(state, canary_pod, PODS) == {"p-a": ("2", "3"), **dict.fromkeys(PODS[1:], ("2",))}

    gate = GateResult(True, "ModelReady", "pod p-a has version 3 ready")
    stepped = advance(state, policy(), NOW, gate=gate).state
    assert (stepped.weight, stepped.step_started_at) == (25, NOW)
    # In its step, version 3 alone serves the canary pod's quarter of the traffic.
    assert pod_targets(stepped, canary_pod, PODS) == {"p-a": ("3",), **dict.fromkeys(PODS[1:], ("2",))}

    promoted = advance(stepped, policy(), NOW + timedelta(seconds=30), verdict="Pass")
    assert (promoted.state.stable, promoted.state.canary) == ("3", None)
    assert pod_targets(promoted.state, canary_pod, PODS) == dict.fromkeys(PODS, ("3",))
    assert [e.reason for e in promoted.events] == ["Promoted"]


def test_a_failing_step_switches_every_pod_back_and_is_not_retried() -> None:
    state, canary_pod = choose_canary_pod(plan(version_state(InPlaceStatus(version="2")), "3", NOW).state, None, PODS)
    state = advance(state, policy(), NOW, gate=GateResult(True, "ModelReady", "")).state
    for n in range(2):  # failureThreshold 3: two failed analyses keep the step
        state = advance(state, policy(), NOW + timedelta(seconds=30 * (n + 1)), verdict="Fail").state
        assert state.canary == "3" and state.failed_checks == n + 1
    rolled_back = as_versions(advance(state, policy(), NOW + timedelta(seconds=90), verdict="Fail"))
    assert (rolled_back.state.stable, rolled_back.state.canary, rolled_back.state.failed) == ("2", None, "3")
    assert rolled_back.state.phase == Phase.rolled_back
    assert pod_targets(rolled_back.state, canary_pod, PODS) == dict.fromkeys(PODS, ("2",))
    assert rolled_back.state.message is not None and "version 3 is not retried" in rolled_back.state.message
    assert "revision" not in rolled_back.state.message
    assert plan(rolled_back.state, "3", NOW).state.canary is None  # not retried until model.version changes


def test_a_candidate_that_fails_acceptance_never_gets_its_step() -> None:
    state, canary_pod = choose_canary_pod(plan(version_state(InPlaceStatus(version="2")), "3", NOW).state, None, PODS)
    with_acceptance = RolloutPolicy.from_spec(
        Rollout.model_validate(
            {
                "acceptance": {
                    "cases": [{"name": "c", "inputs": [{"name": "I", "datatype": "FP32", "shape": [1], "data": [1]}]}]
                }
            }
        )
    )
    failed = advance(
        state,
        step_policy(with_acceptance, 4),
        NOW,
        gate=GateResult(True, "AcceptanceFailed", "x", acceptance_passed=False),
    )
    assert failed.state.canary is None and failed.state.failed == "3" and failed.state.phase == Phase.failed
    assert pod_targets(failed.state, canary_pod, PODS) == dict.fromkeys(PODS, ("2",))


def test_a_canary_pod_that_went_away_is_replaced_and_gated_again() -> None:
    state, _ = choose_canary_pod(plan(version_state(InPlaceStatus(version="2")), "3", NOW).state, None, PODS)
    stepped = advance(state, policy(), NOW, gate=GateResult(True, "ModelReady", "")).state
    again, canary_pod = choose_canary_pod(stepped, "p-a", PODS[1:])
    assert canary_pod == "p-b"
    assert (again.weight, again.step_started_at, again.waiting_for) == (0, None, "Readiness")
    kept, same = choose_canary_pod(stepped, "p-a", PODS)
    assert (kept, same) == (stepped, "p-a")


def test_status_round_trip_keeps_the_switch() -> None:
    state, canary_pod = choose_canary_pod(plan(version_state(InPlaceStatus(version="2")), "3", NOW).state, None, PODS)
    stepped = advance(state, policy(), NOW, gate=GateResult(True, "ModelReady", "")).state
    written = in_place_status(
        stepped, policy(), NOW, revision="r1", canary_pod=canary_pod, pods={"p-b": ("2",), "p-a": ("3",)}
    )
    assert written.candidate == "3" and written.canary_pod == "p-a" and written.canary is not None
    assert written.canary.weight == 25 and written.canary.next_analysis_at == "2026-11-30T12:00:30Z"
    assert [(p.pod, p.versions) for p in written.pods] == [("p-a", ["3"]), ("p-b", ["2"])]
    again = version_state(InPlaceStatus.model_validate(written.dump()))
    assert (again.stable, again.canary, again.weight, again.step_started_at) == ("2", "3", 25, NOW)


def test_status_without_the_switch_resumes_from_what_most_pods_serve() -> None:
    assert recovered_version({"a": ("2",), "b": ("2",), "c": ("2", "3")}) == "2"
    assert recovered_version({"a": ("3",), "b": ("2", "3")}) == "3"  # Triton serves the highest ready
    assert recovered_version({"a": ()}) is None
    assert recovered_version({}) is None
