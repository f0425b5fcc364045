"""Child names and addresses derived from the parent (see docs/architecture.md, "Names")."""

from __future__ import annotations

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.refs import IsvcRef

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
# Kubernetes' default cluster domain; OperatorConfig has no setting for another one yet.
CLUSTER_DOMAIN = "cluster.local"


def revision_child_name(ref: IsvcRef, revision: str) -> str:
    """Name of a revision's Deployment, Service, autoscaler and PDB: NAME-REV."""
    return f"{ref.name}-{revision}"


def service_host(name: str, namespace: str) -> str:
    """The in-cluster fully qualified DNS name of Service ``name``."""
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def triton_model_name(ref: IsvcRef, spec: InferenceServiceSpec) -> str:
    """The model name of a one-model spec: spec.model.name, else the InferenceService's name."""
    return spec.model.name or ref.name


def triton_models(ref: IsvcRef, spec: InferenceServiceSpec) -> tuple[str, ...]:
    """The models Triton serves: spec.model.models (("*",): every model in the repository), else the one."""
    return tuple(spec.model.models) if spec.model.models else (triton_model_name(ref, spec),)


def default_case_model(ref: IsvcRef, spec: InferenceServiceSpec) -> str | None:
    """The model an acceptance case without one goes to: the one model named, None with several."""
    return None if spec.model.several else triton_models(ref, spec)[0]
