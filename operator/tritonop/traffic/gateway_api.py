"""Gateway API: an HTTPRoute (and a GRPCRoute for Triton's gRPC port) weighting revision Services."""

from __future__ import annotations

import copy
from typing import Any

from tritonop.api.models import GatewayRouting, InferenceServiceSpec, TrafficTarget
from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, revision_child_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import GRPC_ROUTE, HTTP_ROUTE, Kind
from tritonop.traffic.targets import first_concrete_host, routed_targets


class GatewayApiProvider:
    name = "gateway-api"
    kinds: tuple[Kind, ...] = (HTTP_ROUTE, GRPC_ROUTE)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name,)

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, targets: list[TrafficTarget], config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """HTTPRoute NAME to port 8000; with gateway.grpc also GRPCRoute NAME to port 8001, same weights."""
        gateway = spec.traffic.gateway
        if gateway is None:
            raise ValueError("traffic.provider gateway-api needs traffic.gateway")
        routed = routed_targets(targets)
        routes = [_route(ref, gateway, HTTP_ROUTE, _backends(ref, routed, HTTP_PORT))]
        if gateway.grpc:
            routes.append(_route(ref, gateway, GRPC_ROUTE, _backends(ref, routed, GRPC_PORT)))
        return routes

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """None: the route sets the split, so the canary keeps its own autoscaling."""
        return None

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """The first concrete hostname of the route."""
        gateway = spec.traffic.gateway
        host = first_concrete_host(gateway.hostnames) if gateway else None
        return f"http://{host}" if host else None


def _route(ref: IsvcRef, gateway: GatewayRouting, kind: Kind, backends: list[dict[str, Any]]) -> dict[str, Any]:
    route_spec: dict[str, Any] = {"parentRefs": copy.deepcopy(gateway.parent_refs)}
    if gateway.hostnames:
        route_spec["hostnames"] = list(gateway.hostnames)
    route_spec["rules"] = [{"backendRefs": backends}]
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": child_metadata(ref, ref.name, isvc_labels(ref.name)),
        "spec": route_spec,
    }


def _backends(ref: IsvcRef, routed: list[TrafficTarget], port: int) -> list[dict[str, Any]]:
    return [
        {"kind": "Service", "name": revision_child_name(ref, t.revision), "port": port, "weight": t.percent}
        for t in routed
    ]
