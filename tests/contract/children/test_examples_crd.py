"""Every example is a valid InferenceService: for the pydantic models and for the generated CRD.

The CRD's openAPIV3Schema is OpenAPI 3.0 (draft-4 style exclusiveMinimum), so it is
checked with jsonschema's Draft4Validator; its CEL rules are not evaluated here (the
pydantic validators implement the same checks, exercised by parse_spec).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tritonop import GROUP, PLURAL, VERSION
from tritonop.children import parse_spec

CRD_FILE = Path(__file__).resolve().parents[3] / "crds" / f"{GROUP}_{PLURAL}.yaml"


@pytest.fixture(scope="module")
def crd_validator() -> jsonschema.Draft4Validator:
    assert CRD_FILE.exists(), f"{CRD_FILE} is missing: generate it with `tritonop crd`"
    crd = yaml.safe_load(CRD_FILE.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    return jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"])


def test_example_parses(example: Any) -> None:
    spec = parse_spec(example.isvc)
    assert spec.model.storage_uri == example.isvc["spec"]["model"]["storageUri"]


def test_example_validates_against_crd(example: Any, crd_validator: jsonschema.Draft4Validator) -> None:
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator.iter_errors(example.isvc)]
    assert not errors, f"{example.name}: {errors}"


def test_crd_schema_rejects_an_unknown_provider(examples: list[Any], crd_validator: jsonschema.Draft4Validator) -> None:
    isvc = copy.deepcopy(examples[0].isvc)
    isvc["spec"]["traffic"] = {"provider": "linkerd"}
    assert not crd_validator.is_valid(isvc)
