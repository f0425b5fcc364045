"""parse_spec admits what the API server admits: one regression test per spec that once slipped through.

Each of these passed the CRD (or was read differently by the operator than by the API
server) and then crashed a builder, overflowed a timer, or failed only when a child
reached the API server. Now the CRD refuses it and parse_spec raises BuildError, or both
admit it and it renders.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tritonop.children import BuildError, parse_spec
from tritonop.config import OperatorConfig
from tritonop.render import render
from tritonop.rollout.policy import RolloutPolicy

ISVC: dict[str, Any] = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "resnet"},
    "spec": {"model": {"storageUri": "s3://models/repository"}},
}
CASE = {"name": "c", "inputs": [{"name": "X", "datatype": "FP32", "shape": [1], "data": [1.0]}]}


def isvc(name: str = "resnet", **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ISVC)
    obj["metadata"]["name"] = name
    obj["spec"].update(spec)
    return obj


def refused(obj: dict[str, Any], reason: str = "InvalidSpec") -> str:
    """render's BuildError message for ``obj``, after checking its reason and that it is one line."""
    with pytest.raises(BuildError) as raised:
        render(obj, OperatorConfig())
    assert raised.value.reason == reason, str(raised.value)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def kinds(obj: dict[str, Any]) -> list[str]:
    return [child["kind"] for child in render(obj, OperatorConfig())]


# ---------------------------------------------------------------- resources


def test_resources_limits_as_a_string_is_a_build_error_not_a_value_error() -> None:
    message = refused(isvc(triton={"resources": {"limits": "8Gi"}}))
    assert message == "spec.triton.resources.limits: must be an object"


@pytest.mark.parametrize("quantity", ["8GB", "-1", "1e3", 1.5, True, -2])
def test_resources_are_maps_of_quantities(quantity: object) -> None:
    message = refused(isvc(triton={"resources": {"requests": {"memory": quantity}}}))
    assert message.startswith("spec.triton.resources.requests.memory: must be a quantity")


def test_resources_take_integers_and_quantity_strings() -> None:
    obj = isvc(triton={"gpus": 0, "resources": {"requests": {"cpu": 2, "memory": "8Gi"}, "limits": {"cpu": "2.5"}}})
    deployment = render(obj, OperatorConfig())[0]
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": 2, "memory": "8Gi"}, "limits": {"cpu": "2.5"}}


# ---------------------------------------------------------------- KEDA metrics


def test_keda_with_a_malformed_resource_metric_is_a_build_error_not_an_attribute_error() -> None:
    autoscaling = {"engine": "keda", "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": "cpu"}]}
    assert refused(isvc(autoscaling=autoscaling)) == "spec.autoscaling.metrics[0].resource: must be an object"


def test_keda_refuses_metrics_it_has_no_trigger_for_when_parsing() -> None:
    pods = {"type": "Pods", "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": 1}}}
    message = refused(isvc(autoscaling={"engine": "keda", "maxReplicas": 3, "metrics": [pods]}))
    assert "engine keda takes only Resource cpu or memory metrics" in message


def test_keda_turns_resource_metrics_into_triggers() -> None:
    cpu = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    obj = isvc(autoscaling={"engine": "keda", "maxReplicas": 3, "metrics": [cpu]})
    (scaled,) = [c for c in render(obj, OperatorConfig()) if c["kind"] == "ScaledObject"]
    assert scaled["spec"]["triggers"] == [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}]


