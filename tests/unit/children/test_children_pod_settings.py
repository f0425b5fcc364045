"""spec.triton's pod settings reach the revision's pods: scheduling, extra volumes and containers,
probe timing, security contexts (held to Pod Security restricted unless the operator allows
more) and the GPU resource name; their revision-hash effects; collisions with the operator's
own names refused."""

from __future__ import annotations

from typing import Any

import pytest

from tritonop.api.kube_types import OPERATOR_CONTAINERS, OPERATOR_MOUNT_PATHS, OPERATOR_VOLUMES
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import BuildError, IsvcRef, build_revision, parse_spec, revision_of
from tritonop.config import OperatorConfig
from tritonop.render import render

REV = "abcdef0123"
REF = IsvcRef(name="resnet", namespace="ml", uid="5f0c6b1e-0000-4000-8000-000000000001", generation=1)
DEFAULT_CONFIG = OperatorConfig()
UNRESTRICTED = OperatorConfig(allow_unrestricted_security_context=True)
SPREAD = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
WITHOUT_SECCOMP = {key: value for key, value in RESTRICTED_CONTAINER.items() if key != "seccompProfile"}


def spec_of(model: dict[str, Any] | None = None, **triton: Any) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate(
        {"model": model or {"storageUri": "s3://models/repository"}, "triton": triton}
    )


def pod_of(spec: InferenceServiceSpec, config: OperatorConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    (deployment,) = [c for c in build_revision(REF, spec, REV, config, replicas=1) if c["kind"] == "Deployment"]
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


def init_containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"].get("initContainers", [])}


def isvc(**triton: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "resnet", "namespace": "ml"},
        "spec": {"model": {"storageUri": "s3://models/repository"}, "triton": triton},
    }


def refusal(**triton: Any) -> str:
    """parse_spec's one-line InvalidSpec message for a spec with these triton fields."""
    with pytest.raises(BuildError) as raised:
        parse_spec(isvc(**triton))
    assert raised.value.reason == "InvalidSpec"
    return str(raised.value)


def not_restricted(spec: InferenceServiceSpec) -> str:
    """The builders' SecurityContextNotRestricted message for ``spec``; the flag lets the same spec build."""
    with pytest.raises(BuildError) as raised:
        pod_of(spec)
    assert raised.value.reason == "SecurityContextNotRestricted"
    assert "--allow-unrestricted-security-context" in str(raised.value)
    pod_of(spec, UNRESTRICTED)
    return str(raised.value)


# ---------------------------------------------------------------- scheduling and lifecycle


