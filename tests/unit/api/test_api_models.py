"""The pydantic models: defaults a user relies on, and what they reject."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus
from tritonop.durations import duration_nanos, parse_duration

MINIMAL = {"model": {"storageUri": "s3://bucket/repo"}}
CASE = {"name": "c", "inputs": [{"name": "X", "datatype": "FP32", "shape": [1], "data": [1.0]}]}


def test_defaults() -> None:
    spec = InferenceServiceSpec.model_validate(MINIMAL)
    assert spec.triton.gpus == 1 and spec.triton.image is None and spec.triton.shm_size == "1Gi"
    assert spec.triton.model_control_mode.value == "explicit" and spec.triton.strict_readiness
    assert (spec.autoscaling.min_replicas, spec.autoscaling.max_replicas) == (1, 1)
    assert spec.rollout.steps == [10, 25, 50] and spec.rollout.interval == "1m"
    assert spec.rollout.failure_threshold == 3 and not spec.rollout.paused
    assert spec.rollout.analysis.success_rate is not None and spec.rollout.analysis.success_rate.min == 0.99
    assert spec.rollout.analysis.latency is None and spec.rollout.analysis.min_requests == 20
    assert spec.traffic.provider.value == "service"


def test_wire_form_is_camel_case_and_round_trips() -> None:
    spec = InferenceServiceSpec.model_validate(
        {**MINIMAL, "autoscaling": {"minReplicas": 2, "maxReplicas": 3}, "rollout": {"failureThreshold": 2}}
    )
    wire = spec.dump()
    assert wire["autoscaling"]["minReplicas"] == 2 and wire["rollout"]["failureThreshold"] == 2
    assert InferenceServiceSpec.model_validate(wire) == spec


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"model": {"storageUri": "ftp://x/y"}}, "storageUri"),
        ({"model": {"storageUri": "s3://b", "version": "latest"}}, "version"),
        ({"triton": {"gpus": -1}}, "gpus"),
        ({"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}, "minReplicas"),
        ({"rollout": {"steps": [50, 10]}}, "strictly increasing"),
        ({"rollout": {"steps": [0]}}, "steps"),
        ({"rollout": {"interval": "0s"}}, "at least 1s and at most 24h"),
        ({"rollout": {"interval": "24h0.001ms"}}, "at least 1s and at most 24h"),
        ({"rollout": {"readinessTimeout": "500ms"}}, "at least 1s and at most 24h"),
        ({"rollout": {"analysis": {"noDataTimeout": "25h"}}}, "at least 0s and at most 24h"),
        ({"rollout": {"interval": "9999999999h"}}, "interval"),
        ({"triton": {"resources": {"limits": "8Gi"}}}, "limits"),
        ({"triton": {"resources": {"limits": {"memory": "8GB"}}}}, "quantity"),
        ({"triton": {"env": [{"value": "x"}]}}, "name"),
        ({"triton": {"env": [{"name": "A"}]}}, "exactly one of value or valueFrom"),
        ({"traffic": {"provider": "nginx", "nginx": {"host": "a.example.com", "path": "api"}}}, "path"),
        ({"rollout": {"interval": "soon"}}, "interval"),
        ({"rollout": {"analysis": {"checks": [{"name": "c", "query": "up"}]}}}, "needs min or max"),
        ({"traffic": {"provider": "gateway-api"}}, "parentRefs"),
        ({"traffic": {"provider": "nginx"}}, "nginx"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_rejects(patch: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        InferenceServiceSpec.model_validate({**MINIMAL, **patch})
    assert needle in str(err.value)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "nanos"), [("0.001ms", 1000), ("1.5h", 5_400_000_000_000), ("23h60m", 86_400_000_000_000)]
)
def test_duration_nanos_are_exact_like_go(text: str, nanos: int) -> None:
    assert duration_nanos(text) == nanos


@pytest.mark.parametrize("text", ["9999999999h", "100000ms", "1.2345s", "1d", "-1s", "", "1m" * 17])
def test_durations_beyond_the_pattern_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("rollout", "accepted"),
    [
        ({"interval": "1s", "readinessTimeout": "24h", "analysis": {"noDataTimeout": "0s"}}, True),
        ({"interval": "24h", "readinessTimeout": "1s", "analysis": {"noDataTimeout": "24h"}}, True),
        ({"interval": "999ms"}, False),
        ({"readinessTimeout": "0s"}, False),
        ({"analysis": {"noDataTimeout": "24h0.001ms"}}, False),
        ({"acceptance": {"timeout": "0.001ms", "cases": [CASE]}}, True),
        ({"acceptance": {"timeout": "5m", "cases": [CASE]}}, True),
        ({"acceptance": {"timeout": "0s", "cases": [CASE]}}, False),
        ({"acceptance": {"timeout": "300.001s", "cases": [CASE]}}, False),
    ],
)
def test_durations_are_bounded(rollout: dict, accepted: bool) -> None:
    """Every duration is finite (no OverflowError in a timer) and none is 0s where 0s means nothing."""
    raw = {**MINIMAL, "rollout": rollout}
    if accepted:
        InferenceServiceSpec.model_validate(raw)
    else:
        with pytest.raises(ValidationError):
            InferenceServiceSpec.model_validate(raw)


def test_success_rate_off_is_explicit_and_survives_the_wire_form() -> None:
    spec = InferenceServiceSpec.model_validate({**MINIMAL, "rollout": {"analysis": {"successRate": {"enabled": False}}}})
    assert spec.rollout.analysis.success_rate is None
    assert spec.dump()["rollout"]["analysis"]["successRate"] == {"enabled": False}
    assert InferenceServiceSpec.model_validate(spec.dump()) == spec
    on = InferenceServiceSpec.model_validate({**MINIMAL, "rollout": {"analysis": {"successRate": {"min": 0.9}}}})
    assert on.rollout.analysis.success_rate is not None and on.rollout.analysis.success_rate.min == 0.9
    assert "successRate" in on.dump()["rollout"]["analysis"]


def test_pass_through_kubernetes_values_stay_plain_dicts_in_the_users_order() -> None:
    ref = {"name": "gw", "namespace": "gateways", "sectionName": "http"}
    spec = InferenceServiceSpec.model_validate(
        {**MINIMAL, "traffic": {"provider": "gateway-api", "gateway": {"parentRefs": [ref]}}}
    )
    (parsed,) = spec.traffic.gateway.parent_refs if spec.traffic.gateway else []
    assert type(parsed) is dict and list(parsed) == list(ref)


def test_status_ignores_unknown_keys_written_by_older_versions() -> None:
    status = InferenceServiceStatus.model_validate({"phase": "Ready", "somethingOld": 1})
    assert status.phase.value == "Ready"
