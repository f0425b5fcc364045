"""The Kubernetes types the spec passes through to children, typed for admission.

These were free-form objects once, so a typo (``resources: {limits: "8Gi"}``, an env var
without a name) passed the CRD and failed only when the child reached the API server, or
crashed a builder. Each type here is the part of the Kubernetes type the operator
supports, with the checks the API server would make on the child, written twice: as a
CEL rule for admission (``x-kubernetes-validations`` in the type's schema) and as the
Python check beside it for ``parse_spec``. tests/unit/api/test_api_differential.py keeps
the two in agreement.

They are TypedDicts, so a parsed value is the plain dict the builders copy into a child.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Required

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    with_config,
)
from typing_extensions import TypedDict

# RFC 1123 names and labels as Kubernetes validates them.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A label key or other qualified name: an optional DNS-subdomain prefix and '/', then a name.
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
OPTIONAL_QUALIFIED_NAME = "^(" + QUALIFIED_NAME[1:-1] + ")?$"
OPTIONAL_DNS_SUBDOMAIN = "^(" + DNS_SUBDOMAIN[1:-1] + ")?$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# A host name, optionally with a wildcard first label (Gateway API's and Ingress's hostname).
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Non-negative quantities without exponent: 2, 500m, 1.5, 8Gi.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i|[numkMGTPE])?$"
QUANTITY_MAX_LENGTH = 32
QUANTITY_MAX_INT = 10**15


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """Schema keywords for CEL rules, each (rule, message), checked by the API server at admission."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


def _config(*rules: tuple[str, str]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra=cel(*rules) if rules else None)


def _in_input_order(validated: Any, raw: Any) -> Any:
    if isinstance(validated, dict) and isinstance(raw, Mapping):
        ordered = {key: _in_input_order(validated[key], raw[key]) for key in raw if key in validated}
        return ordered | {key: value for key, value in validated.items() if key not in ordered}
    if isinstance(validated, list) and isinstance(raw, list | tuple) and len(validated) == len(raw):
        return [_in_input_order(value, item) for value, item in zip(validated, raw, strict=True)]
    return validated


def _keep_input_order(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return _in_input_order(handler(value), value)


# Validated TypedDicts list their keys in declaration order; children keep the user's order.
KeepOrder = WrapValidator(_keep_input_order)


def _quantity(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= QUANTITY_MAX_INT:
            return value
    elif isinstance(value, str) and len(value) <= QUANTITY_MAX_LENGTH and re.fullmatch(QUANTITY_PATTERN, value):
        return value
    raise ValueError("must be a quantity: a whole number, or a string such as 500m, 1.5 or 8Gi")


# An int-or-string in the CRD, like Kubernetes' own resource.Quantity (without sign or exponent).
Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "maximum": QUANTITY_MAX_INT,
            "pattern": QUANTITY_PATTERN,
            "maxLength": QUANTITY_MAX_LENGTH,
        }
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
LabelKey = Annotated[str, Field(max_length=317, pattern=QUALIFIED_NAME)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME)]


# ---------------------------------------------------------------- resources


@with_config(_config())
class ResourceRequirements(TypedDict, total=False):
    """Container resources: requests and limits by resource name (cpu, memory, ephemeral-storage, ...)."""

    limits: Annotated[dict[str, Quantity], Field(max_length=32, description="Most the container may use.")]
    requests: Annotated[dict[str, Quantity], Field(max_length=32, description="What the scheduler reserves.")]


# ---------------------------------------------------------------- env


@with_config(_config())
class KeySelector(TypedDict, total=False):
    name: Required[Name]
    key: Required[Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]]
    optional: bool


@with_config(_config())
class ObjectFieldSelector(TypedDict, total=False):
    apiVersion: Literal["v1"]
    fieldPath: Required[
        Annotated[
            str,
            Field(
                max_length=317,
                pattern=r"^(metadata\.(name|namespace|uid|labels\['[^']+'\]|annotations\['[^']+'\])"
                r"|spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$",
            ),
        ]
    ]


@with_config(_config())
class ResourceFieldSelector(TypedDict, total=False):
    containerName: Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]
    resource: Required[
        Annotated[
            str,
            Field(max_length=63, pattern=r"^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z]+)$"),
        ]
    ]
    divisor: Quantity


