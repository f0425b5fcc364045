"""Istio provider: one VirtualService with weighted destinations for HTTP and gRPC."""

from __future__ import annotations

from tritonop.api.models import TrafficTarget
from tritonop.children import isvc_labels
from tritonop.traffic.istio import IstioProvider

SPLIT = [TrafficTarget(revision="aaaaaaaaaa", percent=90), TrafficTarget(revision="bbbbbbbbbb", percent=10)]


def routes_by_name(virtual_service):
    return {route["name"]: route for route in virtual_service["spec"]["http"]}


def test_virtual_service_defaults_to_the_entry_service_host(ref, make_spec, config) -> None:
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), SPLIT, config)
    assert (vs["apiVersion"], vs["kind"]) == ("networking.istio.io/v1", "VirtualService")
    assert vs["metadata"]["name"] == "resnet"
    assert vs["metadata"]["labels"] == isvc_labels("resnet")
    assert vs["metadata"]["ownerReferences"] == [ref.owner_reference()]
    assert vs["spec"]["hosts"] == ["resnet.ml.svc.cluster.local"]
    assert "gateways" not in vs["spec"]
    assert routes_by_name(vs)["http"] == {
        "name": "http",
        "route": [
            {"destination": {"host": "resnet-aaaaaaaaaa.ml.svc.cluster.local", "port": {"number": 8000}}, "weight": 90},
            {"destination": {"host": "resnet-bbbbbbbbbb.ml.svc.cluster.local", "port": {"number": 8000}}, "weight": 10},
        ],
    }


def test_grpc_port_is_routed_to_the_revisions_grpc_port_with_the_same_weights(ref, make_spec, config) -> None:
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), SPLIT, config)
    grpc = routes_by_name(vs)["grpc"]
    assert grpc["match"] == [{"port": 8001}]
    assert [(d["destination"]["port"]["number"], d["weight"]) for d in grpc["route"]] == [(8001, 90), (8001, 10)]
    # The port match must come first: Istio uses the first matching route.
    assert vs["spec"]["http"][0]["name"] == "grpc"


def test_hosts_and_gateways_from_the_spec(ref, make_spec, config) -> None:
    traffic = {"provider": "istio", "istio": {"hosts": ["resnet.example.com"], "gateways": ["istio-ingress/public"]}}
    (vs,) = IstioProvider().build(
        ref, make_spec(traffic=traffic), [TrafficTarget(revision="aaaaaaaaaa", percent=100)], config
    )
    assert vs["spec"]["hosts"] == ["resnet.example.com"]
    assert vs["spec"]["gateways"] == ["istio-ingress/public"]
    for route in vs["spec"]["http"]:
        assert sum(d["weight"] for d in route["route"]) == 100
