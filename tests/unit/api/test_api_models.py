"""The pydantic models: defaults a user relies on, and what they reject."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus
from tritonop.durations import parse_duration

MINIMAL = {"model": {"storageUri": "s3://bucket/repo"}}


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
        ({"rollout": {"interval": "0s"}}, "longer than 0s"),
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


def test_status_ignores_unknown_keys_written_by_older_versions() -> None:
    status = InferenceServiceStatus.model_validate({"phase": "Ready", "somethingOld": 1})
    assert status.phase.value == "Ready"