_ONE_SOURCE = (
    "(has(self.configMapKeyRef) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) + "
    "(has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0) == 1",
    "valueFrom needs exactly one of configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef",
)


@with_config(_config(_ONE_SOURCE))
class EnvVarSource(TypedDict, total=False):
    configMapKeyRef: KeySelector
    secretKeyRef: KeySelector
    fieldRef: ObjectFieldSelector
    resourceFieldRef: ResourceFieldSelector


def _one_source(source: EnvVarSource) -> EnvVarSource:
    if len(source) != 1:
        raise ValueError(_ONE_SOURCE[1])
    return source


_VALUE_OR_VALUE_FROM = ("has(self.value) != has(self.valueFrom)", "env needs exactly one of value or valueFrom")


@with_config(_config(_VALUE_OR_VALUE_FROM))
class EnvVar(TypedDict, total=False):
    """One environment variable of the Triton container."""

    name: Required[Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")]]
    value: Annotated[str, Field(max_length=32768)]
    valueFrom: Annotated[EnvVarSource, AfterValidator(_one_source)]


def _value_or_value_from(env: EnvVar) -> EnvVar:
    if ("value" in env) == ("valueFrom" in env):
        raise ValueError(_VALUE_OR_VALUE_FROM[1])
    return env


EnvVarItem = Annotated[EnvVar, AfterValidator(_value_or_value_from)]


# ---------------------------------------------------------------- scheduling


_TOLERATION_RULES = (
    (
        "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        "a toleration without key needs operator Exists",
    ),
    (
        "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        "a toleration with operator Exists takes no value",
    ),
    (
        "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "tolerationSeconds needs effect NoExecute",
    ),
)


@with_config(_config(*_TOLERATION_RULES))
class Toleration(TypedDict, total=False):
    key: Annotated[str, Field(max_length=317, pattern=OPTIONAL_QUALIFIED_NAME)]
    operator: Literal["Exists", "Equal"]
    value: LabelValue
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    tolerationSeconds: Annotated[int, Field(ge=-(2**40), le=2**40)]


def _toleration(toleration: Toleration) -> Toleration:
    key, operator = toleration.get("key", ""), toleration.get("operator", "Equal")
    if not key and operator != "Exists":
        raise ValueError(_TOLERATION_RULES[0][1])
    if operator == "Exists" and toleration.get("value", ""):
        raise ValueError(_TOLERATION_RULES[1][1])
    if "tolerationSeconds" in toleration and toleration.get("effect") != "NoExecute":
        raise ValueError(_TOLERATION_RULES[2][1])
    return toleration


TolerationItem = Annotated[Toleration, AfterValidator(_toleration)]


@with_config(_config())
class LocalObjectReference(TypedDict, total=False):
    name: Required[Name]


_SET_OPERATORS = ("In", "NotIn")
_VALUES_FOR_OPERATOR = (
    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : "
    "(self.operator in ['Gt', 'Lt'] ? (has(self.values) && size(self.values) == 1) : "
    "(!has(self.values) || size(self.values) == 0))",
    "values: In and NotIn need at least one, Gt and Lt exactly one, Exists and DoesNotExist none",
)


def _values_for_operator(requirement: Any) -> Any:
    operator, count = requirement["operator"], len(requirement.get("values", []))
    wanted = count > 0 if operator in _SET_OPERATORS else count == 1 if operator in ("Gt", "Lt") else count == 0
    if not wanted:
        raise ValueError(_VALUES_FOR_OPERATOR[1])
    return requirement


@with_config(_config(_VALUES_FOR_OPERATOR))
class LabelSelectorRequirement(TypedDict, total=False):
    key: Required[LabelKey]
    operator: Required[Literal["In", "NotIn", "Exists", "DoesNotExist"]]
    values: Annotated[list[LabelValue], Field(max_length=64)]


@with_config(_config())
class LabelSelector(TypedDict, total=False):
    matchLabels: Annotated[dict[str, LabelValue], Field(max_length=32)]
    matchExpressions: Annotated[
        list[Annotated[LabelSelectorRequirement, AfterValidator(_values_for_operator)]], Field(max_length=32)
    ]


@with_config(_config(_VALUES_FOR_OPERATOR))
class NodeSelectorRequirement(TypedDict, total=False):
    key: Required[LabelKey]
    operator: Required[Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]]
    values: Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=64)]