@pytest.mark.parametrize(
    ("metric", "needle"),
    [
        ({"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 1}}}, "source its type names"),
        ({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Value", "value": 1}}}, "Utilization or AverageValue"),
        ({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "value": 1}}}, "field its type names"),
    ],
)  # fmt: skip
def test_hpa_metrics_are_checked_as_the_hpa_would_check_them(metric: dict[str, Any], needle: str) -> None:
    assert needle in refused(isvc(autoscaling={"maxReplicas": 3, "metrics": [metric]}))


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "rollout",
    [
        {"interval": "9999999999h"},
        {"readinessTimeout": "9999999999h"},
        {"analysis": {"noDataTimeout": "9999999999h"}},
        {"interval": "99999h"},
        {"interval": "24h0.001ms"},
        {"readinessTimeout": "25h"},
        {"analysis": {"noDataTimeout": "24h1s"}},
    ],
)
def test_huge_durations_are_refused_instead_of_overflowing_later(rollout: dict[str, Any]) -> None:
    message = refused(isvc(rollout=rollout))
    assert ("must be a duration" in message) or ("at most 24h" in message)


@pytest.mark.parametrize(
    ("rollout", "needle"),
    [
        ({"interval": "0s"}, "spec.rollout.interval: must be at least 1s and at most 24h, got 0s"),
        ({"interval": "500ms"}, "spec.rollout.interval: must be at least 1s"),
        ({"readinessTimeout": "0s"}, "spec.rollout.readinessTimeout: must be at least 1s"),
        ({"acceptance": {"timeout": "0s", "cases": [CASE]}}, "spec.rollout.acceptance.timeout: must be longer than 0s"),
        ({"acceptance": {"timeout": "5m0.001ms", "cases": [CASE]}}, "and at most 5m, got 5m0.001ms"),
    ],
)
def test_zero_and_out_of_range_durations_are_refused(rollout: dict[str, Any], needle: str) -> None:
    assert needle in refused(isvc(rollout=rollout))


def test_the_longest_durations_keep_every_timer_finite() -> None:
    rollout = {"interval": "24h", "readinessTimeout": "24h", "analysis": {"noDataTimeout": "24h"}}
    policy = RolloutPolicy.from_spec(parse_spec(isvc(rollout=rollout)).rollout)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    for seconds in (policy.interval_s, policy.readiness_timeout_s, policy.no_data_timeout_s):
        assert now + timedelta(seconds=seconds) == now + timedelta(hours=24)
    assert parse_spec(isvc(rollout={"analysis": {"noDataTimeout": "0s"}})).rollout.analysis.no_data_timeout == "0s"


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["1model", "my.model", "Resnet", "resnet-", "a" * 53])
def test_names_that_cannot_name_services_are_invalid_names(name: str) -> None:
    message = refused(isvc(name=name), reason="InvalidName")
    assert message.startswith(f"metadata.name {name!r} must be a DNS-1035 label of at most 52 characters")


def test_the_longest_valid_name_makes_63_character_service_names() -> None:
    children = render(isvc(name="a" * 52), OperatorConfig())
    assert max(len(c["metadata"]["name"]) for c in children if c["kind"] == "Service") == 63


def test_model_name_is_not_a_service_name_so_triton_names_stay_valid() -> None:
    deployment = render(isvc(model={"name": "my.model_v2", "storageUri": "s3://b/r"}), OperatorConfig())[0]
    assert "--load-model=my.model_v2" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


# ---------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"triton": {"gpus": "1"}}, "spec.triton.gpus: must be a valid integer"),
        ({"triton": {"gpus": True}}, "spec.triton.gpus: must be a valid integer"),
        ({"triton": {"gpus": 1.5}}, "spec.triton.gpus: must be a valid integer"),
        ({"rollout": {"paused": "true"}}, "spec.rollout.paused: must be a valid boolean"),
        ({"rollout": {"paused": 1}}, "spec.rollout.paused: must be a valid boolean"),
        ({"rollout": {"analysis": {"successRate": {"min": "0.9"}}}}, "spec.rollout.analysis.successRate.min: must be a valid number"),
        ({"model": {"storageUri": "s3://b/r", "version": 3}}, "spec.model.version: must be a valid string"),
    ],
)  # fmt: skip
def test_render_is_as_strict_about_types_as_the_api_server(spec: dict[str, Any], message: str) -> None:
    assert refused(isvc(**spec)).startswith(message)


def test_integral_floats_are_integers_as_the_api_server_stores_them() -> None:
    assert parse_spec(isvc(triton={"gpus": 2.0})).triton.gpus == 2


# ---------------------------------------------------------------- nulls


