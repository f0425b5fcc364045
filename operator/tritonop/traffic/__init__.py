"""Traffic providers: how canary weights reach clients. One module per provider behind one protocol."""

from __future__ import annotations

from typing import Any, Protocol

from tritonop.api.models import InferenceServiceSpec, TrafficTarget
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.traffic.gateway_api import GatewayApiProvider
from tritonop.traffic.istio import IstioProvider
from tritonop.traffic.nginx import NginxProvider
from tritonop.traffic.service import ServiceProvider


class TrafficProvider(Protocol):
    name: str
    # (apiVersion, kind) of what build() creates: when spec.traffic.provider changes,
    # objects of the other providers' kinds labelled with the InferenceService are deleted.
    managed_kinds: tuple[tuple[str, str], ...]

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, targets: list[TrafficTarget], config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """The routing objects for ``targets`` (percent adding up to 100; 0% targets get no backend)."""
        ...

    def canary_replicas(self, stable_replicas: int, weight: int) -> int | None:
        """Pinned canary replicas for the split, or None when a router enforces weights."""
        ...


ALL_PROVIDERS: tuple[TrafficProvider, ...] = (
    GatewayApiProvider(),
    IstioProvider(),
    NginxProvider(),
    ServiceProvider(),
)
_BY_NAME = {provider.name: provider for provider in ALL_PROVIDERS}


def provider_for(spec: InferenceServiceSpec) -> TrafficProvider:
    """The provider spec.traffic.provider names."""
    return _BY_NAME[spec.traffic.provider.value]


__all__ = ["ALL_PROVIDERS", "TrafficProvider", "provider_for"]