@with_config(_config())
class NodeFieldSelectorRequirement(TypedDict, total=False):
    key: Required[Literal["metadata.name"]]
    operator: Required[Literal["In", "NotIn"]]
    values: Required[Annotated[list[Annotated[str, Field(max_length=253)]], Field(min_length=1, max_length=1)]]


@with_config(_config())
class NodeSelectorTerm(TypedDict, total=False):
    matchExpressions: Annotated[
        list[Annotated[NodeSelectorRequirement, AfterValidator(_values_for_operator)]], Field(max_length=32)
    ]
    matchFields: Annotated[list[NodeFieldSelectorRequirement], Field(max_length=8)]


@with_config(_config())
class NodeSelector(TypedDict, total=False):
    nodeSelectorTerms: Required[Annotated[list[NodeSelectorTerm], Field(min_length=1, max_length=16)]]


Weight = Annotated[int, Field(ge=1, le=100)]


@with_config(_config())
class PreferredSchedulingTerm(TypedDict, total=False):
    weight: Required[Weight]
    preference: Required[NodeSelectorTerm]


@with_config(_config())
class NodeAffinity(TypedDict, total=False):
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector
    preferredDuringSchedulingIgnoredDuringExecution: Annotated[list[PreferredSchedulingTerm], Field(max_length=16)]


@with_config(_config())
class PodAffinityTerm(TypedDict, total=False):
    labelSelector: LabelSelector
    namespaceSelector: LabelSelector
    namespaces: Annotated[list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]], Field(max_length=32)]
    topologyKey: Required[Annotated[str, Field(min_length=1, max_length=317, pattern=QUALIFIED_NAME)]]


@with_config(_config())
class WeightedPodAffinityTerm(TypedDict, total=False):
    weight: Required[Weight]
    podAffinityTerm: Required[PodAffinityTerm]


@with_config(_config())
class PodAffinity(TypedDict, total=False):
    requiredDuringSchedulingIgnoredDuringExecution: Annotated[list[PodAffinityTerm], Field(max_length=16)]
    preferredDuringSchedulingIgnoredDuringExecution: Annotated[list[WeightedPodAffinityTerm], Field(max_length=16)]


@with_config(_config())
class Affinity(TypedDict, total=False):
    """Pod scheduling constraints: node affinity, pod affinity and pod anti-affinity."""

    nodeAffinity: NodeAffinity
    podAffinity: PodAffinity
    podAntiAffinity: PodAffinity


# ---------------------------------------------------------------- autoscaling/v2


_TARGET_FIELD = (
    "has(self.averageUtilization) == (self.type == 'Utilization') && has(self.value) == (self.type == 'Value') "
    "&& has(self.averageValue) == (self.type == 'AverageValue')",
    "a target sets exactly the field its type names: averageUtilization, value or averageValue",
)
_TARGET_FIELDS = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}


@with_config(_config(_TARGET_FIELD))
class MetricTarget(TypedDict, total=False):
    type: Required[Literal["Utilization", "Value", "AverageValue"]]
    averageUtilization: Annotated[int, Field(ge=1, le=10000)]
    averageValue: Quantity
    value: Quantity


def _target_field(target: MetricTarget) -> MetricTarget:
    if set(target) - {"type"} != {_TARGET_FIELDS[target["type"]]}:
        raise ValueError(_TARGET_FIELD[1])
    return target


Target = Annotated[MetricTarget, AfterValidator(_target_field)]
MetricName = Annotated[str, Field(min_length=1, max_length=253)]


def _target_types(*types: str) -> tuple[tuple[str, str], Any]:
    """The CEL rule and the Python check that a metric source's target type is one of ``types``."""
    listed = ", ".join(f"'{t}'" for t in types)
    message = f"target.type must be {' or '.join(types)} for this metric"

    def check(source: Any) -> Any:
        if source["target"]["type"] not in types:
            raise ValueError(message)
        return source

    return (f"self.target.type in [{listed}]", message), AfterValidator(check)


_RESOURCE_TARGET_RULE, _resource_target = _target_types("Utilization", "AverageValue")
_PODS_TARGET_RULE, _pods_target = _target_types("AverageValue")
_VALUE_TARGET_RULE, _value_target = _target_types("Value", "AverageValue")


