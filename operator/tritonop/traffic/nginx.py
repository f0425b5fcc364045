"""ingress-nginx canary annotations: an Ingress to the stable revision and a weighted canary Ingress.

ingress-nginx is retired (maintenance ended March 2026); this provider exists for
clusters that still run it. Both Ingresses list only the HTTP paths traffic.exposure
exposes, under nginx.path. A shadow phase mirrors every request from the stable
Ingress (ingress-nginx has no mirror percentage); traffic.match becomes the canary
Ingress' canary-by-header and canary-by-cookie; traffic.sessionAffinity its cookie affinity.
"""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec, NginxRouting, TrafficMatch
from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import HTTP_PORT, revision_child_name, service_host
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.durations import parse_duration
from tritonop.kinds import INGRESS, Kind
from tritonop.traffic.exposure import HTTP_EXACT_PATHS, HTTP_PATH_PREFIXES
from tritonop.traffic.routing import Mirror, Routing
from tritonop.traffic.targets import first_concrete_host, routed_targets

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY_ANNOTATION = f"{PREFIX}canary"
CANARY_WEIGHT_ANNOTATION = f"{PREFIX}canary-weight"
CANARY_SUFFIX = "canary"


class NginxProvider:
    name = "nginx"
    kinds: tuple[Kind, ...] = (INGRESS,)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name, _canary_name(ref))

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, routing: Routing, config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """Ingress NAME to the first target; Ingress NAME-canary to the second while it has
        traffic, or to the matched revision (weight 0) while only traffic.match reaches it."""
        nginx = spec.traffic.nginx
        if nginx is None:
            raise ValueError("traffic.provider nginx needs traffic.nginx.host")
        targets = routing.targets
        if len(targets) > 2:
            raise ValueError("the nginx provider splits traffic between at most two revisions")
        routed_targets(targets)
        stable, *rest = targets
        weighted = rest[0] if rest and rest[0].percent > 0 else None
        match = spec.traffic.match if routing.matched is not None else None
        canary = weighted.revision if weighted else routing.matched if match else None
        if match is not None and canary != routing.matched:
            raise ValueError("ingress-nginx routes matched requests only to its one canary Ingress' revision")
        mirror = _mirror_annotations(ref, routing.mirror) if routing.mirror else {}
        affinity = _affinity_annotations(spec, nginx) if canary else {}
        ingresses = [_ingress(ref, nginx, ref.name, stable.revision, {**mirror, **affinity})]
        if canary is not None:
            annotations = {
                CANARY_ANNOTATION: "true",
                CANARY_WEIGHT_ANNOTATION: str(weighted.percent if weighted else 0),
                **(_match_annotations(match) if match else {}),
                **affinity,
            }
            ingresses.append(_ingress(ref, nginx, _canary_name(ref), canary, annotations))
        return ingresses

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """None: the canary Ingress sets the split, so the canary keeps its own autoscaling."""
        return None

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """The Ingress host and path, when the host is concrete."""
        nginx = spec.traffic.nginx
        host = first_concrete_host([nginx.host]) if nginx else None
        return f"http://{host}{nginx.path.rstrip('/')}" if nginx and host else None


def _canary_name(ref: IsvcRef) -> str:
    return f"{ref.name}-{CANARY_SUFFIX}"


def _mirror_annotations(ref: IsvcRef, mirror: Mirror) -> dict[str, str]:
    """Every request the stable Ingress serves, copied to the mirror revision's Service
    (ingress-nginx's mirror has no percentage: the API admits only 100 with nginx)."""
    service = service_host(revision_child_name(ref, mirror.revision), ref.namespace)
    return {f"{PREFIX}mirror-target": f"http://{service}:{HTTP_PORT}$request_uri"}


def _match_annotations(match: TrafficMatch) -> dict[str, str]:
    """ingress-nginx takes a header first, then a cookie (which must say "always"), then the weight."""
    annotations = {}
    if match.header is not None:
        annotations[f"{PREFIX}canary-by-header"] = match.header.name
        annotations[f"{PREFIX}canary-by-header-value"] = match.header.value
    if match.cookie is not None:
        annotations[f"{PREFIX}canary-by-cookie"] = match.cookie.name
    return annotations


def _affinity_annotations(spec: InferenceServiceSpec, nginx: NginxRouting) -> dict[str, str]:
    """Cookie affinity on both Ingresses (the canary's may carry affinity settings of its own),
    sticky for the canary: a client stays with the revision (and the pod) it was given."""
    affinity = spec.traffic.session_affinity
    if affinity is None:
        return {}
    return {
        f"{PREFIX}affinity": "cookie",
        f"{PREFIX}affinity-canary-behavior": "sticky",
        f"{PREFIX}session-cookie-name": affinity.cookie_name,
        f"{PREFIX}session-cookie-max-age": str(max(1, int(parse_duration(affinity.max_age)))),
        f"{PREFIX}session-cookie-path": nginx.path,
    }


def _ingress(
    ref: IsvcRef, nginx: NginxRouting, name: str, revision: str, annotations: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": INGRESS.api_version,
        "kind": INGRESS.kind,
        "metadata": child_metadata(ref, name, isvc_labels(ref.name), annotations or None),
        "spec": {
            "ingressClassName": nginx.ingress_class_name,
            "rules": [
                {
                    "host": nginx.host,
                    "http": {"paths": _paths(nginx.path, revision_child_name(ref, revision))},
                }
            ],
        },
    }


def _paths(base: str, service: str) -> list[dict[str, Any]]:
    """The exposed paths under ``base`` (nginx.path), each to ``service``'s HTTP port. Prefix
    matches whole segments, so /v2/models never matches /v2/modelsx."""
    root = base.rstrip("/")
    paths = [(f"{root}{path}", "Prefix") for path in HTTP_PATH_PREFIXES]
    paths += [(f"{root}{path}", "Exact") for path in HTTP_EXACT_PATHS]
    return [
        {"path": path, "pathType": kind, "backend": {"service": {"name": service, "port": {"number": HTTP_PORT}}}}
        for path, kind in paths
    ]
