"""RolloutState <-> status, traffic, policy from the spec, timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.unit.rollout.clock import T0
from tritonop.api.models import (
    Acceptance,
    AcceptanceCase,
    AcceptanceTensor,
    Analysis,
    CanaryStatus,
    CheckResult,
    Condition,
    InferenceServiceStatus,
    Phase,
    Rollout,
    TrafficTarget,
)
from tritonop.durations import format_duration
from tritonop.rollout import RolloutPolicy, RolloutState, traffic
from tritonop.timestamps import format_time, parse_time

POLICY = RolloutPolicy.from_spec(Rollout())

ROUND_TRIP = [
    RolloutState(),
    RolloutState(stable="rev-a", phase=Phase.pending, message="deploying revision rev-a"),
    RolloutState(stable="rev-a", phase=Phase.ready),
    RolloutState(
        stable="rev-a",
        canary="rev-b",
        phase=Phase.progressing,
        started_at=T0,
        waiting_for="ModelLoading: loading resnet50",
        message="canary rev-b waits",
    ),
    RolloutState(
        stable="rev-a",
        canary="rev-b",
        phase=Phase.progressing,
        step=2,
        weight=50,
        started_at=T0,
        step_started_at=T0 + timedelta(minutes=3),
        failed_checks=2,
        no_data_since=T0 + timedelta(seconds=90, microseconds=250),
        last_analysis=(
            CheckResult(name="success-rate", result="NoData", message="fewer than 20 requests"),
            CheckResult(name="latency", result="Pass", value=120.5, bound="<= 250"),
        ),
        message="canary rev-b at 50% (step 3 of 3)",
    ),
    RolloutState(
        stable="rev-a",
        canary="rev-b",
        phase=Phase.progressing,
        step=1,
        weight=25,
        started_at=datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        step_started_at=T0,
        waiting_for="Paused",
    ),
    RolloutState(stable="rev-a", failed="rev-b", phase=Phase.rolled_back, message="rolled back revision rev-b: x"),
]


@pytest.mark.parametrize("state", ROUND_TRIP)
def test_state_survives_a_round_trip_through_status_json(state):
    status = state.apply_to(InferenceServiceStatus(), POLICY, T0)
    written = InferenceServiceStatus.model_validate(status.dump())  # what the API server stores

    assert RolloutState.from_status(written) == state


def test_apply_to_writes_the_rollout_fields_in_wire_form():
    state = RolloutState(
        stable="rev-a",
        canary="rev-b",
        phase=Phase.progressing,
        step=1,
        weight=25,
        started_at=T0,
        step_started_at=T0 + timedelta(minutes=2),
        failed_checks=1,
        last_analysis=(CheckResult(name="success-rate", result="Pass", value=0.995, bound=">= 0.99"),),
        message="canary rev-b at 25% (step 2 of 3)",
    )
    status = InferenceServiceStatus(observed_generation=4, url="http://resnet.ml.svc:8000")

    wire = state.apply_to(status, POLICY, T0 + timedelta(minutes=2)).dump()

    assert wire == {
        "observedGeneration": 4,
        "url": "http://resnet.ml.svc:8000",
        "phase": "Progressing",
        "message": "canary rev-b at 25% (step 2 of 3)",
        "stableRevision": "rev-a",
        "canaryRevision": "rev-b",
        "traffic": [{"revision": "rev-a", "percent": 75}, {"revision": "rev-b", "percent": 25}],
        "canary": {
            "step": 1,
            "weight": 25,
            "startedAt": "2025-03-01T12:00:00Z",
            "stepStartedAt": "2025-03-01T12:02:00Z",
            "failedChecks": 1,
            "nextAnalysisAt": "2025-03-01T12:03:00Z",
            "lastAnalysis": [
                {"name": "success-rate", "result": "Pass", "value": 0.995, "bound": ">= 0.99", "message": ""}
            ],
        },
        "conditions": [],
    }


def test_apply_to_removes_the_canary_block_when_no_canary_runs():
    status = InferenceServiceStatus(
        canary_revision="rev-b",
        canary=CanaryStatus(step=2, weight=50),
        traffic=[TrafficTarget(revision="rev-a", percent=50), TrafficTarget(revision="rev-b", percent=50)],
    )
    state = RolloutState(stable="rev-b", phase=Phase.ready)

    written = state.apply_to(status, POLICY, T0)

    assert written.canary is None
    assert written.canary_revision is None
    assert written.traffic == [TrafficTarget(revision="rev-b", percent=100)]


def test_apply_to_leaves_conditions_and_other_fields_to_the_handler():
    handler_condition = Condition(type="Ready", status="False", reason="CanaryInProgress")
    status = InferenceServiceStatus(conditions=[handler_condition], replicas=3, message="old news")
    state = RolloutState(stable="rev-a", phase=Phase.rolled_back, failed="rev-b", message="rolled back revision rev-b")

    written = state.apply_to(status, POLICY, T0)

    assert written.conditions == [handler_condition]
    assert written.replicas == 3
    assert written.message == "rolled back revision rev-b"


def test_from_status_refuses_a_malformed_timestamp():
    status = InferenceServiceStatus(canary_revision="rev-b", canary=CanaryStatus(started_at="yesterday"))

    with pytest.raises(ValueError, match="yesterday"):
        RolloutState.from_status(status)


@pytest.mark.parametrize(
    "state, expected",
    [
        (RolloutState(), []),
        (RolloutState(stable="a"), [("a", 100)]),
        (RolloutState(stable="a", canary="b"), [("a", 100), ("b", 0)]),
        (RolloutState(stable="a", canary="b", weight=25), [("a", 75), ("b", 25)]),
    ],
)
def test_traffic_splits_between_stable_and_canary(state, expected):
    assert [(t.revision, t.percent) for t in traffic(state)] == expected


def test_policy_from_spec_converts_every_field():
    acceptance = Acceptance(
        cases=[
            AcceptanceCase(name="smoke", inputs=[AcceptanceTensor(name="IN", datatype="FP32", shape=[1], data=[1.0])])
        ]
    )
    rollout = Rollout(
        steps=[5, 50],
        interval="1m30s",
        failure_threshold=2,
        paused=True,
        readiness_timeout="2h",
        analysis=Analysis(no_data_timeout="45s"),
        acceptance=acceptance,
    )

    assert RolloutPolicy.from_spec(rollout) == RolloutPolicy(
        steps=(5, 50),
        interval_s=90.0,
        failure_threshold=2,
        readiness_timeout_s=7200.0,
        no_data_timeout_s=45.0,
        acceptance_required=True,
        paused=True,
    )
    assert RolloutPolicy.from_spec(Rollout()).acceptance_required is False


@pytest.mark.parametrize(
    "seconds, written",
    [(600, "10m"), (90, "1m30s"), (3600, "1h"), (0.5, "500ms"), (3725, "1h2m5s"), (0, "0s")],
)
def test_durations_are_written_in_spec_notation(seconds, written):
    assert format_duration(seconds) == written


@pytest.mark.parametrize(
    "moment, text",
    [
        (T0, "2025-03-01T12:00:00Z"),
        (T0 + timedelta(microseconds=1500), "2025-03-01T12:00:00.001500Z"),
        (datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))), "2025-03-01T12:00:00Z"),
    ],
)
def test_timestamps_are_rfc3339_utc(moment, text):
    assert format_time(moment) == text
    assert parse_time(text) == moment


def test_whole_second_timestamps_drop_the_fraction():
    moment = datetime(2025, 3, 1, 13, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment, whole_seconds=True) == "2025-03-01T12:00:00Z"


def test_timestamps_need_an_offset():
    with pytest.raises(ValueError, match="offset"):
        parse_time("2025-03-01T12:00:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2025, 3, 1, 12, 0))
