"""revision_of: stable across runs and key order, sensitive only to spec.model and spec.triton."""

from __future__ import annotations

import re

import pytest

from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of

BASE = {
    "model": {"name": "resnet50", "storageUri": "s3://models/repository", "version": "3"},
    "triton": {"gpus": 1, "args": ["--log-verbose=1"], "env": [{"name": "A", "value": "1"}]},
}


def spec(raw: dict) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate(raw)


def test_revision_is_ten_hex_characters_and_pinned_across_runs() -> None:
    revision = revision_of(spec(BASE))
    assert re.fullmatch(r"[0-9a-f]{10}", revision)
    # Pinned: a change here re-rolls every running InferenceService on operator upgrade.
    assert revision == "4658e736db"


def test_revision_ignores_key_order_and_spelled_out_defaults() -> None:
    reordered = {
        "triton": {"env": [{"value": "1", "name": "A"}], "args": ["--log-verbose=1"], "gpus": 1},
        "model": {"version": "3", "storageUri": "s3://models/repository", "name": "resnet50"},
    }
    with_defaults = {**BASE, "triton": {**BASE["triton"], "shmSize": "1Gi", "modelControlMode": "explicit"}}
    assert revision_of(spec(reordered)) == revision_of(spec(BASE))
    assert revision_of(spec(with_defaults)) == revision_of(spec(BASE))


@pytest.mark.parametrize(
    "section, change",
    [
        ("model", {"storageUri": "s3://models/other"}),
        ("model", {"version": "4"}),
        ("model", {"storageSecretName": "creds"}),
        ("triton", {"image": "nvcr.io/nvidia/tritonserver:24.11-py3"}),
        ("triton", {"gpus": 2}),
        ("triton", {"args": ["--log-verbose=2"]}),
        ("triton", {"resources": {"requests": {"cpu": "2"}}}),
        ("triton", {"podLabels": {"team": "vision"}}),
    ],
)
def test_model_or_runtime_change_is_a_new_revision(section: str, change: dict) -> None:
    changed = {**BASE, section: {**BASE[section], **change}}
    assert revision_of(spec(changed)) != revision_of(spec(BASE))


@pytest.mark.parametrize(
    "section, value",
    [
        ("autoscaling", {"minReplicas": 2, "maxReplicas": 5, "gpuUtilization": 60}),
        ("rollout", {"steps": [5, 50], "interval": "5m", "analysis": {"latency": {"maxMs": 100}}}),
        ("traffic", {"provider": "istio"}),
    ],
)
def test_autoscaling_rollout_and_traffic_changes_keep_the_revision(section: str, value: dict) -> None:
    assert revision_of(spec({**BASE, section: value})) == revision_of(spec(BASE))
