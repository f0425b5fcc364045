"""rollout.strategy Experiment and rollout.experiment: what the CRD admits and what the operator
parses agree, with the same message; status.experiment round-trips through the wire form."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.admission import Admission
from tritonop.api.crd import generate_crd
from tritonop.api.models import InferenceServiceStatus
from tritonop.children import BuildError, parse_spec

ADMISSION = Admission(generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
EXPERIMENT = {"weight": 20, "duration": "24h", "metrics": [{"name": "kpi", "query": "vector(1)"}]}


def isvc(rollout: dict[str, Any], **model: Any) -> dict[str, Any]:
    spec = {"model": {"storageUri": "s3://bucket/repo", **model}, "rollout": rollout}
    return {"apiVersion": "serving.tritonop.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "recommender", "namespace": "ml"}, "spec": spec}  # fmt: skip


@pytest.mark.parametrize(
    "obj",
    [
        isvc({"strategy": "Experiment", "experiment": EXPERIMENT}),
        isvc({"strategy": "Experiment", "experiment": {"duration": "1s"}}),  # weight 50 by default
        isvc({"strategy": "Experiment", "experiment": {**EXPERIMENT, "weight": 99, "duration": "720h"}}),
        isvc({"strategy": "Experiment", "experiment": EXPERIMENT, "steps": None}),  # a null is no field
        isvc({"strategy": "Experiment", "experiment": EXPERIMENT}, models=["recommender", "ranker"]),
    ],
)
def test_admitted_and_parsed(obj: dict[str, Any]) -> None:
    assert ADMISSION.admit(obj) == []
    parse_spec(obj)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (isvc({"strategy": "Experiment"}), "rollout.strategy Experiment needs rollout.experiment"),
        (isvc({"experiment": EXPERIMENT}), "rollout.experiment needs rollout.strategy Experiment"),
        (
            isvc({"strategy": "Canary", "experiment": EXPERIMENT}),
            "rollout.experiment needs rollout.strategy Experiment",
        ),
        (
            isvc({"strategy": "Experiment", "experiment": EXPERIMENT, "steps": [20]}),
            "rollout.steps do not apply to strategy Experiment",
        ),
        (
            isvc({"strategy": "Experiment", "experiment": {**EXPERIMENT, "metrics": [EXPERIMENT["metrics"][0]] * 2}}),
            "must name each metric once",  # CEL names the field in its message, pydantic before it
        ),
        (
            isvc({"strategy": "Experiment", "experiment": EXPERIMENT}, models=["*"]),
            "rollout.strategy Experiment reports one model's figures",
        ),
    ],
)
def test_cross_field_rules_refuse_alike(obj: dict[str, Any], message: str) -> None:
    refusals = ADMISSION.admit(obj)
    assert len(refusals) == 1 and message in refusals[0], refusals
    with pytest.raises(BuildError) as error:
        parse_spec(obj)
    assert error.value.reason == "InvalidSpec" and message in str(error.value)


@pytest.mark.parametrize(
    "experiment",
    [
        {"weight": 0, "duration": "1h"},
        {"weight": 100, "duration": "1h"},
        {"duration": "0s"},
        {"duration": "720h0.001ms"},
        {"weight": 20},
        {"duration": "1h", "metrics": [{"name": "Not A Label", "query": "vector(1)"}]},
    ],
)
def test_bounds_refused_alike(experiment: dict[str, Any]) -> None:
    obj = isvc({"strategy": "Experiment", "experiment": experiment})
    assert ADMISSION.admit(obj) != []
    with pytest.raises(BuildError):
        parse_spec(obj)


def test_status_experiment_round_trips_in_its_wire_form() -> None:
    wire = {
        "experiment": {
            "startedAt": "2026-01-02T03:04:05Z",
            "endsAt": "2026-01-03T03:04:05Z",
            "concluded": True,
            "resultsAt": "2026-01-03T03:04:05Z",
            "variants": [
                {
                    "name": "A",
                    "revision": "aaaa",
                    "weight": 80,
                    "requests": 8000,
                    "successRate": 0.999,
                    "meanLatencyMs": 10.5,
                    "metrics": {"kpi": 0.3},
                },
                {
                    "name": "B",
                    "revision": "bbbb",
                    "weight": 20,
                    "requests": 2000,
                    "successRate": 0.995,
                    "meanLatencyMs": 12.0,
                    "metrics": {"kpi": 0.4},
                },
            ],
            "comparison": [
                {
                    "variant": "B",
                    "metric": "successRate",
                    "difference": -0.4,
                    "low": -0.7,
                    "high": -0.1,
                    "significant": True,
                    "statement": "B's success rate is lower than A's by 0.4 points",
                },
            ],
            "message": "concluded",
        }
    }
    status = InferenceServiceStatus.model_validate(wire)
    assert status.experiment is not None and status.experiment.variants[1].metrics == {"kpi": 0.4}
    assert status.dump()["experiment"] == {**wire["experiment"], "ended": False, "problems": []}