def test_scheduling_settings_reach_the_pod() -> None:
    pod = pod_of(
        spec_of(runtimeClassName="nvidia", priorityClassName="inference-high", terminationGracePeriodSeconds=120)
    )["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["priorityClassName"] == "inference-high"
    assert pod["terminationGracePeriodSeconds"] == 120
    assert pod_of(spec_of(terminationGracePeriodSeconds=0))["spec"]["terminationGracePeriodSeconds"] == 0


def test_unset_settings_leave_the_pod_as_before() -> None:
    pod = pod_of(spec_of())
    for field in (
        "runtimeClassName",
        "priorityClassName",
        "terminationGracePeriodSeconds",
        "topologySpreadConstraints",
    ):
        assert field not in pod["spec"]
    assert list(containers(pod)) == ["triton"] and "initContainers" not in pod["spec"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["dshm", "tmp"]
    assert "kubectl.kubernetes.io/default-container" not in pod["metadata"]["annotations"]


def test_a_spread_constraint_without_selector_counts_its_own_revision() -> None:
    own = {"matchExpressions": [{"key": "team", "operator": "In", "values": ["vision"]}]}
    pod = pod_of(spec_of(topologySpreadConstraints=[SPREAD, {**SPREAD, "topologyKey": "a/b", "labelSelector": own}]))
    first, second = pod["spec"]["topologySpreadConstraints"]
    revision_pods = {"serving.tritonop.dev/inferenceservice": "resnet", "serving.tritonop.dev/revision": REV}
    assert first == {"labelSelector": {"matchLabels": revision_pods}, **SPREAD}
    assert second["labelSelector"] == own  # the user's selector as given


# ---------------------------------------------------------------- volumes and extra containers


def test_extra_volumes_mounts_init_containers_and_sidecars_reach_the_pod() -> None:
    spec = spec_of(
        {"storageUri": "https://example.com/models.tar.gz"},
        volumes=[{"name": "conf", "configMap": {"name": "app"}}, {"name": "logs", "emptyDir": {}}],
        volumeMounts=[{"name": "conf", "mountPath": "/etc/app", "readOnly": True}],
        initContainers=[{"name": "warm-up", "image": "busybox:1.36", "command": ["true"]}],
        sidecars=[
            {
                "name": "log-shipper",
                "image": "fluent-bit:3.1",
                "volumeMounts": [{"name": "logs", "mountPath": "/var/log/triton", "readOnly": True}],
            }
        ],
    )
    pod = pod_of(spec)
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["dshm", "tmp", "model-repository", "conf", "logs"]
    assert pod["spec"]["volumes"][3] == {"name": "conf", "configMap": {"name": "app"}}
    assert containers(pod)["triton"]["volumeMounts"][-1] == {"name": "conf", "mountPath": "/etc/app", "readOnly": True}
    # The operator's fetch-model first: user init containers run once the model is in place.
    assert list(init_containers(pod)) == ["fetch-model", "warm-up"]
    assert init_containers(pod)["warm-up"]["command"] == ["true"]
    assert list(containers(pod)) == ["triton", "log-shipper"]
    assert containers(pod)["log-shipper"]["volumeMounts"] == [
        {"name": "logs", "mountPath": "/var/log/triton", "readOnly": True}
    ]
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "triton"


@pytest.mark.parametrize("name", OPERATOR_VOLUMES)
def test_a_volume_named_like_the_operators_is_refused(name: str) -> None:
    message = refusal(volumes=[{"name": name, "emptyDir": {}}])
    assert message.startswith("spec.triton.volumes[0]: ") and "is the operator's own" in message


@pytest.mark.parametrize("name", OPERATOR_CONTAINERS)
@pytest.mark.parametrize("field", ["sidecars", "initContainers"])
def test_a_container_named_like_the_operators_is_refused(field: str, name: str) -> None:
    message = refusal(**{field: [{"name": name, "image": "busybox"}]})
    assert f"container name {name!r} is the operator's own" in message


@pytest.mark.parametrize("path", OPERATOR_MOUNT_PATHS)
def test_a_triton_mount_at_the_operators_paths_is_refused(path: str) -> None:
    volumes = [{"name": "extra", "emptyDir": {}}]
    message = refusal(volumes=volumes, volumeMounts=[{"name": "extra", "mountPath": path}])
    assert f"{path} is the operator's own mount" in message


@pytest.mark.parametrize(
    ("triton", "wording"),
    [
        ({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "secret": {"secretName": "s"}}]}, "named 'a'"),
        ({"volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}, "names no volume"),
        (
            {"sidecars": [{"name": "s", "image": "i", "volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}]},
            "names no volume",
        ),
        (
            {
                "volumes": [{"name": "a", "emptyDir": {}}],
                "volumeMounts": [{"name": "a", "mountPath": "/x"}, {"name": "a", "mountPath": "/x"}],
            },
            "mounted at /x",
        ),
        (
            {
                "initContainers": [{"name": "helper", "image": "i"}],
                "sidecars": [{"name": "helper", "image": "i"}],
            },
            "named 'helper'",
        ),
        ({"volumes": [{"name": "a", "emptyDir": {}, "configMap": {"name": "c"}}]}, "exactly one of"),
        ({"volumeMounts": [{"name": "a", "mountPath": "/mnt/models/../tmp"}]}, "absolute path"),
        ({"topologySpreadConstraints": [SPREAD, SPREAD]}, "given twice"),
        ({"topologySpreadConstraints": [{**SPREAD, "minDomains": 2}]}, "minDomains needs whenUnsatisfiable"),
        ({"gpuResource": "cpu"}, "extended resource name"),
        ({"gpuResource": "node.kubernetes.io/gpu"}, "not one in the kubernetes.io domain"),
    ],
)
def test_pod_extras_that_kubernetes_would_refuse_are_refused(triton: dict[str, Any], wording: str) -> None:
    assert wording in refusal(**triton)


def test_the_reserved_names_are_exactly_what_the_builders_use() -> None:
    """OPERATOR_* (api) against the pods the builders make for every kind of storage."""
    volumes, names, mounts = set(), set(), set()
    config = OperatorConfig(allowed_file_paths=("/models",))
    for model in (
        {"storageUri": "gs://bucket/repo", "storageSecretName": "gcs-key"},
        {"storageUri": "pvc://claim/repo"},
        {"storageUri": "https://example.com/repo.tar.gz"},
        {"storageUri": "file:///models/repo"},
    ):
        pod = pod_of(spec_of(model), config)["spec"]
        volumes |= {v["name"] for v in pod["volumes"]}
        names |= {c["name"] for c in [*pod["containers"], *pod.get("initContainers", [])]}
        mounts |= {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes == set(OPERATOR_VOLUMES)
    assert names == set(OPERATOR_CONTAINERS)
    assert mounts == set(OPERATOR_MOUNT_PATHS)


# ---------------------------------------------------------------- probes


def test_probe_tuning_changes_only_the_timing() -> None:
    default = containers(pod_of(spec_of()))["triton"]
    tuned = containers(
        pod_of(
            spec_of(
                probes={
                    "startup": {"periodSeconds": 20, "failureThreshold": 360},
                    "readiness": {"initialDelaySeconds": 15, "timeoutSeconds": 10},
                }
            )
        )
    )["triton"]
    assert tuned["startupProbe"] == {**default["startupProbe"], "periodSeconds": 20, "failureThreshold": 360}
    assert tuned["readinessProbe"] == {**default["readinessProbe"], "initialDelaySeconds": 15, "timeoutSeconds": 10}
    assert tuned["livenessProbe"] == default["livenessProbe"]
    assert tuned["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert "httpGet" in refusal(probes={"liveness": {"httpGet": {"path": "/", "port": 80}}})


# ---------------------------------------------------------------- security contexts


def test_overrides_replace_the_defaults_and_reach_every_container_without_its_own() -> None:
    own = {**RESTRICTED_CONTAINER, "runAsUser": 2000}
    spec = spec_of(
        {"storageUri": "https://example.com/models.tar.gz"},
        podSecurityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        securityContext={**RESTRICTED_CONTAINER, "runAsUser": 1001},
        sidecars=[{"name": "plain", "image": "i"}, {"name": "own", "image": "i", "securityContext": own}],
        initContainers=[{"name": "warm-up", "image": "i"}],
    )
    pod = pod_of(spec)
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    given = {**RESTRICTED_CONTAINER, "runAsUser": 1001}
    assert containers(pod)["triton"]["securityContext"] == given
    assert containers(pod)["plain"]["securityContext"] == given
    assert containers(pod)["own"]["securityContext"] == own
    assert init_containers(pod)["fetch-model"]["securityContext"] == given
    assert init_containers(pod)["warm-up"]["securityContext"] == given


def test_a_pod_context_alone_leaves_the_user_to_the_pod() -> None:
    """OpenShift's restricted-v2: no UID anywhere, the SCC assigns one from the namespace's range."""
    pod = pod_of(spec_of(podSecurityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}))
    triton = containers(pod)["triton"]["securityContext"]
    assert "runAsUser" not in triton and "runAsUser" not in pod["spec"]["securityContext"]
    assert triton["allowPrivilegeEscalation"] is False and triton["readOnlyRootFilesystem"] is True
    default = containers(pod_of(spec_of()))["triton"]["securityContext"]
    assert default["runAsUser"] == 1000  # unchanged without overrides


@pytest.mark.parametrize(
    "triton",
    [
        {"securityContext": {**RESTRICTED_CONTAINER, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}},
        {
            "securityContext": {
                **RESTRICTED_CONTAINER,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"},
            }
        },
        {"securityContext": {**RESTRICTED_CONTAINER, "seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}}},
        {"securityContext": {**RESTRICTED_CONTAINER, "appArmorProfile": {"type": "RuntimeDefault"}}},
        {"podSecurityContext": {}},  # the containers' defaults carry runAsNonRoot and seccomp
        {
            "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        },
    ],
)
def test_restricted_overrides_build(triton: dict[str, Any]) -> None:
    pod_of(spec_of(**triton))


@pytest.mark.parametrize(
    ("triton", "reason"),
    [
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "privileged": True, "allowPrivilegeEscalation": True}},
            "container triton: privileged must not be true",
        ),
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "allowPrivilegeEscalation": True}},
            "allowPrivilegeEscalation must be false",
        ),
        ({"securityContext": {**RESTRICTED_CONTAINER, "capabilities": {}}}, "capabilities.drop must hold ALL"),
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}},
            "capabilities.add may hold only NET_BIND_SERVICE, not SYS_ADMIN",
        ),
        ({"securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": False}}, "runAsNonRoot must be true"),
        ({"securityContext": {**RESTRICTED_CONTAINER, "runAsUser": 0}}, "container triton: runAsUser must not be 0"),
        ({"podSecurityContext": {"runAsUser": 0}}, "podSecurityContext: runAsUser must not be 0"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "podSecurityContext: runAsNonRoot must not be false"),
        (
            {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
            "podSecurityContext: seccompProfile.type must be RuntimeDefault or Localhost, not Unconfined",
        ),
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "seccompProfile": {"type": "Unconfined"}}},
            "container triton: seccompProfile.type must be RuntimeDefault or Localhost",
        ),
        (
            {"podSecurityContext": {}, "securityContext": WITHOUT_SECCOMP},
            "seccompProfile must be set",
        ),
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "appArmorProfile": {"type": "Unconfined"}}},
            "appArmorProfile.type must not be Unconfined",
        ),
        (
            {"securityContext": {**RESTRICTED_CONTAINER, "seLinuxOptions": {"type": "spc_t"}}},
            "seLinuxOptions.type must be one of container_t",
        ),
        ({"podSecurityContext": {"seLinuxOptions": {"user": "system_u"}}}, "must not set user or role"),
        (
            {"sidecars": [{"name": "debug", "image": "i", "securityContext": {"privileged": True}}]},
            "container debug: privileged must not be true",
        ),
        (
            {"initContainers": [{"name": "chown", "image": "i", "securityContext": {"runAsUser": 0}}]},
            "container chown: runAsUser must not be 0",
        ),
    ],
)
def test_each_setting_outside_restricted_is_refused_unless_the_operator_allows_it(
    triton: dict[str, Any], reason: str
) -> None:
    message = not_restricted(spec_of(**triton))
    assert reason in message
    assert message.startswith("the pod would not meet Pod Security restricted: ")


