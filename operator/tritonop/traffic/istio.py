"""Istio: a VirtualService weighting the revision Services, for HTTP and gRPC."""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec, TrafficTarget
from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, revision_child_name, service_host
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import VIRTUAL_SERVICE, Kind
from tritonop.traffic.exposure import GRPC_METHODS, HTTP_EXACT_PATHS, HTTP_PATH_PREFIXES, grpc_path
from tritonop.traffic.targets import first_concrete_host, routed_targets


class IstioProvider:
    name = "istio"
    kinds: tuple[Kind, ...] = (VIRTUAL_SERVICE,)
    splits_by_replicas = False

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return (ref.name,)

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, targets: list[TrafficTarget], config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """VirtualService NAME: hosts default to the entry Service's FQDN, so mesh clients get the split.

        gRPC calls of the exposed methods arriving on port 8001 (Triton gRPC through the
        entry Service) go to the revisions' port 8001; requests for the exposed HTTP paths
        to port 8000. Nothing else matches, so Istio answers it with 404 itself.
        """
        istio = spec.traffic.istio
        routed = routed_targets(targets)
        vs_spec: dict[str, Any] = {
            "hosts": list(istio.hosts) if istio and istio.hosts else [service_host(ref.name, ref.namespace)],
        }
        if istio and istio.gateways:
            vs_spec["gateways"] = list(istio.gateways)
        vs_spec["http"] = [
            {"name": "grpc", "match": _grpc_matches(), "route": _destinations(ref, routed, GRPC_PORT)},
            {"name": "http", "match": _http_matches(), "route": _destinations(ref, routed, HTTP_PORT)},
        ]
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


def _destinations(ref: IsvcRef, routed: list[TrafficTarget], port: int) -> list[dict[str, Any]]:
    return [
        {
            "destination": {
                "host": service_host(revision_child_name(ref, t.revision), ref.namespace),
                "port": {"number": port},
            },
            "weight": t.percent,
        }
        for t in routed
    ]


def _grpc_matches() -> list[dict[str, Any]]:
    """One exact :path per exposed method, on the gRPC port (gRPC is HTTP/2 to /Service/Method)."""
    return [{"port": GRPC_PORT, "uri": {"exact": grpc_path(method)}} for method in GRPC_METHODS]


def _http_matches() -> list[dict[str, Any]]:
    """The exposed HTTP paths. Istio's uri prefix is a plain string prefix, so it ends in "/"
    (a segment boundary): /v2/models/ matches /v2/models/m/infer, never /v2/modelsx."""
    prefixes = [{"uri": {"prefix": f"{path}/"}} for path in HTTP_PATH_PREFIXES]
    return prefixes + [{"uri": {"exact": path}} for path in HTTP_EXACT_PATHS]