@with_config(_config())
class MetricIdentifier(TypedDict, total=False):
    name: Required[MetricName]
    selector: LabelSelector


@with_config(_config(_RESOURCE_TARGET_RULE))
class ResourceMetricSource(TypedDict, total=False):
    name: Required[MetricName]
    target: Required[Target]


@with_config(_config(_RESOURCE_TARGET_RULE))
class ContainerResourceMetricSource(TypedDict, total=False):
    name: Required[MetricName]
    container: Required[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]]
    target: Required[Target]


@with_config(_config(_PODS_TARGET_RULE))
class PodsMetricSource(TypedDict, total=False):
    metric: Required[MetricIdentifier]
    target: Required[Target]


@with_config(_config())
class CrossVersionObjectReference(TypedDict, total=False):
    apiVersion: Annotated[str, Field(max_length=253)]
    kind: Required[Annotated[str, Field(min_length=1, max_length=63)]]
    name: Required[Name]


@with_config(_config(_VALUE_TARGET_RULE))
class ObjectMetricSource(TypedDict, total=False):
    describedObject: Required[CrossVersionObjectReference]
    metric: Required[MetricIdentifier]
    target: Required[Target]


@with_config(_config(_VALUE_TARGET_RULE))
class ExternalMetricSource(TypedDict, total=False):
    metric: Required[MetricIdentifier]
    target: Required[Target]


_METRIC_SOURCES = {
    "Resource": "resource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
    "ContainerResource": "containerResource",
}
_METRIC_SOURCE = (
    " && ".join(f"(self.type == '{kind}') == has(self.{field})" for kind, field in _METRIC_SOURCES.items()),
    "a metric sets exactly the source its type names: resource, pods, object, external or containerResource",
)


@with_config(_config(_METRIC_SOURCE))
class MetricSpec(TypedDict, total=False):
    """One autoscaling/v2 MetricSpec."""

    type: Required[Literal["Resource", "Pods", "Object", "External", "ContainerResource"]]
    resource: Annotated[ResourceMetricSource, _resource_target]
    pods: Annotated[PodsMetricSource, _pods_target]
    object: Annotated[ObjectMetricSource, _value_target]
    external: Annotated[ExternalMetricSource, _value_target]
    containerResource: Annotated[ContainerResourceMetricSource, _resource_target]


def _metric_source(metric: MetricSpec) -> MetricSpec:
    if set(metric) - {"type"} != {_METRIC_SOURCES[metric["type"]]}:
        raise ValueError(_METRIC_SOURCE[1])
    return metric


MetricSpecItem = Annotated[MetricSpec, AfterValidator(_metric_source)]


@with_config(_config())
class HPAScalingPolicy(TypedDict, total=False):
    type: Required[Literal["Pods", "Percent"]]
    value: Required[Annotated[int, Field(ge=1, le=100000)]]
    periodSeconds: Required[Annotated[int, Field(ge=1, le=1800)]]


@with_config(_config())
class HPAScalingRules(TypedDict, total=False):
    stabilizationWindowSeconds: Annotated[int, Field(ge=0, le=3600)]
    selectPolicy: Literal["Max", "Min", "Disabled"]
    policies: Annotated[list[HPAScalingPolicy], Field(min_length=1, max_length=10)]


@with_config(_config())
class HPABehavior(TypedDict, total=False):
    """autoscaling/v2 HorizontalPodAutoscaler behavior: scale-up and scale-down rules."""

    scaleUp: HPAScalingRules
    scaleDown: HPAScalingRules


# ---------------------------------------------------------------- Gateway API


@with_config(_config())
class ParentReference(TypedDict, total=False):
    """A Gateway API parentRef: the Gateway (or listener of one) the routes attach to."""

    group: Annotated[str, Field(max_length=253, pattern=OPTIONAL_DNS_SUBDOMAIN)]
    kind: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")]
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
    name: Required[Annotated[str, Field(min_length=1, max_length=253)]]
    sectionName: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    port: Annotated[int, Field(ge=1, le=65535)]


# ---------------------------------------------------------------- pod settings

