"""The revision Deployment: pod template, GPUs, security, probes, labels, image, replicas."""

from __future__ import annotations

from typing import Any

import pytest

from tritonop.children import IsvcRef, build_revision
from tritonop.config import OperatorConfig

REV = "abcdef0123"


def deployment_of(ref: IsvcRef, spec: Any, config: OperatorConfig, **kwargs: Any) -> dict[str, Any]:
    (deployment,) = [c for c in build_revision(ref, spec, REV, config, **kwargs) if c["kind"] == "Deployment"]
    return deployment


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_gpus_set_limits_and_requests_and_tolerate_the_gpu_taint(ref, make_spec, config) -> None:
    spec = make_spec(
        triton={
            "gpus": 2,
            "resources": {"limits": {"memory": "8Gi", "nvidia.com/gpu": 1}, "requests": {"cpu": "2"}},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        }
    )
    deployment = deployment_of(ref, spec, config)
    assert container_of(deployment)["resources"] == {
        "limits": {"memory": "8Gi", "nvidia.com/gpu": 2},
        "requests": {"cpu": "2", "nvidia.com/gpu": 2},
    }
    assert deployment["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert "--allow-gpu-metrics=true" in container_of(deployment)["args"]


def test_gpu_toleration_is_not_duplicated(ref, make_spec, config) -> None:
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    deployment = deployment_of(ref, make_spec(triton={"gpus": 1, "tolerations": [gpu]}), config)
    assert deployment["spec"]["template"]["spec"]["tolerations"] == [gpu]


def test_cpu_only_has_no_gpu_resource_or_toleration(ref, make_spec, config) -> None:
    spec = make_spec(triton={"gpus": 0, "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "4"}}})
    deployment = deployment_of(ref, spec, config)
    assert container_of(deployment)["resources"] == {"limits": {"cpu": "4"}}
    assert "tolerations" not in deployment["spec"]["template"]["spec"]
    assert "--allow-gpu-metrics=false" in container_of(deployment)["args"]


def test_pod_and_containers_meet_the_restricted_pod_security_level(ref, make_spec, config) -> None:
    spec = make_spec(model={"storageUri": "https://example.com/repo.tar.gz"})
    pod = deployment_of(ref, spec, config)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["readOnlyRootFilesystem"] is True
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_writable_paths_are_memory_shm_and_an_empty_tmp(ref, make_spec, config) -> None:
    deployment = deployment_of(ref, make_spec(triton={"shmSize": "4Gi"}), config)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "4Gi"}
    assert volumes["tmp"]["emptyDir"] == {}
    mounts = {m["mountPath"]: m["name"] for m in container_of(deployment)["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm" and mounts["/tmp"] == "tmp"


def test_container_runs_tritonserver_on_named_ports_with_health_probes(ref, make_spec, config) -> None:
    container = container_of(deployment_of(ref, make_spec(), config))
    assert container["command"] == ["tritonserver"]
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
        ("http", 8000),
        ("grpc", 8001),
        ("metrics", 8002),
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60


def test_image_defaults_to_the_operator_setting(ref, make_spec) -> None:
    config = OperatorConfig(triton_image="registry.local/tritonserver:1")
    assert container_of(deployment_of(ref, make_spec(), config))["image"] == "registry.local/tritonserver:1"
    pinned = make_spec(triton={"image": "nvcr.io/nvidia/tritonserver:24.11-py3"})
    assert container_of(deployment_of(ref, pinned, config))["image"] == "nvcr.io/nvidia/tritonserver:24.11-py3"


def test_labels_annotations_and_owner(ref, make_spec, config) -> None:
    spec = make_spec(
        triton={
            "podLabels": {"team": "vision", "serving.tritonop.dev/revision": "spoofed"},
            "podAnnotations": {"prometheus.io/port": "9000", "example.com/note": "x"},
        }
    )
    deployment = deployment_of(ref, spec, config)
    assert deployment["metadata"]["name"] == f"resnet-{REV}"
    assert deployment["metadata"]["ownerReferences"] == [ref.owner_reference()]
    template = deployment["spec"]["template"]["metadata"]
    assert template["labels"] == {
        "team": "vision",
        "app.kubernetes.io/managed-by": "tritonop",
        "app.kubernetes.io/part-of": "resnet",
        "app.kubernetes.io/name": "triton",
        "serving.tritonop.dev/inferenceservice": "resnet",
        "serving.tritonop.dev/revision": REV,
    }
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["labels"].items()
    assert template["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9000",
        "prometheus.io/path": "/metrics",
        "example.com/note": "x",
        "serving.tritonop.dev/revision": REV,
    }


def test_pod_placement_and_identity_pass_through(ref, make_spec, config) -> None:
    term = {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    spec = make_spec(
        triton={
            "nodeSelector": {"pool": "gpu"},
            "affinity": affinity,
            "serviceAccountName": "triton",
            "imagePullSecrets": [{"name": "ngc"}],
            "env": [{"name": "LOG", "value": "1"}],
        }
    )
    deployment = deployment_of(ref, spec, config)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["affinity"] == affinity
    assert pod["serviceAccountName"] == "triton"
    assert pod["imagePullSecrets"] == [{"name": "ngc"}]
    assert container_of(deployment)["env"][:-1] == [{"name": "LOG", "value": "1"}]  # then the control-API key


def test_rolling_update_never_drops_below_current_capacity(ref, make_spec, config) -> None:
    strategy = deployment_of(ref, make_spec(), config)["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


@pytest.mark.parametrize(
    "autoscaling, replicas, expected",
    [
        ({"minReplicas": 2, "maxReplicas": 2}, None, 2),
        ({"minReplicas": 1, "maxReplicas": 4}, None, "omitted"),
        ({"minReplicas": 1, "maxReplicas": 4}, 3, 3),
        ({"minReplicas": 2, "maxReplicas": 4}, 0, 0),
    ],
)
def test_replicas_are_left_to_the_autoscaler_unless_pinned(ref, make_spec, config, autoscaling, replicas, expected):
    deployment = deployment_of(ref, make_spec(autoscaling=autoscaling), config, replicas=replicas)
    assert deployment["spec"].get("replicas", "omitted") == expected
