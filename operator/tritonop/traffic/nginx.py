"""ingress-nginx canary annotations: an Ingress to the stable revision and a weighted canary Ingress.

ingress-nginx is retired (maintenance ended March 2026); this provider exists for
clusters that still run it. Both Ingresses list only the HTTP paths traffic.exposure
exposes, under nginx.path.
"""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec, NginxRouting, TrafficTarget
from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import HTTP_PORT, revision_child_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import INGRESS, Kind
from tritonop.traffic.exposure import HTTP_EXACT_PATHS, HTTP_PATH_PREFIXES
from tritonop.traffic.targets import first_concrete_host, routed_targets

CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
CANARY_SUFFIX = "canary"


class NginxProvider:
    name = "nginx"
    kinds: tuple[Kind, ...] = (INGRESS,)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name, _canary_name(ref))

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, targets: list[TrafficTarget], config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """Ingress NAME to the first target; Ingress NAME-canary to the second while it has traffic."""
        nginx = spec.traffic.nginx
        if nginx is None:
            raise ValueError("traffic.provider nginx needs traffic.nginx")
        if len(targets) > 2:
            raise ValueError("the nginx provider splits traffic between at most two revisions")
        routed_targets(targets)
        stable, *canary = targets
        ingresses = [_ingress(ref, nginx, ref.name, stable.revision, annotations=None)]
        if canary and canary[0].percent > 0:
            annotations = {CANARY_ANNOTATION: "true", CANARY_WEIGHT_ANNOTATION: str(canary[0].percent)}
            ingresses.append(_ingress(ref, nginx, _canary_name(ref), canary[0].revision, annotations=annotations))
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


def _ingress(
    ref: IsvcRef, nginx: NginxRouting, name: str, revision: str, annotations: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "apiVersion": INGRESS.api_version,
        "kind": INGRESS.kind,
        "metadata": child_metadata(ref, name, isvc_labels(ref.name), annotations),
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
