"""advance() past the gate: analysis verdicts, thresholds, no-data policy, pause, manual control."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tritonop.api.models import CheckResult, Phase, TrafficTarget
from tritonop.rollout import (
    ABORT_ANNOTATION,
    PROMOTE_ANNOTATION,
    ApplyRevision,
    Event,
    RolloutState,
    ScaleRevision,
    advance,
    analysis_due,
    manual_action,
    next_analysis_at,
    traffic,
)

PASS = (CheckResult(name="success-rate", result="Pass", value=0.999, bound=">= 0.99"),)
FAIL = (CheckResult(name="success-rate", result="Fail", value=0.7, bound=">= 0.99"),)


@pytest.mark.parametrize(
    "steps, canary_percents",
    [
        ((10, 25, 50), [10, 25, 50]),
        ((50,), [50]),
        ((1, 2, 3, 99), [1, 2, 3, 99]),
        ((20, 40, 60, 80), [20, 40, 60, 80]),
    ],
)
def test_each_pass_moves_to_the_next_weight(steps, canary_percents, make_policy, running_canary, at):
    policy = make_policy(steps=steps, interval_s=60)
    state = running_canary(steps=steps)
    seen = [traffic(state)]

    for n in range(1, len(steps)):
        decision = advance(state, policy, at(60 * n), verdict="Pass", checks=PASS)
        state = decision.state
        seen.append(traffic(state))
        assert state.step == n
        assert state.step_started_at == at(60 * n)
        assert [e.reason for e in decision.events] == ["CanaryStep"]

    assert seen == [
        [TrafficTarget(revision="stable1", percent=100 - p), TrafficTarget(revision="canary1", percent=p)]
        for p in canary_percents
    ]


@pytest.mark.parametrize(
    "steps, written", [((10, 25, 50), "3 steps"), ((50,), "1 step"), ((5, 10, 20, 40, 80), "5 steps")]
)
def test_pass_at_the_last_step_promotes(steps, written, make_policy, running_canary, at):
    state = running_canary(steps=steps, step=len(steps) - 1, failed_checks=1, last_analysis=PASS)

    decision = advance(state, make_policy(steps=steps), at(60), verdict="Pass", checks=PASS)

    message = f"revision canary1 promoted after {written}"
    assert decision.state == RolloutState(stable="canary1", phase=Phase.ready, message=message)
    assert traffic(decision.state) == [TrafficTarget(revision="canary1", percent=100)]
    assert decision.actions == (ApplyRevision("canary1"),)  # stable1 removed once this is persisted
    assert decision.after_routing == ()
    assert decision.events == (Event("Normal", "Promoted", message),)


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_rollback_happens_exactly_at_the_failure_threshold(threshold, make_policy, running_canary, at):
    policy = make_policy(failure_threshold=threshold, interval_s=60)
    state = running_canary(step=1)

    for n in range(1, threshold):
        decision = advance(state, policy, at(60 * n), verdict="Fail", checks=FAIL)
        state = decision.state
        assert (state.canary, state.failed_checks, state.step, state.weight) == ("canary1", n, 1, 25)
        assert state.step_started_at == at(60 * n)  # judged again after another interval
        assert decision.actions == ()
        assert [(e.type, e.reason) for e in decision.events] == [("Warning", "AnalysisFailed")]

    decision = advance(state, policy, at(60 * threshold), verdict="Fail", checks=FAIL)

    assert decision.state.phase == Phase.rolled_back
    assert (decision.state.stable, decision.state.canary, decision.state.failed) == ("stable1", None, "canary1")
    assert traffic(decision.state) == [TrafficTarget(revision="stable1", percent=100)]
    assert decision.actions == (ScaleRevision("canary1", 0),)
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "RolledBack")]


def test_fail_then_pass_keeps_the_count_and_continues(make_policy, running_canary, at):
    policy = make_policy(failure_threshold=3, interval_s=60)

    failed_once = advance(running_canary(step=0), policy, at(60), verdict="Fail", checks=FAIL).state
    passed = advance(failed_once, policy, at(120), verdict="Pass", checks=PASS).state
    failed_twice = advance(passed, policy, at(180), verdict="Fail", checks=FAIL).state
    rolled_back = advance(failed_twice, policy, at(240), verdict="Fail", checks=FAIL).state

    assert (failed_once.failed_checks, failed_once.weight) == (1, 10)
    assert (passed.failed_checks, passed.step, passed.weight) == (1, 1, 25)
    assert (failed_twice.failed_checks, failed_twice.weight) == (2, 25)
    assert rolled_back.phase == Phase.rolled_back


@pytest.mark.parametrize("verdict", ["NoData", "Error"])
def test_no_data_holds_then_fails_closed_after_the_timeout(verdict, make_policy, running_canary, at):
    policy = make_policy(interval_s=60, no_data_timeout_s=300, failure_threshold=3)
    checks = (CheckResult(name="success-rate", result=verdict, message="fewer than 20 requests"),)

    first = advance(running_canary(step=1), policy, at(60), verdict=verdict, checks=checks)

    assert first.state.no_data_since == at(60)
    assert (first.state.failed_checks, first.state.weight) == (0, 25)
    assert first.state.step_started_at == at(60)
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "AnalysisNoData")]
    assert "success-rate: fewer than 20 requests" in first.events[0].message

    state = first.state
    for t in (120, 180, 240, 300):  # 60..240 s without data: held, nothing counted
        decision = advance(state, policy, at(t), verdict=verdict, checks=checks)
        state = decision.state
        assert (state.failed_checks, state.weight, state.no_data_since) == (0, 25, at(60))
        assert state.step_started_at == at(t)
        assert decision.events == ()

    for t, counted in ((360, 1), (420, 2)):  # 300 s and more: each no-data counts as a failure
        state = advance(state, policy, at(t), verdict=verdict, checks=checks).state
        assert (state.canary, state.failed_checks) == ("canary1", counted)

    decision = advance(state, policy, at(480), verdict=verdict, checks=checks)

    assert decision.state.phase == Phase.rolled_back
    message = "rolled back revision canary1: no data for 7m: success-rate: fewer than 20 requests (3 failed checks)"
    assert decision.events == (Event("Warning", "RolledBack", message),)


@pytest.mark.parametrize("verdict, checks", [("Pass", PASS), ("Fail", FAIL)])
def test_a_real_verdict_clears_the_no_data_clock(verdict, checks, make_policy, running_canary, at):
    state = running_canary(step=1, no_data_since=at(-600))

    decision = advance(state, make_policy(interval_s=60, failure_threshold=3), at(60), verdict=verdict, checks=checks)

    assert decision.state.no_data_since is None
    assert decision.state.failed_checks == (0 if verdict == "Pass" else 1)


def test_pause_holds_the_weight_and_skips_analysis(make_policy, running_canary, at):
    state = running_canary(step=1)
    paused = make_policy(paused=True, interval_s=60)

    decision = advance(state, paused, at(600), verdict="Fail", checks=FAIL)

    assert not analysis_due(state, paused, at(600))
    assert next_analysis_at(state, paused) is None
    assert decision.state == replace(state, waiting_for="Paused")
    assert decision.events == ()
    resumed = advance(decision.state, make_policy(interval_s=60), at(600), verdict="Pass", checks=PASS).state
    assert (resumed.weight, resumed.waiting_for) == (50, None)


@pytest.mark.parametrize("elapsed_s, due", [(0, False), (59, False), (59.999, False), (60, True), (61, True)])
def test_analysis_is_due_one_interval_after_the_step_started(elapsed_s, due, make_policy, running_canary, at):
    state = running_canary()
    policy = make_policy(interval_s=60)

    assert next_analysis_at(state, policy) == at(60)
    assert analysis_due(state, policy, at(elapsed_s)) is due


def test_verdict_before_the_analysis_is_due_is_ignored(make_policy, running_canary, at):
    state = running_canary(step=1)

    decision = advance(state, make_policy(interval_s=60), at(59), verdict="Fail", checks=FAIL)

    assert decision.state == state
    assert decision.events == ()


def test_latest_checks_are_recorded(make_policy, running_canary, at):
    checks = (*PASS, CheckResult(name="latency", result="Pass", value=120.0, bound="<= 250"))

    state = advance(running_canary(), make_policy(interval_s=60), at(60), verdict="Pass", checks=checks).state

    assert state.last_analysis == checks


LATENCY_FAIL = CheckResult(name="latency", result="Fail", value=312.5, bound="<= 250")


@pytest.mark.parametrize(
    "checks, described",
    [
        (FAIL, "success-rate 0.7 < 0.99"),
        ((*PASS, LATENCY_FAIL), "latency 312.5 > 250"),
        ((*FAIL, LATENCY_FAIL), "success-rate 0.7 < 0.99; latency 312.5 > 250"),
        ((CheckResult(name="queue-ms", result="Fail", value=41.0, bound="< 40"),), "queue-ms 41 >= 40"),
        (
            (CheckResult(name="errors", result="Fail", value=3.0, bound="between 0 and 2"),),
            "errors 3 (bound between 0 and 2)",
        ),
    ],
)
def test_rollback_message_names_each_failed_check_value_and_bound(checks, described, make_policy, running_canary, at):
    decision = advance(running_canary(), make_policy(failure_threshold=1), at(60), verdict="Fail", checks=checks)

    message = f"rolled back revision canary1: {described} (1 failed check)"
    assert decision.events == (Event("Warning", "RolledBack", message),)
    assert decision.state.message == f"{message}; revision canary1 is not retried until the spec changes"


# ---------------------------------------------------------------- manual control


@pytest.mark.parametrize(
    "annotations, action",
    [
        ({PROMOTE_ANNOTATION: "canary1"}, "promote"),
        ({ABORT_ANNOTATION: "canary1"}, "abort"),
        ({PROMOTE_ANNOTATION: "canary1", ABORT_ANNOTATION: "canary1"}, "abort"),
        ({PROMOTE_ANNOTATION: "older"}, None),
        ({ABORT_ANNOTATION: "older", PROMOTE_ANNOTATION: "canary1"}, "promote"),
        ({"example.com/promote": "canary1"}, None),
        ({}, None),
    ],
)
def test_manual_annotations_act_only_on_the_named_canary(annotations, action):
    assert manual_action(annotations, "canary1") == action


def test_manual_annotations_without_a_canary_do_nothing():
    assert manual_action({ABORT_ANNOTATION: "canary1"}, None) is None


@pytest.mark.parametrize("paused", [False, True])
def test_manual_promote_promotes_now(paused, make_policy, running_canary, at):
    decision = advance(running_canary(step=0), make_policy(paused=paused), at(1), manual="promote")

    message = "revision canary1 promoted by annotation at 10%"
    assert decision.state == RolloutState(stable="canary1", phase=Phase.ready, message=message)
    assert decision.actions == (ApplyRevision("canary1"),)
    assert decision.events == (Event("Normal", "Promoted", message),)


@pytest.mark.parametrize("paused", [False, True])
def test_manual_abort_rolls_back_now(paused, make_policy, running_canary, at):
    decision = advance(running_canary(step=1), make_policy(paused=paused), at(1), manual="abort")

    assert decision.state.phase == Phase.rolled_back
    assert (decision.state.canary, decision.state.failed) == (None, "canary1")
    assert decision.actions == (ScaleRevision("canary1", 0),)
    assert decision.events == (Event("Warning", "Aborted", "rolled back revision canary1: aborted by annotation"),)


def test_advance_without_a_canary_does_nothing(make_policy, at):
    state = RolloutState(stable="stable1", phase=Phase.ready)

    decision = advance(state, make_policy(), at(0), verdict="Fail", checks=FAIL, manual="abort")

    assert decision.state == state
    assert decision.actions == ()
    assert decision.events == ()
