"""Gateway API: an HTTPRoute (and a GRPCRoute for Triton's gRPC port) weighting revision Services.

Both match only what traffic.exposure lists (inference, metadata, health), never
Triton's model-repository, shared-memory, trace or log APIs.
"""

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
from tritonop.traffic.exposure import (
    GRPC_MODEL_METHODS,
    GRPC_SERVER_METHODS,
    GRPC_SERVICE,
    HTTP_EXACT_PATHS,
    HTTP_PATH_PREFIXES,
)
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
        http_backends = _backends(ref, routed, HTTP_PORT)
        routes = [_route(ref, gateway, HTTP_ROUTE, [{"matches": _http_matches(), "backendRefs": http_backends}])]
        if gateway.grpc:
            # A list of its own per rule: shared objects would dump as YAML aliases.
            rules = [
                {"matches": matches, "backendRefs": _backends(ref, routed, GRPC_PORT)}
                for matches in _grpc_match_groups()
            ]
            routes.append(_route(ref, gateway, GRPC_ROUTE, rules))
        return routes

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """None: the route sets the split, so the canary keeps its own autoscaling."""
        return None

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """The first concrete hostname of the route."""
        gateway = spec.traffic.gateway
        host = first_concrete_host(gateway.hostnames) if gateway else None
        return f"http://{host}" if host else None


def _route(ref: IsvcRef, gateway: GatewayRouting, kind: Kind, rules: list[dict[str, Any]]) -> dict[str, Any]:
    route_spec: dict[str, Any] = {"parentRefs": copy.deepcopy(gateway.parent_refs)}
    if gateway.hostnames:
        route_spec["hostnames"] = list(gateway.hostnames)
    route_spec["rules"] = rules
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


def _http_matches() -> list[dict[str, Any]]:
    """Path matches of the HTTPRoute's one rule: the exposed prefixes, then the exact paths."""
    prefixes = [{"path": {"type": "PathPrefix", "value": path}} for path in HTTP_PATH_PREFIXES]
    return prefixes + [{"path": {"type": "Exact", "value": path}} for path in HTTP_EXACT_PATHS]


def _grpc_match_groups() -> list[list[dict[str, Any]]]:
    """Method matches of the GRPCRoute: one rule for the model methods, one for the server's
    (same backends each), since Gateway API allows at most 8 matches in a GRPCRouteRule."""
    return [
        [{"method": {"type": "Exact", "service": GRPC_SERVICE, "method": method}} for method in methods]
        for methods in (GRPC_MODEL_METHODS, GRPC_SERVER_METHODS)
    ]
