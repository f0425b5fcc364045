"""The Deployment of one revision: tritonserver with the model, probes, GPUs, security and the spec's pod settings."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tritonop.api.kube_types import ProbeTuning
from tritonop.api.models import InferenceServiceSpec
from tritonop.children.errors import BuildError
from tritonop.children.labels import APP_NAME, REVISION_LABEL, revision_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, METRICS_PORT, revision_child_name, triton_models
from tritonop.children.refs import IsvcRef
from tritonop.children.security import NOT_RESTRICTED, container_context_of, pod_context_of, restricted_violations
from tritonop.children.storage import storage_for
from tritonop.children.triton_args import tritonserver_args
from tritonop.children.triton_key import key_env
from tritonop.config import OperatorConfig

# GPU nodes, MIG-partitioned or shared ones included, carry NVIDIA's taint whatever resource they offer.
NVIDIA_GPU_TAINT = "nvidia.com/gpu"
TRITON_CONTAINER = "triton"
REVISION_ANNOTATION = REVISION_LABEL
# Which container kubectl logs and exec pick without -c, once sidecars share the pod.
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
PROBE_TIMEOUT_SECONDS = 5
# Triton answers /v2/health/live only once the models loaded at start are loaded;
# large models take many minutes to fetch and load, so allow 30 minutes.
STARTUP_TIMING = {"periodSeconds": 10, "timeoutSeconds": PROBE_TIMEOUT_SECONDS, "failureThreshold": 180}
LIVENESS_TIMING = {"periodSeconds": 10, "timeoutSeconds": PROBE_TIMEOUT_SECONDS, "failureThreshold": 3}
READINESS_TIMING = {"periodSeconds": 5, "timeoutSeconds": PROBE_TIMEOUT_SECONDS, "failureThreshold": 3}


def build_deployment(
    ref: IsvcRef,
    spec: InferenceServiceSpec,
    revision: str,
    config: OperatorConfig,
    *,
    replicas: int | None,
) -> dict[str, Any]:
    """Deployment NAME-REV; ``replicas`` None leaves the count to an autoscaler.

    BuildError (SecurityContextNotRestricted) when the spec's security contexts take the pod
    out of Pod Security restricted and the operator does not allow that.
    """
    name = revision_child_name(ref, revision)
    deployment_spec: dict[str, Any] = {}
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    deployment_spec |= {
        "selector": {"matchLabels": selector_labels(ref.name, revision)},
        # Never below the current capacity while pods are replaced.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": _pod_template(ref, spec, revision, config),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(ref, name, revision_labels(ref.name, revision)),
        "spec": deployment_spec,
    }


def _pod_template(ref: IsvcRef, spec: InferenceServiceSpec, revision: str, config: OperatorConfig) -> dict[str, Any]:
    triton = spec.triton
    storage = storage_for(spec.model, config)
    container_context = container_context_of(triton)
    # Our labels win over podLabels: the selectors depend on them.
    labels = {**triton.pod_labels, **revision_labels(ref.name, revision), APP_NAME: "triton"}
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    if triton.sidecars:
        annotations[DEFAULT_CONTAINER_ANNOTATION] = TRITON_CONTAINER
    annotations |= {**triton.pod_annotations, REVISION_ANNOTATION: revision}
    container: dict[str, Any] = {
        "name": TRITON_CONTAINER,
        "image": triton.image or config.triton_image,
        "command": ["tritonserver"],
        "args": tritonserver_args(spec, triton_models(ref, spec), storage.repository),
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
    }
    # The control-API key last, so no user env var of the same name shadows it.
    container["env"] = [*storage.env, *copy.deepcopy(triton.env), key_env(ref)]
    if storage.env_from:
        container["envFrom"] = storage.env_from
    probes = triton.probes
    container |= {
        "resources": gpu_resources(triton.resources, triton.gpus, triton.gpu_resource),
        "startupProbe": _probe("/v2/health/live", STARTUP_TIMING, probes.get("startup")),
        "livenessProbe": _probe("/v2/health/live", LIVENESS_TIMING, probes.get("liveness")),
        "readinessProbe": _probe("/v2/health/ready", READINESS_TIMING, probes.get("readiness")),
        "securityContext": container_context,
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
            *storage.volume_mounts,
            *copy.deepcopy(triton.volume_mounts),
        ],
    }
    pod_spec: dict[str, Any] = {
        # Triton never talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": pod_context_of(triton),
    }
    if triton.service_account_name:
        pod_spec["serviceAccountName"] = triton.service_account_name
    if triton.image_pull_secrets:
        pod_spec["imagePullSecrets"] = copy.deepcopy(triton.image_pull_secrets)
    if triton.runtime_class_name:
        pod_spec["runtimeClassName"] = triton.runtime_class_name
    if triton.priority_class_name:
        pod_spec["priorityClassName"] = triton.priority_class_name
    if triton.termination_grace_period_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = triton.termination_grace_period_seconds
    if triton.node_selector:
        pod_spec["nodeSelector"] = dict(triton.node_selector)
    tolerations = gpu_tolerations(triton.tolerations, triton.gpus, triton.gpu_resource)
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if triton.affinity:
        pod_spec["affinity"] = copy.deepcopy(triton.affinity)
    if triton.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = [
            # Without a selector Kubernetes counts no pods: count the revision's own.
            {"labelSelector": {"matchLabels": selector_labels(ref.name, revision)}} | copy.deepcopy(dict(constraint))
            for constraint in triton.topology_spread_constraints
        ]
    # The operator's init containers (fetch-model) run with the Triton container's context too.
    init_containers = [
        {**init, "securityContext": copy.deepcopy(container_context)} for init in storage.init_containers
    ]
    init_containers += [_extra_container(c, container_context) for c in triton.init_containers]
    if init_containers:
        pod_spec["initContainers"] = init_containers
    pod_spec["containers"] = [container, *(_extra_container(c, container_context) for c in triton.sidecars)]
    pod_spec["volumes"] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": triton.shm_size}},
        {"name": "tmp", "emptyDir": {}},
        *storage.volumes,
        *copy.deepcopy(triton.volumes),
    ]
    if not config.allow_unrestricted_security_context:
        violations = restricted_violations(pod_spec)
        if violations:
            raise BuildError(
                NOT_RESTRICTED,
                f"the pod would not meet Pod Security restricted: {'; '.join(violations)} "
                "(an operator run with --allow-unrestricted-security-context allows it; docs/gpus.md)",
            )
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def _extra_container(container: Mapping[str, Any], default_context: Mapping[str, Any]) -> dict[str, Any]:
    """An initContainers or sidecars entry as given, with the Triton container's context if it sets none."""
    result = copy.deepcopy(dict(container))
    result.setdefault("securityContext", copy.deepcopy(dict(default_context)))
    return result


