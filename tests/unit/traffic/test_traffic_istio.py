"""Istio provider: one VirtualService with weighted destinations for HTTP and gRPC."""

from __future__ import annotations

from tritonop.api.models import TrafficTarget
from tritonop.children import isvc_labels
from tritonop.traffic.exposure import GRPC_CONTROL_METHODS, GRPC_METHODS
from tritonop.traffic.istio import IstioProvider
from tritonop.traffic.routing import Routing

SPLIT = [TrafficTarget(revision="aaaaaaaaaa", percent=90), TrafficTarget(revision="bbbbbbbbbb", percent=10)]


def routes_by_name(virtual_service):
    return {route["name"]: route for route in virtual_service["spec"]["http"]}


def test_virtual_service_defaults_to_the_entry_service_host(ref, make_spec, config) -> None:
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), Routing(SPLIT), config)
    assert (vs["apiVersion"], vs["kind"]) == ("networking.istio.io/v1", "VirtualService")
    assert vs["metadata"]["name"] == "resnet"
    assert vs["metadata"]["labels"] == isvc_labels("resnet")
    assert vs["metadata"]["ownerReferences"] == [ref.owner_reference()]
    assert vs["spec"]["hosts"] == ["resnet.ml.svc.cluster.local"]
    assert "gateways" not in vs["spec"]
    assert routes_by_name(vs)["http"] == {
        "name": "http",
        "match": [{"uri": {"prefix": "/v2/models/"}}, {"uri": {"prefix": "/v2/health/"}}, {"uri": {"exact": "/v2"}}],
        "route": [
            {"destination": {"host": "resnet-aaaaaaaaaa.ml.svc.cluster.local", "port": {"number": 8000}}, "weight": 90},
            {"destination": {"host": "resnet-bbbbbbbbbb.ml.svc.cluster.local", "port": {"number": 8000}}, "weight": 10},
        ],
    }


def test_grpc_port_is_routed_to_the_revisions_grpc_port_with_the_same_weights(ref, make_spec, config) -> None:
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), Routing(SPLIT), config)
    grpc = routes_by_name(vs)["grpc"]
    assert grpc["match"] == [
        {"port": 8001, "uri": {"exact": f"/inference.GRPCInferenceService/{method}"}} for method in GRPC_METHODS
    ]
    assert not {f"/inference.GRPCInferenceService/{m}" for m in GRPC_CONTROL_METHODS} & {
        match["uri"]["exact"] for match in grpc["match"]
    }
    assert [(d["destination"]["port"]["number"], d["weight"]) for d in grpc["route"]] == [(8001, 90), (8001, 10)]
    # The gRPC route comes first: Istio uses the first matching route.
    assert vs["spec"]["http"][0]["name"] == "grpc"


def test_every_route_has_matches(ref, make_spec, config) -> None:
    """A route without match would take every request, control APIs included."""
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), Routing(SPLIT), config)
    assert all(route.get("match") for route in vs["spec"]["http"])


def test_hosts_and_gateways_from_the_spec(ref, make_spec, config) -> None:
    traffic = {"provider": "istio", "istio": {"hosts": ["resnet.example.com"], "gateways": ["istio-ingress/public"]}}
    (vs,) = IstioProvider().build(
        ref, make_spec(traffic=traffic), Routing([TrafficTarget(revision="aaaaaaaaaa", percent=100)]), config
    )
    assert vs["spec"]["hosts"] == ["resnet.example.com"]
    assert vs["spec"]["gateways"] == ["istio-ingress/public"]
    for route in vs["spec"]["http"]:
        assert sum(d["weight"] for d in route["route"]) == 100