# What the operator puts in every Triton pod itself (children/deployment.py, children/storage.py):
# extra volumes and containers must not take these names, nor extra Triton mounts these paths.
# tests/unit/children/test_children_pod_settings.py checks them against built pods.
OPERATOR_VOLUMES = ("dshm", "tmp", "model-repository", "storage-credentials")
OPERATOR_CONTAINERS = ("triton", "fetch-model")
OPERATOR_MOUNT_PATHS = ("/dev/shm", "/tmp", "/mnt/models", "/var/run/secrets/tritonop/storage")
# An extended resource name (nvidia.com/gpu, nvidia.com/mig-1g.10gb, amd.com/gpu): a dotted domain, '/', a name.
EXTENDED_RESOURCE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
# Paths without empty, '.' or '..' segments (nor whitespace), so that equal paths are equal strings.
_SEGMENT = r"(\.\.[^/\s]+|\.[^/.\s][^/\s]*|[^/.\s][^/\s]*)"
ABSOLUTE_PATH = r"^(/" + _SEGMENT.replace(r"\s", r":\s") + ")+$"
# Relative, and not starting with '..' (Kubernetes reserves ..data and the like in volumes).
RELATIVE_PATH = r"^(\.[^/.\s][^/\s]*|[^/.\s][^/\s]*)(/" + _SEGMENT + ")*$"
ContainerName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
FileMode = Annotated[int, Field(ge=0, le=0o777)]
Id = Annotated[int, Field(ge=0, le=2**31 - 1)]


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


_NOT_KUBERNETES_IO = (
    "!self.contains('kubernetes.io/')",
    "gpuResource must be an extended resource, not one in the kubernetes.io domain",
)


def _extended_resource(name: str) -> str:
    if "kubernetes.io/" in name:
        raise ValueError(_NOT_KUBERNETES_IO[1])
    return name


# The resource gpus counts: an extended resource a device plugin advertises.
GpuResource = Annotated[
    str,
    Field(max_length=317, pattern=EXTENDED_RESOURCE, json_schema_extra=cel(_NOT_KUBERNETES_IO)),
    AfterValidator(_extended_resource),
]


@with_config(_config())
class ProbeTuning(TypedDict, total=False):
    """Timing of one of the Triton container's probes; the operator keeps what the probe asks."""

    initialDelaySeconds: Annotated[int, Field(ge=0, le=3600)]
    periodSeconds: Annotated[int, Field(ge=1, le=3600)]
    timeoutSeconds: Annotated[int, Field(ge=1, le=3600)]
    failureThreshold: Annotated[int, Field(ge=1, le=10000)]


@with_config(_config())
class TritonProbes(TypedDict, total=False):
    """Timing of the Triton container's startup, readiness and liveness probes."""

    startup: ProbeTuning
    readiness: ProbeTuning
    liveness: ProbeTuning


# ---------------------------------------------------------------- security contexts


def _profile_rule(kind: str) -> tuple[tuple[str, str], AfterValidator]:
    """The CEL rule and the Python check that localhostProfile is set exactly with type Localhost."""
    message = f"{kind}: localhostProfile is set exactly when type is Localhost"

    def check(profile: Any) -> Any:
        if (profile["type"] == "Localhost") != ("localhostProfile" in profile):
            raise ValueError(message)
        return profile

    return ("(self.type == 'Localhost') == has(self.localhostProfile)", message), AfterValidator(check)


_SECCOMP_RULE, _seccomp_localhost = _profile_rule("seccompProfile")
_APPARMOR_RULE, _apparmor_localhost = _profile_rule("appArmorProfile")


@with_config(_config(_SECCOMP_RULE))
class SeccompProfile(TypedDict, total=False):
    type: Required[Literal["RuntimeDefault", "Localhost", "Unconfined"]]
    localhostProfile: Annotated[str, Field(min_length=1, max_length=1024, pattern=RELATIVE_PATH)]


@with_config(_config(_APPARMOR_RULE))
class AppArmorProfile(TypedDict, total=False):
    type: Required[Literal["RuntimeDefault", "Localhost", "Unconfined"]]
    localhostProfile: Annotated[str, Field(min_length=1, max_length=4095, pattern=r"^\S+$")]


