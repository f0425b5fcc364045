"""Gateway API: an HTTPRoute (and a GRPCRoute for Triton's gRPC port) weighting revision Services.

Both match only what traffic.exposure lists (inference, metadata, health), never
Triton's model-repository, shared-memory, trace or log APIs. The first rule of each
route carries the weighted split (and the RequestMirror filter of a shadow phase); rules
after it send requests with traffic.match's header or cookie, or a sticky cookie, to one
revision: Gateway API prefers the rule with more header matches, whatever the order.
"""

from __future__ import annotations

import copy
from typing import Any

from tritonop.api.models import GatewayRouting, InferenceServiceSpec, SessionAffinity, TrafficMatch, TrafficTarget
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
from tritonop.traffic.routing import Mirror, Routing
from tritonop.traffic.targets import (
    COOKIE_HEADER,
    SET_COOKIE_HEADER,
    cookie_regex,
    first_concrete_host,
    routed_targets,
    set_cookie,
    sticky_revisions,
)

# Gateway API allows at most 8 matches in a GRPCRouteRule.
GRPC_MATCHES_PER_RULE = 8


class GatewayApiProvider:
    name = "gateway-api"
    kinds: tuple[Kind, ...] = (HTTP_ROUTE, GRPC_ROUTE)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name,)

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, routing: Routing, config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """HTTPRoute NAME to port 8000; with gateway.grpc also GRPCRoute NAME to port 8001, same weights."""
        gateway = spec.traffic.gateway
        if gateway is None:
            raise ValueError("traffic.provider gateway-api needs traffic.gateway")
        routed = routed_targets(routing.targets)
        match, matched = spec.traffic.match, routing.matched
        affinity = spec.traffic.session_affinity
        http_rules = [_weighted_rule(ref, _http_matches([]), routed, HTTP_PORT, routing.mirror, affinity)]
        if match is not None and matched is not None:
            conditions = [*_header_conditions(match), *_cookie_conditions(match)]
            http_rules.append(_rule_to(ref, _http_matches(conditions), matched, HTTP_PORT))
        if affinity is not None:
            for revision in sticky_revisions(routed):
                cookie = [_cookie_match(affinity.cookie_name, revision)]
                http_rules.append(_rule_to(ref, _http_matches(cookie), revision, HTTP_PORT))
        routes = [_route(ref, gateway, HTTP_ROUTE, http_rules)]
        if gateway.grpc:
            # gRPC clients keep no cookies: the GRPCRoute has the split, the mirror and the header match.
            grpc_rules = [
                _weighted_rule(ref, matches, routed, GRPC_PORT, routing.mirror, None)
                for matches in _grpc_match_groups([])
            ]
            if match is not None and match.header is not None and matched is not None:
                grpc_rules += [
                    _rule_to(ref, matches, matched, GRPC_PORT)
                    for matches in _grpc_match_groups(_header_conditions(match))
                ]
            routes.append(_route(ref, gateway, GRPC_ROUTE, grpc_rules))
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


def _weighted_rule(
    ref: IsvcRef,
    matches: list[dict[str, Any]],
    routed: list[TrafficTarget],
    port: int,
    mirror: Mirror | None,
    affinity: SessionAffinity | None,
) -> dict[str, Any]:
    """The split; with ``affinity``, the answers of the sticky revisions set their cookie."""
    rule: dict[str, Any] = {"matches": matches}
    if mirror is not None:
        rule["filters"] = [_mirror_filter(ref, mirror, port)]
    sticky = sticky_revisions(routed) if affinity is not None else []
    backends = []
    for target in routed:
        backend: dict[str, Any] = {**_backend(ref, target.revision, port), "weight": target.percent}
        if affinity is not None and target.revision in sticky:
            header = {"name": SET_COOKIE_HEADER, "value": set_cookie(affinity, target.revision)}
            backend["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [header]}}]
        backends.append(backend)
    rule["backendRefs"] = backends
    return rule


def _rule_to(ref: IsvcRef, matches: list[dict[str, Any]], revision: str, port: int) -> dict[str, Any]:
    """A rule that sends what ``matches`` to ``revision`` alone."""
    return {"matches": matches, "backendRefs": [_backend(ref, revision, port)]}


def _backend(ref: IsvcRef, revision: str, port: int) -> dict[str, Any]:
    return {"kind": "Service", "name": revision_child_name(ref, revision), "port": port}


def _mirror_filter(ref: IsvcRef, mirror: Mirror, port: int) -> dict[str, Any]:
    """RequestMirror with percent (Gateway API v1.3+ standard; Support: Extended)."""
    return {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": _backend(ref, mirror.revision, port), "percent": mirror.percent},
    }


def _header_conditions(match: TrafficMatch) -> list[dict[str, Any]]:
    if match.header is None:
        return []
    return [{"type": "Exact", "name": match.header.name, "value": match.header.value}]


def _cookie_conditions(match: TrafficMatch) -> list[dict[str, Any]]:
    return [_cookie_match(match.cookie.name, match.cookie.value)] if match.cookie is not None else []


def _cookie_match(name: str, value: str) -> dict[str, Any]:
    """A cookie as Gateway API can match it: a RegularExpression match of the Cookie header
    (Support: Implementation-specific; RE2 in Envoy-based implementations)."""
    return {"type": "RegularExpression", "name": COOKIE_HEADER, "value": cookie_regex(name, value)}


def _http_matches(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exposed prefixes, then the exact paths; with ``conditions`` (alternatives), each
    path once per header condition."""
    paths = [{"type": "PathPrefix", "value": path} for path in HTTP_PATH_PREFIXES]
    paths += [{"type": "Exact", "value": path} for path in HTTP_EXACT_PATHS]
    if not conditions:
        return [{"path": path} for path in paths]
    return [{"path": dict(path), "headers": [dict(condition)]} for condition in conditions for path in paths]


def _grpc_match_groups(conditions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Method matches of the GRPCRoute: the model methods and the server's in rules of their
    own, at most 8 matches each; with ``conditions`` (alternatives), each method once per
    header condition."""
    groups = []
    for methods in (GRPC_MODEL_METHODS, GRPC_SERVER_METHODS):
        matches: list[dict[str, Any]] = [
            {"method": {"type": "Exact", "service": GRPC_SERVICE, "method": method}} for method in methods
        ]
        if conditions:
            matches = [{**m, "method": dict(m["method"]), "headers": [dict(c)]} for c in conditions for m in matches]
        groups += [matches[i : i + GRPC_MATCHES_PER_RULE] for i in range(0, len(matches), GRPC_MATCHES_PER_RULE)]
    return groups
