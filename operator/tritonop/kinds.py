"""Every Kubernetes kind tritonop reads or writes, in one registry.

The client's URL paths, the prune lists and the chart's RBAC contract test are all
derived from here, so a new child kind (or a new traffic
provider's kinds) is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonop import API_VERSION, KIND, PLURAL


@dataclass(frozen=True, order=True)
class Kind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        """The API group ("" for the core group), as RBAC rules name it."""
        return self.api_version.rpartition("/")[0]

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)


INFERENCE_SERVICE = Kind(API_VERSION, KIND, PLURAL)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
HPA = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
SCALED_OBJECT = Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects")
PDB = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
SECRET = Kind("v1", "Secret", "secrets")
POD = Kind("v1", "Pod", "pods")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
GRPC_ROUTE = Kind("gateway.networking.k8s.io/v1", "GRPCRoute", "grpcroutes")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1", "VirtualService", "virtualservices")
INGRESS = Kind("networking.k8s.io/v1", "Ingress", "ingresses")
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")

# Each revision's children, named NAME-REV, in the order they are best applied. Which of
# them a build returns depends on autoscaling and pinned replicas, so kinds a new build no
# longer lists are pruned.
REVISION_CHILD_KINDS: tuple[Kind, ...] = (DEPLOYMENT, SERVICE, HPA, SCALED_OBJECT, PDB)
AUTOSCALER_KINDS: tuple[Kind, ...] = (HPA, SCALED_OBJECT)
# What the traffic providers create (each provider names its own subset).
ROUTING_KINDS: tuple[Kind, ...] = (HTTP_ROUTE, GRPC_ROUTE, VIRTUAL_SERVICE, INGRESS)
# One per InferenceService, named NAME, beside the entry Service (spec.networkPolicy).
ISVC_CHILD_KINDS: tuple[Kind, ...] = (NETWORK_POLICY,)
# Every kind the operator creates, patches and deletes (RBAC: get, create, patch, delete).
CHILD_KINDS: tuple[Kind, ...] = (*REVISION_CHILD_KINDS, *ROUTING_KINDS, *ISVC_CHILD_KINDS)
# Kinds only read: a canary's pods (why are they not ready) and the model-credentials Secret.
READ_ONLY_KINDS: tuple[Kind, ...] = (POD, SECRET)
# Kinds only written, never read (RBAC: create, patch): each InferenceService's Triton key
# Secret, created (AlreadyExists is done) and server-side applied on resume.
WRITE_ONLY_KINDS: tuple[Kind, ...] = (SECRET,)
ALL_KINDS: tuple[Kind, ...] = (INFERENCE_SERVICE, *CHILD_KINDS, *READ_ONLY_KINDS, *WRITE_ONLY_KINDS)

_BY_KEY = {k.key: k for k in ALL_KINDS}


def kind_of(api_version: str, kind: str) -> Kind:
    """The registered kind; KeyError for one tritonop never touches."""
    return _BY_KEY[(api_version, kind)]