@with_config(_config())
class SELinuxOptions(TypedDict, total=False):
    user: Annotated[str, Field(max_length=253)]
    role: Annotated[str, Field(max_length=253)]
    type: Annotated[str, Field(max_length=253)]
    level: Annotated[str, Field(max_length=253)]


Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


@with_config(_config())
class Capabilities(TypedDict, total=False):
    add: Annotated[list[Capability], Field(max_length=64)]
    drop: Annotated[list[Capability], Field(max_length=64)]


@with_config(_config())
class PodSecurityContext(TypedDict, total=False):
    """Pod-level security settings (a subset of core/v1 PodSecurityContext)."""

    runAsUser: Id
    runAsGroup: Id
    runAsNonRoot: bool
    fsGroup: Id
    fsGroupChangePolicy: Literal["OnRootMismatch", "Always"]
    supplementalGroups: Annotated[list[Id], Field(max_length=32)]
    seccompProfile: Annotated[SeccompProfile, _seccomp_localhost]
    appArmorProfile: Annotated[AppArmorProfile, _apparmor_localhost]
    seLinuxOptions: SELinuxOptions


# The API server refuses a container that may not escalate privileges yet is privileged or adds CAP_SYS_ADMIN.
_NO_ESCALATION_CONFLICT = (
    "!has(self.allowPrivilegeEscalation) || self.allowPrivilegeEscalation || "
    "(!(has(self.privileged) && self.privileged) && "
    "!(has(self.capabilities) && has(self.capabilities.add) && 'CAP_SYS_ADMIN' in self.capabilities.add))",
    "allowPrivilegeEscalation false cannot go with privileged true or capabilities.add CAP_SYS_ADMIN",
)


@with_config(_config(_NO_ESCALATION_CONFLICT))
class SecurityContext(TypedDict, total=False):
    """Container-level security settings (a subset of core/v1 SecurityContext)."""

    runAsUser: Id
    runAsGroup: Id
    runAsNonRoot: bool
    allowPrivilegeEscalation: bool
    privileged: bool
    capabilities: Capabilities
    readOnlyRootFilesystem: bool
    seccompProfile: Annotated[SeccompProfile, _seccomp_localhost]
    appArmorProfile: Annotated[AppArmorProfile, _apparmor_localhost]
    seLinuxOptions: SELinuxOptions


def _no_escalation_conflict(context: SecurityContext) -> SecurityContext:
    if context.get("allowPrivilegeEscalation") is False and (
        context.get("privileged") is True or "CAP_SYS_ADMIN" in context.get("capabilities", {}).get("add", [])
    ):
        raise ValueError(_NO_ESCALATION_CONFLICT[1])
    return context


SecurityContextValue = Annotated[SecurityContext, AfterValidator(_no_escalation_conflict)]


# ---------------------------------------------------------------- volumes


@with_config(_config())
class KeyToPath(TypedDict, total=False):
    key: Required[Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]]
    path: Required[Annotated[str, Field(min_length=1, max_length=1024, pattern=RELATIVE_PATH)]]
    mode: FileMode


@with_config(_config())
class ConfigMapVolumeSource(TypedDict, total=False):
    name: Required[Name]
    items: Annotated[list[KeyToPath], Field(max_length=64)]
    defaultMode: FileMode
    optional: bool


@with_config(_config())
class SecretVolumeSource(TypedDict, total=False):
    secretName: Required[Name]
    items: Annotated[list[KeyToPath], Field(max_length=64)]
    defaultMode: FileMode
    optional: bool


@with_config(_config())
class EmptyDirVolumeSource(TypedDict, total=False):
    medium: Literal["", "Memory"]
    sizeLimit: Quantity


@with_config(_config())
class PersistentVolumeClaimVolumeSource(TypedDict, total=False):
    claimName: Required[Name]
    readOnly: bool


@with_config(_config())
class CSIVolumeSource(TypedDict, total=False):
    driver: Required[Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_SUBDOMAIN)]]
    readOnly: bool
    fsType: Annotated[str, Field(max_length=63)]
    volumeAttributes: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=32)]
    nodePublishSecretRef: LocalObjectReference