def test_null_is_absent_so_the_default_success_rate_check_stays_on() -> None:
    analysis = parse_spec(isvc(rollout={"analysis": {"successRate": None, "latency": None}})).rollout.analysis
    assert analysis.success_rate is not None and analysis.success_rate.min == 0.99
    assert analysis.latency is None


def test_success_rate_is_turned_off_explicitly() -> None:
    analysis = parse_spec(isvc(rollout={"analysis": {"successRate": {"enabled": False}}})).rollout.analysis
    assert analysis.success_rate is None


def test_nulls_in_fields_and_maps_are_dropped_but_not_in_lists() -> None:
    spec = parse_spec(isvc(triton={"gpus": None, "nodeSelector": {"pool": None, "zone": "a"}}))
    assert spec.triton.gpus == 1 and spec.triton.node_selector == {"zone": "a"}
    assert refused(isvc(triton={"args": [None]})).startswith("spec.triton.args[0]: must be a valid string")


# ---------------------------------------------------------------- pass-through Kubernetes types


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"triton": {"env": [{"value": "x"}]}}, "spec.triton.env[0].name: required"),
        ({"triton": {"env": [{"name": "A"}]}}, "spec.triton.env[0]: needs exactly one of value or valueFrom"),
        ({"triton": {"env": [{"name": "A", "value": 1}]}}, "spec.triton.env[0].value: must be a valid string"),
        ({"triton": {"env": [{"name": "A", "valueFrom": {}}]}}, "spec.triton.env[0].valueFrom: needs exactly one of configMapKeyRef"),
        ({"triton": {"affinity": {"nodeAffinity": 3}}}, "spec.triton.affinity.nodeAffinity: must be an object"),
        ({"triton": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}}}, "topologyKey: required"),
        ({"triton": {"tolerations": [{"operator": "Equal", "value": "x"}]}}, "needs operator Exists"),
        ({"autoscaling": {"maxReplicas": 2, "metrics": [{"type": "Resource"}]}}, "source its type names"),
        ({"traffic": {"provider": "gateway-api", "gateway": {"parentRefs": [{"namespace": "gw"}]}}}, "spec.traffic.gateway.parentRefs[0].name: required"),
        ({"traffic": {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "g"}], "hostnames": ["Bad Host"]}}}, "spec.traffic.gateway.hostnames[0]: must be a lowercase DNS name"),
        ({"traffic": {"provider": "istio", "istio": {"hosts": ["not a host"]}}}, "spec.traffic.istio.hosts[0]: must be * or a lowercase DNS name"),
        ({"traffic": {"provider": "nginx", "nginx": {"host": "a.example.com", "path": "api"}}}, "spec.traffic.nginx.path: must be / or a path"),
        ({"traffic": {"provider": "nginx", "nginx": {"host": "a.example.com", "path": "/a//b"}}}, "spec.traffic.nginx.path"),
        ({"traffic": {"provider": "nginx", "nginx": {"host": "1.2.3.4:80"}}}, "spec.traffic.nginx.host"),
    ],
)  # fmt: skip
def test_pass_through_kubernetes_values_are_typed(spec: dict[str, Any], message: str) -> None:
    assert message in refused(isvc(**spec))


def test_typed_pass_through_values_render_unchanged() -> None:
    env = [
        {"name": "A", "value": "1"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
    ]
    parent = {"name": "gw", "namespace": "gateways", "sectionName": "http", "port": 80}
    obj = isvc(
        triton={"env": env},
        traffic={"provider": "gateway-api", "gateway": {"parentRefs": [parent], "hostnames": ["*.example.com"]}},
    )
    deployment, *_, route = render(obj, OperatorConfig())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["env"][:-1] == env  # then the control-API key
    assert route["spec"]["parentRefs"] == [parent] and route["spec"]["hostnames"] == ["*.example.com"]
    assert kinds(isvc(traffic={"provider": "nginx", "nginx": {"host": "*.example.com", "path": "/v2/models_a/"}}))
    assert kinds(isvc(traffic={"provider": "istio", "istio": {"hosts": ["*"], "gateways": ["ns/gw", "mesh"]}}))