def test_containers_sharing_a_problem_are_named_together() -> None:
    spec = spec_of(
        {"storageUri": "https://example.com/models.tar.gz"},
        securityContext={**RESTRICTED_CONTAINER, "allowPrivilegeEscalation": True},
    )
    assert "containers fetch-model, triton: allowPrivilegeEscalation must be false" in not_restricted(spec)


def test_render_and_the_unrestricted_flag() -> None:
    obj = isvc(securityContext={"privileged": True})
    with pytest.raises(BuildError, match="privileged must not be true"):
        render(obj, DEFAULT_CONFIG)
    (deployment,) = [c for c in render(obj, UNRESTRICTED) if c["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {"privileged": True}


def test_the_flag_is_read_from_the_environment() -> None:
    assert OperatorConfig.from_env({}).allow_unrestricted_security_context is False
    env = {"TRITONOP_ALLOW_UNRESTRICTED_SECURITY_CONTEXT": "true"}
    assert OperatorConfig.from_env(env).allow_unrestricted_security_context is True


# ---------------------------------------------------------------- GPU resource


@pytest.mark.parametrize(
    ("resource", "taint"),
    [
        ("nvidia.com/gpu", "nvidia.com/gpu"),
        ("nvidia.com/mig-1g.10gb", "nvidia.com/gpu"),
        ("nvidia.com/gpu.shared", "nvidia.com/gpu"),
        ("amd.com/gpu", "amd.com/gpu"),
    ],
)
def test_gpu_resource_is_requested_and_its_taint_tolerated(resource: str, taint: str) -> None:
    spec = spec_of(gpus=2, gpuResource=resource, resources={"limits": {resource: 7, "memory": "8Gi"}})
    pod = pod_of(spec)
    triton = containers(pod)["triton"]
    assert triton["resources"] == {"limits": {"memory": "8Gi", resource: 2}, "requests": {resource: 2}}
    assert pod["spec"]["tolerations"] == [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]
    assert "--allow-gpu-metrics=true" in triton["args"]


def test_no_gpus_requests_no_gpu_resource() -> None:
    pod = pod_of(spec_of(gpus=0, gpuResource="nvidia.com/mig-1g.10gb"))
    assert containers(pod)["triton"]["resources"] == {}
    assert "tolerations" not in pod["spec"]
    assert "--allow-gpu-metrics=false" in containers(pod)["triton"]["args"]


# ---------------------------------------------------------------- revisions

BASE = {
    "model": {"name": "resnet50", "storageUri": "s3://models/repository", "version": "3"},
    "triton": {"gpus": 1, "args": ["--log-verbose=1"], "env": [{"name": "A", "value": "1"}]},
}


def revision(**triton: Any) -> str:
    return revision_of(InferenceServiceSpec.model_validate({**BASE, "triton": {**BASE["triton"], **triton}}))


def test_specs_without_the_new_settings_keep_their_revision() -> None:
    # tests/unit/children/test_children_revision_hash.py pins this revision of BASE.
    assert revision() == "4658e736db"
    spelled_out = revision(
        gpuResource="nvidia.com/gpu",
        topologySpreadConstraints=[],
        volumes=[],
        volumeMounts=[],
        initContainers=[],
        sidecars=[],
        probes={},
    )
    assert spelled_out == "4658e736db"


@pytest.mark.parametrize(
    "change",
    [
        {"gpuResource": "nvidia.com/mig-1g.10gb"},
        {"runtimeClassName": "nvidia"},
        {"priorityClassName": "high"},
        {"topologySpreadConstraints": [SPREAD]},
        {"terminationGracePeriodSeconds": 30},
        {"volumes": [{"name": "a", "emptyDir": {}}]},
        {"volumes": [{"name": "a", "emptyDir": {}}], "volumeMounts": [{"name": "a", "mountPath": "/a"}]},
        {"initContainers": [{"name": "a", "image": "i"}]},
        {"sidecars": [{"name": "a", "image": "i"}]},
        {"probes": {"startup": {"failureThreshold": 360}}},
        {"podSecurityContext": {}},
        {"securityContext": RESTRICTED_CONTAINER},
    ],
    ids=lambda change: "+".join(change),
)
def test_each_setting_that_changes_the_pod_is_a_new_revision(change: dict[str, Any]) -> None:
    assert revision(**change) != revision()