_VOLUME_SOURCES = ("emptyDir", "configMap", "secret", "persistentVolumeClaim", "csi")
_ONE_VOLUME_SOURCE = (
    " + ".join(f"(has(self.{source}) ? 1 : 0)" for source in _VOLUME_SOURCES) + " == 1",
    "a volume needs exactly one of emptyDir, configMap, secret, persistentVolumeClaim or csi",
)
_NOT_AN_OPERATOR_VOLUME = (
    f"!(self.name in {_cel_list(OPERATOR_VOLUMES)})",
    f"volume names {', '.join(OPERATOR_VOLUMES)} are the operator's own",
)


@with_config(_config(_ONE_VOLUME_SOURCE, _NOT_AN_OPERATOR_VOLUME))
class Volume(TypedDict, total=False):
    """An extra pod volume: emptyDir, configMap, secret, persistentVolumeClaim or csi (the restricted kinds)."""

    name: Required[Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]]
    emptyDir: EmptyDirVolumeSource
    configMap: ConfigMapVolumeSource
    secret: SecretVolumeSource
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource
    csi: CSIVolumeSource


def _volume(volume: Volume) -> Volume:
    if sum(source in volume for source in _VOLUME_SOURCES) != 1:
        raise ValueError(_ONE_VOLUME_SOURCE[1])
    if volume["name"] in OPERATOR_VOLUMES:
        raise ValueError(f"volume name {volume['name']!r} is the operator's own ({', '.join(OPERATOR_VOLUMES)})")
    return volume


VolumeItem = Annotated[Volume, AfterValidator(_volume)]


@with_config(_config())
class VolumeMount(TypedDict, total=False):
    """A volume mounted into a container."""

    name: Required[Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]]
    mountPath: Required[Annotated[str, Field(min_length=2, max_length=1024, pattern=ABSOLUTE_PATH)]]
    readOnly: bool
    subPath: Annotated[str, Field(min_length=1, max_length=1024, pattern=RELATIVE_PATH)]


# ---------------------------------------------------------------- containers

_NOT_AN_OPERATOR_CONTAINER = (
    f"!(self.name in {_cel_list(OPERATOR_CONTAINERS)})",
    f"container names {', '.join(OPERATOR_CONTAINERS)} are the operator's own",
)
_UNIQUE_MOUNT_PATHS = (
    "!has(self.volumeMounts) || self.volumeMounts.all(m, self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))",
    "a container's volumeMounts must each have their own mountPath",
)


@with_config(_config(_NOT_AN_OPERATOR_CONTAINER, _UNIQUE_MOUNT_PATHS))
class Container(TypedDict, total=False):
    """An extra container of the Triton pods (a subset of core/v1 Container)."""

    name: Required[ContainerName]
    image: Required[Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]]
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"]
    command: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=64)]
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)]
    workingDir: Annotated[str, Field(max_length=1024)]
    env: Annotated[list[EnvVarItem], Field(max_length=128)]
    resources: ResourceRequirements
    volumeMounts: Annotated[list[VolumeMount], Field(max_length=32)]
    securityContext: SecurityContextValue


