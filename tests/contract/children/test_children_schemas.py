"""Every child of every example validates against the schema of its kind.

Built-in kinds (Deployment, Service, HPA, PDB, Ingress) validate strictly with
kubernetes_validate against Kubernetes 1.30's OpenAPI schemas. CRD-typed children
(HTTPRoute, GRPCRoute, VirtualService, ScaledObject) validate with jsonschema
against the schemas in schemas/: hand-written subsets of the upstream API
definitions (required fields, types, ranges such as weights), because the upstream
CRDs cannot be fetched here.

Children are checked in two states: as rendered (first revision at 100%), and
mid-canary (a second revision at 25%, plus that revision scaled to 0 as after a
rollback), so the canary-only objects (nginx canary Ingress, weighted backends)
are covered too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from tests.contract.children.conftest import EXAMPLES_CONFIG
from tritonop.api.models import TrafficTarget
from tritonop.children import IsvcRef, build_entry_service, build_revision, parse_spec, revision_of
from tritonop.render import render
from tritonop.traffic import provider_for
from tritonop.traffic.routing import Routing

KUBERNETES_VERSION = "1.30.0"
SCHEMA_DIR = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute.schema.yaml",
    ("gateway.networking.k8s.io/v1", "GRPCRoute"): "grpcroute.schema.yaml",
    ("networking.istio.io/v1", "VirtualService"): "virtualservice.schema.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.schema.yaml",
}


def _schema_registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.schema.yaml"):
        contents = yaml.safe_load(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


REGISTRY = _schema_registry()


def validate_child(obj: dict[str, Any]) -> None:
    """Raise if obj does not validate against its kind's schema (ValidationError of either library)."""
    schema_file = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if schema_file is None:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    schema = REGISTRY.contents(schema_file)
    jsonschema.Draft7Validator(schema, registry=REGISTRY).validate(obj)


def children_in_both_states(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    config = EXAMPLES_CONFIG
    ref = IsvcRef.from_object(isvc)
    spec = parse_spec(isvc)
    stable = revision_of(spec)
    canary_triton = spec.triton.model_copy(update={"args": [*spec.triton.args, "--log-verbose=1"]})
    canary_spec = spec.model_copy(update={"triton": canary_triton})
    canary = revision_of(canary_spec)
    provider = provider_for(spec)
    targets = [TrafficTarget(revision=stable, percent=75), TrafficTarget(revision=canary, percent=25)]
    return [
        *render(isvc, config),
        *build_revision(ref, canary_spec, canary, config, replicas=provider.canary_replicas(2, 25)),
        build_entry_service(ref, spec, config, revisions=[stable, canary]),
        *provider.build(ref, spec, Routing(targets), config),
        *build_revision(ref, canary_spec, canary, config, replicas=0),
    ]


def test_every_child_validates(example: Any) -> None:
    children = children_in_both_states(example.isvc)
    for child in children:
        try:
            validate_child(child)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{example.name}: {child['kind']} {child['metadata']['name']}: {error}")


def test_examples_cover_every_crd_typed_kind(examples: list[Any]) -> None:
    built = {(c["apiVersion"], c["kind"]) for e in examples for c in children_in_both_states(e.isvc)}
    assert set(CRD_SCHEMAS) <= built, f"no example builds {sorted(set(CRD_SCHEMAS) - built)}"


def _first(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(c for c in children if c["kind"] == kind))


def test_validation_rejects_broken_children(examples: list[Any]) -> None:
    """The validators are not vacuous: a broken child of each family fails."""
    by_name = {e.name: e for e in examples}
    deployment = _first(render(by_name["minimal-cpu"].isvc, EXAMPLES_CONFIG), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["port"] = 8000
    route = _first(render(by_name["canary-gateway-api"].isvc, EXAMPLES_CONFIG), "HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    grpc_route = _first(render(by_name["canary-gateway-api"].isvc, EXAMPLES_CONFIG), "GRPCRoute")
    grpc_route["spec"]["rules"][0]["matches"] = [m for rule in grpc_route["spec"]["rules"] for m in rule["matches"]]
    virtual_service = _first(render(by_name["canary-istio"].isvc, EXAMPLES_CONFIG), "VirtualService")
    del virtual_service["spec"]["http"][0]["route"][0]["destination"]["host"]
    scaled_object = _first(render(by_name["keda-queue-time"].isvc, EXAMPLES_CONFIG), "ScaledObject")
    scaled_object["spec"]["triggers"][0]["metadata"]["threshold"] = 20
    for broken in (deployment, route, grpc_route, virtual_service, scaled_object):
        with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
            validate_child(broken)
