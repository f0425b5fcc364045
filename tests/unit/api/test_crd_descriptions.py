"""Every field of the generated CRD is explained, as `kubectl explain` prints it.

The schema carries no `default` keywords (api/crd.py says why), so each defaulted
field's description names its default instead: "Default: 5m.".
"""

from __future__ import annotations

import typing
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

from tritonop.api.crd import generate_crd
from tritonop.api.kube_descriptions import KUBE_DESCRIPTIONS
from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus

ROOT = generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
# The API server refuses a CRD whose root metadata schema says more than `type: object`.
UNDESCRIBABLE = {".metadata"}


def _properties(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property, through objects, array items and map values."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, sub in (node.get("properties") or {}).items():
        out.append((f"{path}.{name}", sub))
        out += _properties(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += _properties(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _properties(node["additionalProperties"], f"{path}{{}}")
    return out


def test_every_property_has_a_description() -> None:
    undescribed = [path for path, node in _properties(ROOT) if not node.get("description")]
    assert sorted(set(undescribed) - UNDESCRIBABLE) == [], "properties without a description"
    assert len(_properties(ROOT)) > 300  # the walk reaches the nested Kubernetes types


def test_descriptions_are_sentences() -> None:
    for path, node in _properties(ROOT):
        text = node.get("description")
        if text:
            assert text[0].isupper() or not text[0].isalpha() or text.split()[0].islower(), path
            assert text.rstrip().endswith((".", ")")), f"{path}: {text!r}"


def test_kube_descriptions_name_only_real_types() -> None:
    defs = InferenceServiceSpec.model_json_schema(by_alias=True)["$defs"]
    assert set(KUBE_DESCRIPTIONS) <= set(defs)


# ---------------------------------------------------------------- defaults


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _rendered(value: Any) -> str | None:
    """How a description writes a default, or None for defaults not worth stating (unset, empty)."""
    if value is None or value == "" or value == [] or value == {} or isinstance(value, BaseModel):
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _defaulted_fields() -> list[tuple[str, str, dict[str, Any]]]:
    """(path, rendered default, schema) for every model field with a default worth stating."""
    out: list[tuple[str, str, dict[str, Any]]] = []

    def visit(model: type[BaseModel], node: dict[str, Any], path: str) -> None:
        for name, field in model.model_fields.items():
            alias = field.alias or name
            sub = node["properties"][alias]
            if field.default_factory is not None:
                default = field.default_factory()  # type: ignore[call-arg]
            else:
                default = None if field.is_required() else field.default
            rendered = _rendered(default)
            if rendered is not None:
                out.append((f"{path}.{alias}", rendered, sub))
            for inner in _models_in(field.annotation):
                if "items" in sub:
                    visit(inner, sub["items"], f"{path}.{alias}[]")
                else:
                    visit(inner, sub, f"{path}.{alias}")

    visit(InferenceServiceSpec, ROOT["properties"]["spec"], ".spec")
    visit(InferenceServiceStatus, ROOT["properties"]["status"], ".status")
    return out


DEFAULTED = _defaulted_fields()


def test_the_defaults_walk_finds_the_known_defaults() -> None:
    found = {path: rendered for path, rendered, _ in DEFAULTED}
    assert found[".spec.rollout.analysis.noDataTimeout"] == "5m"
    assert found[".spec.rollout.steps"] == "[10, 25, 50]"
    assert found[".spec.triton.gpus"] == "1"
    assert found[".spec.traffic.provider"] == "service"
    assert len(DEFAULTED) >= 25


@pytest.mark.parametrize(("path", "rendered", "node"), DEFAULTED, ids=[p for p, _, _ in DEFAULTED])
def test_defaulted_fields_name_their_default(path: str, rendered: str, node: dict[str, Any]) -> None:
    description = node.get("description", "")
    assert f"Default: {rendered}" in description, f"{path} defaults to {rendered}; its description: {description!r}"
    assert "default" not in node  # the schema itself never defaults (api/crd.py)


def test_nested_model_fields_are_walked() -> None:
    paths = {path for path, _, _ in DEFAULTED}
    assert ".spec.rollout.acceptance.timeout" in paths  # through an optional model
    assert ".spec.rollout.acceptance.cases[].outputs[].tolerance" in paths  # through lists of models
    assert ".status.canary.step" in paths