def gpu_resources(resources: Mapping[str, Any], gpus: int, gpu_resource: str) -> dict[str, Any]:
    """triton.resources with gpu_resource set from gpus in limits and requests (gpus wins)."""
    merged = copy.deepcopy(dict(resources))
    for section in ("limits", "requests"):
        values = dict(merged.get(section) or {})
        values.pop(gpu_resource, None)
        if gpus > 0:
            values[gpu_resource] = gpus
        if values:
            merged[section] = values
        else:
            merged.pop(section, None)
    return merged


def gpu_tolerations(tolerations: Sequence[Mapping[str, Any]], gpus: int, gpu_resource: str) -> list[dict[str, Any]]:
    """The pod's tolerations, plus the GPU taint's when it runs on GPUs and none covers it yet.

    The taint is NVIDIA's nvidia.com/gpu for every nvidia.com resource (MIG slices and shared
    GPUs included); for other vendors' resources it is named after the resource, as Kubernetes'
    ExtendedResourceToleration convention has it.
    """
    result = [copy.deepcopy(dict(toleration)) for toleration in tolerations]
    taint = NVIDIA_GPU_TAINT if gpu_resource.startswith("nvidia.com/") else gpu_resource
    toleration = {"key": taint, "operator": "Exists", "effect": "NoSchedule"}
    if gpus > 0 and toleration not in result:
        result.append(toleration)
    return result


def _probe(path: str, timing: Mapping[str, int], tuning: ProbeTuning | None) -> dict[str, Any]:
    """One of the Triton container's probes: the operator's check, its timing with the spec's tuning over it."""
    return {"httpGet": {"path": path, "port": "http"}, **timing, **(tuning or {})}
