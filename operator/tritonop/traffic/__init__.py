"""Traffic providers: how canary weights reach clients. One module per provider behind one protocol.

A provider owns everything about its routing: the kinds and names of the objects it
creates, whether it splits by replica ratio instead of weights, the external URL, and
what to prune when its objects are no longer built. Nothing outside this package asks
which provider is active.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.names import HTTP_PORT, service_host
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import Kind
from tritonop.traffic.gateway_api import GatewayApiProvider
from tritonop.traffic.istio import IstioProvider
from tritonop.traffic.nginx import NginxProvider
from tritonop.traffic.routing import Mirror, Routing
from tritonop.traffic.service import ServiceProvider


class TrafficProvider(Protocol):
    name: str
    # What build() may create; when spec.traffic.provider changes, the other providers'
    # objects (their kinds x their object names) are deleted.
    kinds: tuple[Kind, ...]
    # True when there is no router: the split is the canary's share of ready pods, so the
    # canary's replicas are pinned to its weight and it has no autoscaler meanwhile.
    splits_by_replicas: bool

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        """Names of every object build() may create for ``ref`` (any of ``kinds``)."""
        ...

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, routing: Routing, config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """The routing objects for ``routing``: its targets' split (percent adding up to 100; 0%
        targets get no backend), its mirror (a shadow phase) and the revision traffic.match's
        requests go to. ValueError for what the provider cannot express."""
        ...

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """Pinned canary replicas for the split, or None when a router enforces weights."""
        ...

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """The URL base clients outside the cluster use (http://host[/path]), when configured."""
        ...


ALL_PROVIDERS: tuple[TrafficProvider, ...] = (
    GatewayApiProvider(),
    IstioProvider(),
    NginxProvider(),
    ServiceProvider(),
)
_BY_NAME = {provider.name: provider for provider in ALL_PROVIDERS}

ObjectKey = tuple[Kind, str]


def provider_for(spec: InferenceServiceSpec) -> TrafficProvider:
    """The provider spec.traffic.provider names."""
    return _BY_NAME[spec.traffic.provider.value]


def status_url(ref: IsvcRef, spec: InferenceServiceSpec) -> str:
    """The URL clients use, for status.url: the provider's external URL when configured
    (http://, since TLS lives on the Gateway or Ingress and is not known here), else the
    entry Service's in-cluster address."""
    return provider_for(spec).external_host(spec) or f"http://{service_host(ref.name, ref.namespace)}:{HTTP_PORT}"


def stale_objects(provider: TrafficProvider, ref: IsvcRef, built: Iterable[Mapping[str, Any]]) -> list[ObjectKey]:
    """The provider's own objects that the latest build no longer lists (a canary Ingress
    after promotion, a GRPCRoute switched off): left alone they would keep routing."""
    keep = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in built}
    return [
        (kind, name)
        for kind in provider.kinds
        for name in provider.object_names(ref)
        if (kind.api_version, kind.kind, name) not in keep
    ]


def other_providers_objects(active: TrafficProvider, ref: IsvcRef) -> list[ObjectKey]:
    """Objects the inactive providers may have created for ``ref`` (after a provider change)."""
    own = set(active.kinds)
    found: dict[ObjectKey, None] = {}
    for provider in ALL_PROVIDERS:
        for kind in provider.kinds:
            if kind not in own:
                for name in provider.object_names(ref):
                    found[(kind, name)] = None
    return sorted(found)


__all__ = [
    "ALL_PROVIDERS",
    "Mirror",
    "Routing",
    "TrafficProvider",
    "other_providers_objects",
    "provider_for",
    "stale_objects",
    "status_url",
]
