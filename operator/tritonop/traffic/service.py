"""The `service` provider: no router; the entry Service spans all revisions and replicas set the split.

Kubernetes balances connections, not requests, across ready pods: the canary's
share is its share of ready pods, and an HTTP/2 or gRPC client keeps one backend
for the life of its connection. A coarse fallback for clusters without a router.

With no router nothing filters paths either: a client of the entry Service reaches
every API on Triton's ports, control APIs included (see docs/security.md).
"""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import Kind
from tritonop.traffic.routing import Routing
from tritonop.traffic.targets import routed_targets


class ServiceProvider:
    name = "service"
    kinds: tuple[Kind, ...] = ()
    splits_by_replicas = True

    def object_names(self, ref: IsvcRef) -> tuple[str, ...]:
        return ()

    def build(
        self, ref: IsvcRef, spec: InferenceServiceSpec, routing: Routing, config: OperatorConfig
    ) -> list[dict[str, Any]]:
        """Nothing: the entry Service (build_entry_service with every routed revision) is the router.
        It can neither mirror nor match requests (the API refuses rollout.shadow and traffic.match here)."""
        if routing.mirror is not None or routing.matched is not None:
            raise ValueError("the service provider has no router: it can neither mirror nor match requests")
        routed_targets(routing.targets)
        return []

    def canary_replicas(self, stable_replicas: int, weight: int) -> int:
        return canary_replicas(stable_replicas, weight)

    def external_host(self, spec: InferenceServiceSpec) -> str | None:
        """None: the entry Service is reached in-cluster only."""
        return None


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """Canary pods so that canary/(stable+canary) ≈ weight%: round(stable*w/(100-w)), at least 1.

    At least 1 because even a 0% canary needs a pod to become ready and pass acceptance.
    """
    if not 0 <= weight < 100:
        raise ValueError(f"canary weight must be within 0..99, got {weight}")
    if stable_replicas < 0:
        raise ValueError(f"stable replicas must not be negative, got {stable_replicas}")
    # Round half up in integers (Python's round() rounds half to even).
    ratio_rounded = (2 * stable_replicas * weight + (100 - weight)) // (2 * (100 - weight))
    return max(1, ratio_rounded)
