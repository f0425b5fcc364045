"""Gateway API provider: HTTPRoute (and GRPCRoute) weights per revision Service."""

from __future__ import annotations

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.children import isvc_labels
from tritonop.traffic.exposure import GRPC_CONTROL_METHODS, GRPC_METHODS
from tritonop.traffic.gateway_api import GatewayApiProvider
from tritonop.traffic.routing import Routing

PARENT = {"name": "inference-gateway", "namespace": "gateways", "sectionName": "http"}
SPLIT = [TrafficTarget(revision="aaaaaaaaaa", percent=75), TrafficTarget(revision="bbbbbbbbbb", percent=25)]


def gateway_spec(make_spec, **gateway):
    return make_spec(traffic={"provider": "gateway-api", "gateway": {"parentRefs": [PARENT], **gateway}})


def test_http_route_weights_each_revision_service(ref, make_spec, config) -> None:
    spec = gateway_spec(make_spec, hostnames=["resnet.example.com"])
    (route,) = GatewayApiProvider().build(ref, spec, Routing(SPLIT), config)
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert route["metadata"]["name"] == "resnet"
    assert route["metadata"]["labels"] == isvc_labels("resnet")
    assert route["metadata"]["ownerReferences"] == [ref.owner_reference()]
    assert route["spec"]["parentRefs"] == [PARENT]
    assert route["spec"]["hostnames"] == ["resnet.example.com"]
    assert route["spec"]["rules"] == [
        {
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/v2/models"}},
                {"path": {"type": "PathPrefix", "value": "/v2/health"}},
                {"path": {"type": "Exact", "value": "/v2"}},
            ],
            "backendRefs": [
                {"kind": "Service", "name": "resnet-aaaaaaaaaa", "port": 8000, "weight": 75},
                {"kind": "Service", "name": "resnet-bbbbbbbbbb", "port": 8000, "weight": 25},
            ]
        }
    ]


def test_grpc_route_carries_the_same_weights_to_the_grpc_port(ref, make_spec, config) -> None:
    http, grpc = GatewayApiProvider().build(ref, gateway_spec(make_spec, grpc=True), Routing(SPLIT), config)
    assert grpc["kind"] == "GRPCRoute" and grpc["metadata"]["name"] == "resnet"
    assert "hostnames" not in grpc["spec"]
    http_backends = http["spec"]["rules"][0]["backendRefs"]
    for rule in grpc["spec"]["rules"]:
        grpc_backends = rule["backendRefs"]
        assert [(b["name"], b["weight"]) for b in grpc_backends] == [(b["name"], b["weight"]) for b in http_backends]
        assert {b["port"] for b in grpc_backends} == {8001}


def test_grpc_route_matches_only_the_inference_methods(ref, make_spec, config) -> None:
    _, grpc = GatewayApiProvider().build(ref, gateway_spec(make_spec, grpc=True), Routing(SPLIT), config)
    rules = grpc["spec"]["rules"]
    # Gateway API: at most 8 matches per GRPCRouteRule; a rule without matches would match every method.
    assert all(0 < len(rule["matches"]) <= 8 for rule in rules)
    methods = [m["method"] for rule in rules for m in rule["matches"]]
    assert {(m["type"], m["service"]) for m in methods} == {("Exact", "inference.GRPCInferenceService")}
    assert [m["method"] for m in methods] == list(GRPC_METHODS)
    assert {
        "ModelInfer", "ModelStreamInfer", "ModelReady", "ModelMetadata", "ModelConfig", "ModelStatistics",
        "ServerLive", "ServerReady", "ServerMetadata",
    } == set(GRPC_METHODS)
    assert not set(GRPC_CONTROL_METHODS) & {m["method"] for m in methods}


def test_rules_do_not_share_objects(ref, make_spec, config) -> None:
    """Shared dicts would dump as YAML anchors and aliases (&id001) in `tritonop render`."""
    _, grpc = GatewayApiProvider().build(ref, gateway_spec(make_spec, grpc=True), Routing(SPLIT), config)
    first, second = grpc["spec"]["rules"]
    assert first["backendRefs"] == second["backendRefs"] and first["backendRefs"] is not second["backendRefs"]


def test_a_zero_percent_canary_gets_no_backend(ref, make_spec, config) -> None:
    targets = [TrafficTarget(revision="aaaaaaaaaa", percent=100), TrafficTarget(revision="bbbbbbbbbb", percent=0)]
    (route,) = GatewayApiProvider().build(ref, gateway_spec(make_spec), Routing(targets), config)
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["resnet-aaaaaaaaaa"]


@pytest.mark.parametrize(
    "targets",
    [
        [],
        [TrafficTarget(revision="aaaaaaaaaa", percent=90)],
        [TrafficTarget(revision="aaaaaaaaaa", percent=110), TrafficTarget(revision="bbbbbbbbbb", percent=-10)],
    ],
)
def test_splits_that_do_not_add_up_to_100_are_refused(ref, make_spec, config, targets) -> None:
    with pytest.raises(ValueError):
        GatewayApiProvider().build(ref, gateway_spec(make_spec), Routing(targets), config)