def _duplicate(values: list[str]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _container(container: Container) -> Container:
    if container["name"] in OPERATOR_CONTAINERS:
        raise ValueError(
            f"container name {container['name']!r} is the operator's own ({', '.join(OPERATOR_CONTAINERS)})"
        )
    path = _duplicate([mount["mountPath"] for mount in container.get("volumeMounts", [])])
    if path is not None:
        raise ValueError(f"container {container['name']!r} mounts two volumes at {path}")
    return container


ContainerItem = Annotated[Container, AfterValidator(_container)]


# ---------------------------------------------------------------- topology spread

_MIN_DOMAINS = (
    "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
    "minDomains needs whenUnsatisfiable DoNotSchedule",
)


@with_config(_config(_MIN_DOMAINS))
class TopologySpreadConstraint(TypedDict, total=False):
    """How Triton pods spread over a topology (core/v1 TopologySpreadConstraint, without matchLabelKeys)."""

    maxSkew: Required[Annotated[int, Field(ge=1, le=1000)]]
    topologyKey: Required[Annotated[str, Field(min_length=1, max_length=317, pattern=QUALIFIED_NAME)]]
    whenUnsatisfiable: Required[Literal["DoNotSchedule", "ScheduleAnyway"]]
    labelSelector: LabelSelector
    minDomains: Annotated[int, Field(ge=1, le=1000)]
    nodeAffinityPolicy: Literal["Honor", "Ignore"]
    nodeTaintsPolicy: Literal["Honor", "Ignore"]


def _min_domains(constraint: TopologySpreadConstraint) -> TopologySpreadConstraint:
    if "minDomains" in constraint and constraint["whenUnsatisfiable"] != "DoNotSchedule":
        raise ValueError(_MIN_DOMAINS[1])
    return constraint


TopologySpreadConstraintItem = Annotated[TopologySpreadConstraint, AfterValidator(_min_domains)]


# ---------------------------------------------------------------- across the pod's extras

# Rules on spec.triton as a whole: names unique across the pod, mounts naming existing volumes.
_MOUNTS_NAME_VOLUMES = "{mounts}.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))"
POD_EXTRAS_RULES = (
    (
        "!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
        "triton.volumes must have unique names",
    ),
    (
        "(!has(self.volumeMounts) || "
        + _MOUNTS_NAME_VOLUMES.format(mounts="self.volumeMounts")
        + ") && "
        + " && ".join(
            f"(!has(self.{field}) || self.{field}.all(c, !has(c.volumeMounts) || "
            + _MOUNTS_NAME_VOLUMES.format(mounts="c.volumeMounts")
            + "))"
            for field in ("initContainers", "sidecars")
        ),
        "every volumeMount (of triton, initContainers and sidecars) must name one of triton.volumes",
    ),
    (
        "!has(self.volumeMounts) || self.volumeMounts.all(m, !(m.mountPath in "
        + _cel_list(OPERATOR_MOUNT_PATHS)
        + ") && self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))",
        "triton.volumeMounts must each have their own mountPath, none of "
        + ", ".join(OPERATOR_MOUNT_PATHS)
        + " (the operator's own)",
    ),
    (
        "(!has(self.initContainers) || self.initContainers.all(c, self.initContainers.exists_one(d, d.name == c.name)"
        " && (!has(self.sidecars) || !self.sidecars.exists(d, d.name == c.name)))) && "
        "(!has(self.sidecars) || self.sidecars.all(c, self.sidecars.exists_one(d, d.name == c.name)))",
        "initContainers and sidecars must have unique names",
    ),
    (
        "!has(self.topologySpreadConstraints) || self.topologySpreadConstraints.all(c, "
        "self.topologySpreadConstraints.exists_one(d, d.topologyKey == c.topologyKey "
        "&& d.whenUnsatisfiable == c.whenUnsatisfiable))",
        "topologySpreadConstraints must not repeat a topologyKey with the same whenUnsatisfiable",
    ),
)


def check_pod_extras(
    volumes: list[Volume],
    volume_mounts: list[VolumeMount],
    init_containers: list[Container],
    sidecars: list[Container],
    spread: list[TopologySpreadConstraint],
) -> None:
    """POD_EXTRAS_RULES in Python: ValueError naming the first name or path that breaks one."""
    names = [volume["name"] for volume in volumes]
    if (name := _duplicate(names)) is not None:
        raise ValueError(f"triton.volumes: two volumes are named {name!r}")
    for where, mounts in [
        ("triton.volumeMounts", volume_mounts),
        *((f"container {c['name']!r}", c.get("volumeMounts", [])) for c in [*init_containers, *sidecars]),
    ]:
        for mount in mounts:
            if mount["name"] not in names:
                raise ValueError(f"{where}: mount {mount['name']!r} names no volume of triton.volumes")
    for mount in volume_mounts:
        if mount["mountPath"] in OPERATOR_MOUNT_PATHS:
            raise ValueError(f"triton.volumeMounts: {mount['mountPath']} is the operator's own mount")
    if (path := _duplicate([mount["mountPath"] for mount in volume_mounts])) is not None:
        raise ValueError(f"triton.volumeMounts: two volumes are mounted at {path}")
    if (name := _duplicate([c["name"] for c in [*init_containers, *sidecars]])) is not None:
        raise ValueError(f"initContainers and sidecars: two containers are named {name!r}")
    pairs = [f"{c['topologyKey']} {c['whenUnsatisfiable']}" for c in spread]
    if (pair := _duplicate(pairs)) is not None:
        raise ValueError(f"topologySpreadConstraints: {pair} is given twice")
