"""advance(conclusive=True): a sequential test's conclusive Fail rolls back at once (pure)."""

from __future__ import annotations

from dataclasses import replace

from tritonop.api.models import CheckEvidence, CheckResult, Phase
from tritonop.rollout import ScaleRevision, advance

EVIDENCE = CheckEvidence(decision="Fail", canary_requests=14, canary_failures=5, statistic=2310, threshold=1000)
FAIL = (
    CheckResult(
        name="successRate",
        result="Fail",
        value=0.6429,
        bound=">= 0.99",
        source="direct",
        evidence=EVIDENCE,
        message="5 of 14 canary requests failed (35.71%): conclusively more than the 1% a success rate of 0.99 allows",
    ),
)


def test_a_conclusive_fail_rolls_back_before_the_interval_and_without_the_threshold(make_policy, running_canary, at):
    policy = make_policy(interval_s=60, failure_threshold=3)
    decision = advance(running_canary(), policy, at(3), verdict="Fail", checks=FAIL, conclusive=True)
    state = decision.state
    assert state.phase == Phase.rolled_back and state.canary is None and state.failed == "canary1"
    assert decision.actions == (ScaleRevision("canary1", 0),)
    (event,) = decision.events
    assert event.reason == "RolledBack"
    assert event.message == (
        "rolled back revision canary1: successRate: 5 of 14 canary requests failed (35.71%): conclusively more "
        "than the 1% a success rate of 0.99 allows"
    )


def test_the_same_fail_not_conclusive_waits_for_the_interval(make_policy, running_canary, at):
    policy = make_policy(interval_s=60, failure_threshold=3)
    early = advance(running_canary(), policy, at(3), verdict="Fail", checks=FAIL)
    assert early.state.phase == Phase.progressing and early.state.failed_checks == 0
    due = advance(running_canary(), policy, at(60), verdict="Fail", checks=FAIL)
    assert due.state.phase == Phase.progressing and due.state.failed_checks == 1  # counted, below threshold


def test_a_conclusive_pass_or_no_data_changes_nothing_before_the_interval(make_policy, running_canary, at):
    policy = make_policy(interval_s=60)
    for verdict in ("Pass", "NoData"):
        decision = advance(running_canary(), policy, at(3), verdict=verdict, checks=(), conclusive=True)
        assert decision.state.step == 0 and decision.state.phase == Phase.progressing and not decision.events


def test_paused_gated_and_manual_come_first(make_policy, running_canary, at):
    paused = advance(running_canary(), make_policy(paused=True), at(3), verdict="Fail", checks=FAIL, conclusive=True)
    assert paused.state.phase == Phase.progressing
    gated = replace(running_canary(), step_started_at=None, weight=0)
    waiting = advance(gated, make_policy(), at(3), verdict="Fail", checks=FAIL, conclusive=True)
    assert waiting.state.phase == Phase.progressing and waiting.state.canary == "canary1"
    promoted = advance(
        running_canary(), make_policy(), at(3), verdict="Fail", checks=FAIL, conclusive=True, manual="promote"
    )
    assert promoted.state.phase == Phase.ready and promoted.state.stable == "canary1"
