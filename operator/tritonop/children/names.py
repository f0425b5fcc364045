"""Child names and addresses derived from the parent (see docs/architecture.md, "Names")."""

from __future__ import annotations

from tritonop.api.models import InferenceServiceSpec, TrafficProvider
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
# Kubernetes' default cluster domain; OperatorConfig has no setting for another one yet.
CLUSTER_DOMAIN = "cluster.local"
NGINX_CANARY_SUFFIX = "canary"


def revision_child_name(ref: IsvcRef, revision: str) -> str:
    """Name of a revision's Deployment, Service, autoscaler and PDB: NAME-REV."""
    return f"{ref.name}-{revision}"


def service_host(name: str, namespace: str) -> str:
    """The in-cluster fully qualified DNS name of Service ``name``."""
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def triton_model_name(ref: IsvcRef, spec: InferenceServiceSpec) -> str:
    """The model name Triton serves: spec.model.name, else the InferenceService's name."""
    return spec.model.name or ref.name


def status_url(ref: IsvcRef, spec: InferenceServiceSpec, config: OperatorConfig) -> str:
    """The URL clients use, for status.url.

    The active provider's external hostname when one is configured (http://, since
    TLS lives on the Gateway or Ingress and is not known here), else the entry
    Service's in-cluster address.
    """
    traffic = spec.traffic
    host: str | None = None
    if traffic.provider == TrafficProvider.gateway_api and traffic.gateway:
        host = _first_concrete(traffic.gateway.hostnames)
    elif traffic.provider == TrafficProvider.istio and traffic.istio:
        host = _first_concrete(traffic.istio.hosts)
    elif traffic.provider == TrafficProvider.nginx and traffic.nginx:
        host = _first_concrete([traffic.nginx.host])
        if host is not None:
            return f"http://{host}{traffic.nginx.path.rstrip('/')}"
    if host is not None:
        return f"http://{host}"
    return f"http://{service_host(ref.name, ref.namespace)}:{HTTP_PORT}"


def _first_concrete(hosts: list[str]) -> str | None:
    """The first hostname that is not a wildcard pattern (a URL needs one real host)."""
    return next((host for host in hosts if "*" not in host), None)
