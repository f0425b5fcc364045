"""model.models (several models, or "*") and acceptance cases naming their model: what the CRD
admits and what the operator parses agree, with the same message, and one-model specs are untouched."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.api.admission import Admission
from tritonop.api.crd import generate_crd
from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus, ModelFacts
from tritonop.children import BuildError, parse_spec, revision_of

ADMISSION = Admission(generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
CASE = {"name": "c", "inputs": [{"name": "X", "datatype": "FP32", "shape": [1], "data": [1.0]}]}


def isvc(model: dict[str, Any], *cases: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"storageUri": "s3://bucket/repo", **model}}
    if cases:
        spec["rollout"] = {"acceptance": {"cases": [copy.deepcopy(c) for c in cases]}}
    return {"apiVersion": "serving.tritonop.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "chain", "namespace": "ml"}, "spec": spec}  # fmt: skip


@pytest.mark.parametrize(
    "obj",
    [
        isvc({"models": ["preprocess", "resnet", "ensemble"]}),
        isvc({"models": ["*"]}),
        isvc({"models": ["ensemble"]}, CASE),  # one listed model is the cases' default
        isvc({"models": ["pre", "ensemble"]}, {**CASE, "model": "ensemble"}),
        isvc({"models": ["*"]}, {**CASE, "model": "ensemble"}),
        isvc({"name": "ensemble"}, {**CASE, "model": "pre"}),  # a composing model is served too
    ],
)
def test_admitted_and_parsed(obj: dict[str, Any]) -> None:
    assert ADMISSION.admit(obj) == []
    parse_spec(obj)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (isvc({"models": ["a"], "name": "a"}), "model.models and model.name are exclusive"),
        (isvc({"models": ["a", "b"], "version": "2"}), "model.version pins one model"),
        (isvc({"models": ["*", "a"]}), '"*" (every model in the repository) stands alone'),
        (isvc({"models": ["a", "b", "a"]}), "model.models must name each model once"),
        (isvc({"models": ["a", "b"]}, CASE), "cases[].model is required when model.models serves several"),
        (isvc({"models": ["*"]}, CASE), "cases[].model is required when model.models serves several"),
    ],
)
def test_cross_field_rules_refuse_alike(obj: dict[str, Any], message: str) -> None:
    refusals = ADMISSION.admit(obj)
    assert len(refusals) == 1 and message in refusals[0], refusals
    with pytest.raises(BuildError) as error:
        parse_spec(obj)
    assert error.value.reason == "InvalidSpec" and message in str(error.value)


@pytest.mark.parametrize(
    "model",
    [{"models": []}, {"models": ["bad/name"]}, {"models": ["x" * 129]}, {"models": [f"m{i}" for i in range(65)]}],
)
def test_list_bounds_and_names(model: dict[str, Any]) -> None:
    assert ADMISSION.admit(isvc(model)) != []
    with pytest.raises(BuildError):
        parse_spec(isvc(model))


def test_a_case_names_a_model_by_triton_name() -> None:
    assert ADMISSION.admit(isvc({"models": ["a", "b"]}, {**CASE, "model": "not a name"})) != []


def test_one_model_specs_keep_their_wire_form_and_revision() -> None:
    spec = InferenceServiceSpec.model_validate({"model": {"name": "resnet50", "storageUri": "s3://models/repository"}})
    assert spec.dump()["model"] == {"name": "resnet50", "storageUri": "s3://models/repository"}
    several = InferenceServiceSpec.model_validate(
        {"model": {"models": ["resnet50"], "storageUri": "s3://models/repository"}}
    )
    assert revision_of(several) != revision_of(spec)


def test_status_lists_each_model_and_keeps_one_model_status_as_it_was() -> None:
    one = InferenceServiceStatus(model=ModelFacts(name="resnet", platform="onnxruntime_onnx"))
    assert "models" not in one.dump() and one.dump()["model"]["name"] == "resnet"
    several = InferenceServiceStatus(models=[ModelFacts(name="pre"), ModelFacts(name="pipeline", platform="ensemble")])
    wire = several.dump()
    assert "model" not in wire
    assert [m["name"] for m in wire["models"]] == ["pre", "pipeline"]
    assert InferenceServiceStatus.model_validate(wire) == several
