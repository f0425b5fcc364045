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
