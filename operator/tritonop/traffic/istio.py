"""Istio: a VirtualService weighting the revision Services, for HTTP and gRPC.

Istio takes the first route that matches, so routes sending traffic.match's requests
(and sticky clients) to one revision come before the weighted ones.
"""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec, SessionAffinity, TrafficMatch, TrafficTarget
from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, revision_child_name, service_host
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import VIRTUAL_SERVICE, Kind
from tritonop.traffic.exposure import GRPC_METHODS, HTTP_EXACT_PATHS, HTTP_PATH_PREFIXES, grpc_path
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


class IstioProvider:
    name = "istio"
    kinds: tuple[Kind, ...] = (VIRTUAL_SERVICE,)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name,)

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, routing: Routing, config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """VirtualService NAME: hosts default to the entry Service's FQDN, so mesh clients get the split.

        gRPC calls of the exposed methods arriving on port 8001 (Triton gRPC through the
        entry Service) go to the revisions' port 8001; requests for the exposed HTTP paths
        to port 8000. Nothing else matches, so Istio answers it with 404 itself.
        """
        istio = spec.traffic.istio
        routed = routed_targets(routing.targets)
        vs_spec: dict[str, Any] = {
            "hosts": list(istio.hosts) if istio and istio.hosts else [service_host(ref.name, ref.namespace)],
        }
        if istio and istio.gateways:
            vs_spec["gateways"] = list(istio.gateways)
        match, matched, affinity = spec.traffic.match, routing.matched, spec.traffic.session_affinity
        routes: list[dict[str, Any]] = []
        if match is not None and matched is not None:
            # gRPC clients keep no cookies: gRPC is matched by the header alone.
            if match.header is not None:
                grpc_matches = _grpc_matches(_header_conditions(match))
                routes.append(_route_to(ref, "grpc-match", grpc_matches, matched, GRPC_PORT))
            http_matches = _http_matches([*_header_conditions(match), *_cookie_conditions(match)])
            routes.append(_route_to(ref, "http-match", http_matches, matched, HTTP_PORT))
        if affinity is not None:
            for revision in sticky_revisions(routed):
                cookie = [{COOKIE_HEADER: {"regex": cookie_regex(affinity.cookie_name, revision)}}]
                routes.append(_route_to(ref, f"http-sticky-{revision}", _http_matches(cookie), revision, HTTP_PORT))
        routes += [
            _weighted(ref, "grpc", _grpc_matches([]), routed, GRPC_PORT, routing.mirror, None),
            _weighted(ref, "http", _http_matches([]), routed, HTTP_PORT, routing.mirror, affinity),
        ]
        vs_spec["http"] = routes
        return [
            {
                "apiVersion": VIRTUAL_SERVICE.api_version,
                "kind": VIRTUAL_SERVICE.kind,
                "metadata": child_metadata(ref, ref.name, isvc_labels(ref.name)),
                "spec": vs_spec,
            }
        ]

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """None: the VirtualService sets the split, so the canary keeps its own autoscaling."""
        return None

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """The first concrete host of the VirtualService, when hosts are set."""
        istio = spec.traffic.istio
        host = first_concrete_host(istio.hosts) if istio else None
        return f"http://{host}" if host else None


def _weighted(
    ref: IsvcRef,
    name: str,
    matches: list[dict[str, Any]],
    routed: list[TrafficTarget],
    port: int,
    mirror: Mirror | None,
    affinity: SessionAffinity | None,
) -> dict[str, Any]:
    """The split; with ``mirror`` a copy of its share to the mirror revision, with ``affinity``
    the sticky revisions' answers setting their cookie."""
    route: dict[str, Any] = {"name": name, "match": matches, "route": _destinations(ref, routed, port, affinity)}
    if mirror is not None:
        route["mirror"] = _destination(ref, mirror.revision, port)
        route["mirrorPercentage"] = {"value": float(mirror.percent)}
    return route


def _route_to(ref: IsvcRef, name: str, matches: list[dict[str, Any]], revision: str, port: int) -> dict[str, Any]:
    """A route that sends what ``matches`` to ``revision`` alone."""
    return {"name": name, "match": matches, "route": [{"destination": _destination(ref, revision, port)}]}


def _destination(ref: IsvcRef, revision: str, port: int) -> dict[str, Any]:
    return {"host": service_host(revision_child_name(ref, revision), ref.namespace), "port": {"number": port}}


def _destinations(
    ref: IsvcRef, routed: list[TrafficTarget], port: int, affinity: SessionAffinity | None
) -> list[dict[str, Any]]:
    sticky = sticky_revisions(routed) if affinity is not None else []
    destinations = []
    for target in routed:
        destination: dict[str, Any] = {
            "destination": _destination(ref, target.revision, port),
            "weight": target.percent,
        }
        if affinity is not None and target.revision in sticky:
            cookie = set_cookie(affinity, target.revision)
            destination["headers"] = {"response": {"add": {SET_COOKIE_HEADER: cookie}}}
        destinations.append(destination)
    return destinations


def _header_conditions(match: TrafficMatch) -> list[dict[str, Any]]:
    return [{match.header.name: {"exact": match.header.value}}] if match.header is not None else []


def _cookie_conditions(match: TrafficMatch) -> list[dict[str, Any]]:
    if match.cookie is None:
        return []
    return [{COOKIE_HEADER: {"regex": cookie_regex(match.cookie.name, match.cookie.value)}}]


def _grpc_matches(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One exact :path per exposed method, on the gRPC port (gRPC is HTTP/2 to /Service/Method);
    with ``conditions`` (alternatives), each once per header condition."""
    matches: list[dict[str, Any]] = [{"port": GRPC_PORT, "uri": {"exact": grpc_path(m)}} for m in GRPC_METHODS]
    return _with_conditions(matches, conditions)


def _http_matches(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exposed HTTP paths. Istio's uri prefix is a plain string prefix, so it ends in "/"
    (a segment boundary): /v2/models/ matches /v2/models/m/infer, never /v2/modelsx. With
    ``conditions`` (alternatives), each path once per header condition."""
    prefixes: list[dict[str, Any]] = [{"uri": {"prefix": f"{path}/"}} for path in HTTP_PATH_PREFIXES]
    return _with_conditions(prefixes + [{"uri": {"exact": path}} for path in HTTP_EXACT_PATHS], conditions)


def _with_conditions(matches: list[dict[str, Any]], conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not conditions:
        return matches
    return [
        {**match, "uri": dict(match["uri"]), "headers": {k: dict(v) for k, v in condition.items()}}
        for condition in conditions
        for match in matches
    ]
