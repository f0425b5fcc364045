"""The CRD generated from the models: drift, structural schema, and CEL rules evaluated for real.

CEL is evaluated with cel-python; Kubernetes' list extension `isSorted()` is supplied
here with its documented meaning, since cel-python ships only standard CEL.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import celpy
import pytest
from celpy import celtypes

from tritonop.api.crd import CRD_PATH, crd_yaml, generate_crd

REPO = Path(__file__).resolve().parents[3]
CRD = generate_crd()
VERSION = CRD["spec"]["versions"][0]
ROOT = VERSION["schema"]["openAPIV3Schema"]
SPEC = ROOT["properties"]["spec"]


def test_checked_in_crd_matches_the_models() -> None:
    checked_in = (REPO / CRD_PATH).read_text()
    assert checked_in == crd_yaml(), "crds/ drifted from the models: run `tritonop crd > " + CRD_PATH + "`"


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in (node.get("properties") or {}).items():
        out += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def test_schema_is_structural() -> None:
    for path, node in _walk(ROOT):
        if node.get("x-kubernetes-int-or-string"):
            # The one anyOf a structural schema allows, as Kubernetes' own quantities use it.
            assert node.get("anyOf") == INT_OR_STRING and "type" not in node, path
            node = {k: v for k, v in node.items() if k != "anyOf"}
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "default", "$defs"} & set(node), path
        assert (
            node.get("type") or node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        ), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path


def test_every_spec_field_is_described() -> None:
    undescribed = [p for p, n in _walk(SPEC) if p.count(".") == 2 and not n.get("description") and "[]" not in p and "{}" not in p]
    assert undescribed == []


def test_crd_identity_and_printer_columns() -> None:
    names = CRD["spec"]["names"]
    assert CRD["metadata"]["name"] == "inferenceservices.serving.tritonop.dev"
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        "InferenceService", "inferenceservices", ["tis"], ["tritonop"],
    )
    assert CRD["spec"]["scope"] == "Namespaced" and VERSION["subresources"] == {"status": {}}
    assert [c["name"] for c in VERSION["additionalPrinterColumns"]] == [
        "Ready", "Phase", "Stable", "Canary", "Canary %", "URL", "Age",
    ]
    assert CRD["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,ServerSideApply=true"


def _rules(node: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


def _evaluate(rule: str, value: Any) -> bool:
    env = celpy.Environment()
    program = env.program(
        env.compile(rule),
        functions={"isSorted": lambda xs: celtypes.BoolType(all(a <= b for a, b in pairwise(list(xs))))},
    )
    return bool(program.evaluate({"self": celpy.json_to_cel(value)}))


def _all_pass(node: dict[str, Any], value: Any) -> bool:
    return all(_evaluate(rule, value) for rule in _rules(node))


KEDA_CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
PODS_METRIC = {"type": "Pods", "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": 1}}}


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("model", {"storageUri": "s3://bucket/repo"}, True),
        ("model", {"storageUri": "pvc://claim/models"}, True),
        ("model", {"storageUri": "ftp://host/repo"}, False),
        ("model", {"storageUri": "s3:/missing-slash"}, False),
        ("triton", {"gpus": 0}, True),
        ("triton", {"gpus": -1}, False),
        ("autoscaling", {"minReplicas": 2, "maxReplicas": 4}, True),
        ("autoscaling", {"minReplicas": 3}, False),  # maxReplicas defaults to 1
        ("autoscaling", {"minReplicas": 5, "maxReplicas": 4}, False),
        ("autoscaling", {"engine": "keda", "metrics": [KEDA_CPU]}, True),
        ("autoscaling", {"metrics": [PODS_METRIC]}, True),
        ("autoscaling", {"engine": "keda", "metrics": [PODS_METRIC]}, False),
        ("rollout", {"steps": [10, 25, 50]}, True),
        ("rollout", {}, True),
        ("rollout", {"steps": [50, 25]}, False),
        ("rollout", {"steps": [10, 10, 50]}, False),
        ("rollout", {"steps": [0, 50]}, False),
        ("rollout", {"steps": [50, 100]}, False),
        ("traffic", {"provider": "service"}, True),
        ("traffic", {"provider": "gateway-api"}, False),
        ("traffic", {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}, True),
        ("traffic", {"provider": "nginx"}, False),
        ("traffic", {"provider": "nginx", "nginx": {"host": "x.example.com"}}, True),
    ],
)
def test_cel_rules(field: str, value: dict[str, Any], accepted: bool) -> None:
    node = SPEC["properties"][field]
    assert _rules(node), f"{field} carries no CEL rule"
    assert _all_pass(node, value) is accepted


def test_cel_custom_check_needs_a_bound() -> None:
    item = SPEC["properties"]["rollout"]["properties"]["analysis"]["properties"]["checks"]["items"]
    assert _all_pass(item, {"name": "c", "query": "up", "max": 1})
    assert not _all_pass(item, {"name": "c", "query": "up"})


def test_cel_name_length() -> None:
    assert _all_pass(ROOT, {"metadata": {"name": "a" * 52}})
    assert not _all_pass(ROOT, {"metadata": {"name": "a" * 53}})


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("resnet", True), ("r", True), ("a1-b2", True), ("1model", False), ("my.model", False), ("Resnet", False),
     ("resnet-", False), ("-resnet", False)],
)
def test_cel_name_makes_valid_service_names(name: str, accepted: bool) -> None:
    """NAME and NAME-REVISION are Service names: DNS-1035 labels, which the API server's own name check is not."""
    assert _all_pass(ROOT, {"metadata": {"name": name}}) is accepted


def _duration_node(*path: str) -> dict[str, Any]:
    node = SPEC
    for part in path:
        node = node["properties"][part]
    return node


@pytest.mark.parametrize(
    ("path", "value", "accepted"),
    [
        (("rollout", "interval"), "1s", True),
        (("rollout", "interval"), "24h", True),
        (("rollout", "interval"), "999ms", False),
        (("rollout", "interval"), "24h0.001ms", False),
        (("rollout", "readinessTimeout"), "0s", False),
        (("rollout", "readinessTimeout"), "23h60m", True),
        (("rollout", "analysis", "noDataTimeout"), "0s", True),
        (("rollout", "analysis", "noDataTimeout"), "99999h", False),
        (("rollout", "acceptance", "timeout"), "0s", False),
        (("rollout", "acceptance", "timeout"), "0.001ms", True),
        (("rollout", "acceptance", "timeout"), "5m", True),
        (("rollout", "acceptance", "timeout"), "5m0.001ms", False),
    ],
)
def test_cel_duration_bounds(path: tuple[str, ...], value: str, accepted: bool) -> None:
    node = _duration_node(*path)
    assert node["maxLength"] == 32 and node["pattern"].startswith("^([0-9]{1,5}")
    assert _all_pass(node, value) is accepted


def test_every_array_and_free_string_is_bounded_for_cel_cost() -> None:
    unbounded = [p for p, n in _walk(SPEC) if n.get("type") == "array" and "maxItems" not in n and "[]" not in p]
    assert unbounded == []
