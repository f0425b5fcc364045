"""The NetworkPolicy of an InferenceService: who may reach its Triton pods.

One per InferenceService, named NAME, over the pods of every revision. Ingress only:
- HTTP 8000 and gRPC 8001 from every pod in the cluster (the router, a Gateway, mesh
  clients and the operator's own gates may run anywhere);
- metrics 8002 only from the pods the operator's metrics selectors name (Prometheus), and
  from the operator's own pods when it knows them (--operator-namespace and
  --operator-pod-selector, set by the chart): sequential analysis reads the counters there;
- nothing else. Egress is left open: model downloads (s3, gs, http archives) need it.
Kubelet probes come from the node, which NetworkPolicy always admits.
"""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.labels import isvc_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, METRICS_PORT
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import NETWORK_POLICY
from tritonop.selectors import parse_selector

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server


def network_policy_enabled(spec: InferenceServiceSpec, config: OperatorConfig) -> bool:
    """spec.networkPolicy.enabled, else the operator's default."""
    enabled = spec.network_policy.enabled
    return config.network_policy if enabled is None else enabled


def build_network_policy(ref: IsvcRef, config: OperatorConfig) -> dict[str, Any]:
    """NetworkPolicy NAME selecting every revision's Triton pods (label inferenceservice=NAME)."""
    return {
        "apiVersion": NETWORK_POLICY.api_version,
        "kind": NETWORK_POLICY.kind,
        "metadata": child_metadata(ref, ref.name, isvc_labels(ref.name)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ref.name, None)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"namespaceSelector": {}}], "ports": _ports(HTTP_PORT, GRPC_PORT)},
                {"from": [metrics_peer(config), *operator_peer(config)], "ports": _ports(METRICS_PORT)},
            ],
        },
    }


def metrics_peer(config: OperatorConfig) -> dict[str, Any]:
    """Who may scrape: pods matching metrics_pod_selector (any, when empty) in the namespaces
    matching metrics_namespace_selector (every namespace, when empty)."""
    namespaces = parse_selector(config.metrics_namespace_selector)
    pods = parse_selector(config.metrics_pod_selector)
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": namespaces} if namespaces else {}}
    if pods:
        peer["podSelector"] = {"matchLabels": pods}
    return peer


def operator_peer(config: OperatorConfig) -> list[dict[str, Any]]:
    """The operator's own pods, when the chart told it who they are."""
    if not config.operator_namespace:
        return []
    pods = parse_selector(config.operator_pod_selector)
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: config.operator_namespace}}}
    if pods:
        peer["podSelector"] = {"matchLabels": pods}
    return [peer]


def _ports(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]
