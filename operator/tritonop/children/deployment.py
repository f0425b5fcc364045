"""The Deployment of one revision: tritonserver with the model, probes, GPUs and restricted security."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.labels import APP_NAME, REVISION_LABEL, revision_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, METRICS_PORT, revision_child_name, triton_models
from tritonop.children.refs import IsvcRef
from tritonop.children.security import container_security_context, pod_security_context
from tritonop.children.storage import storage_for
from tritonop.children.triton_args import tritonserver_args
from tritonop.children.triton_key import key_env
from tritonop.config import OperatorConfig

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
TRITON_CONTAINER = "triton"
REVISION_ANNOTATION = REVISION_LABEL
PROBE_TIMEOUT_SECONDS = 5
STARTUP_PERIOD_SECONDS = 10
# Triton answers /v2/health/live only once the models loaded at start are loaded;
# large models take many minutes to fetch and load, so allow 30 minutes.
STARTUP_FAILURE_THRESHOLD = 180


def build_deployment(
    ref: IsvcRef,
    spec: InferenceServiceSpec,
    revision: str,
    config: OperatorConfig,
    *,
    replicas: int | None,
) -> dict[str, Any]:
    """Deployment NAME-REV; ``replicas`` None leaves the count to an autoscaler."""
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
    # Our labels win over podLabels: the selectors depend on them.
    labels = {**triton.pod_labels, **revision_labels(ref.name, revision), APP_NAME: "triton"}
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
        **triton.pod_annotations,
        REVISION_ANNOTATION: revision,
    }
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
    container |= {
        "resources": gpu_resources(triton.resources, triton.gpus),
        "startupProbe": _probe("/v2/health/live", STARTUP_PERIOD_SECONDS, STARTUP_FAILURE_THRESHOLD),
        "livenessProbe": _probe("/v2/health/live", 10, 3),
        "readinessProbe": _probe("/v2/health/ready", 5, 3),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
            *storage.volume_mounts,
        ],
    }
    pod_spec: dict[str, Any] = {
        # Triton never talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
    }
    if triton.service_account_name:
        pod_spec["serviceAccountName"] = triton.service_account_name
    if triton.image_pull_secrets:
        pod_spec["imagePullSecrets"] = copy.deepcopy(triton.image_pull_secrets)
    if triton.node_selector:
        pod_spec["nodeSelector"] = dict(triton.node_selector)
    tolerations = gpu_tolerations(triton.tolerations, triton.gpus)
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if triton.affinity:
        pod_spec["affinity"] = copy.deepcopy(triton.affinity)
    if storage.init_containers:
        pod_spec["initContainers"] = storage.init_containers
    pod_spec["containers"] = [container]
    pod_spec["volumes"] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": triton.shm_size}},
        {"name": "tmp", "emptyDir": {}},
        *storage.volumes,
    ]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def gpu_resources(resources: Mapping[str, Any], gpus: int) -> dict[str, Any]:
    """triton.resources with nvidia.com/gpu set from gpus in limits and requests (gpus wins)."""
    merged = copy.deepcopy(dict(resources))
    for section in ("limits", "requests"):
        values = dict(merged.get(section) or {})
        values.pop(GPU_RESOURCE, None)
        if gpus > 0:
            values[GPU_RESOURCE] = gpus
        if values:
            merged[section] = values
        else:
            merged.pop(section, None)
    return merged


def gpu_tolerations(tolerations: Sequence[Mapping[str, Any]], gpus: int) -> list[dict[str, Any]]:
    """The pod's tolerations, plus the GPU taint's when it runs on GPUs and none covers it yet."""
    result = [copy.deepcopy(dict(toleration)) for toleration in tolerations]
    if gpus > 0 and GPU_TOLERATION not in result:
        result.append(dict(GPU_TOLERATION))
    return result


def _probe(path: str, period_seconds: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_seconds,
        "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
        "failureThreshold": failure_threshold,
    }
