"""Autoscaler selection (HPA, KEDA ScaledObject or none), HPA metrics, KEDA triggers, PDBs."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest
from pydantic import ValidationError

from tritonop.children import BuildError, IsvcRef, build_revision
from tritonop.children.autoscaling import keda_triggers, quantity
from tritonop.config import OperatorConfig
from tritonop.kinds import REVISION_CHILD_KINDS

REV = "abcdef0123"
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
SCALED_OBJECT = ("keda.sh/v1alpha1", "ScaledObject")
PDB = ("policy/v1", "PodDisruptionBudget")


def kinds(children: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["apiVersion"], c["kind"]) for c in children]


def only(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (child,) = [c for c in children if c["kind"] == kind]
    return child


@pytest.mark.parametrize(
    "autoscaling, replicas, expected",
    [
        ({}, None, []),
        ({"minReplicas": 3, "maxReplicas": 3}, None, [PDB]),
        ({"minReplicas": 1, "maxReplicas": 4}, None, [HPA]),
        ({"minReplicas": 2, "maxReplicas": 4}, None, [HPA, PDB]),
        ({"engine": "keda", "minReplicas": 1, "maxReplicas": 4}, None, [SCALED_OBJECT]),
        ({"engine": "keda", "minReplicas": 2, "maxReplicas": 2}, None, [PDB]),
        # Pinned replicas (service-provider canary, rolled-back canary) suppress the autoscaler.
        ({"minReplicas": 1, "maxReplicas": 4}, 2, [PDB]),
        ({"engine": "keda", "minReplicas": 2, "maxReplicas": 4}, 1, []),
        ({"minReplicas": 2, "maxReplicas": 4}, 0, []),
    ],
)
def test_revision_children_by_autoscaling(ref, make_spec, config, autoscaling, replicas, expected) -> None:
    children = build_revision(ref, make_spec(autoscaling=autoscaling), REV, config, replicas=replicas)
    assert kinds(children) == [("apps/v1", "Deployment"), ("v1", "Service"), *expected]
    assert set(kinds(children)) <= {k.key for k in REVISION_CHILD_KINDS}
    for child in children:
        assert child["metadata"]["name"] == f"resnet-{REV}"


def test_never_both_hpa_and_scaled_object(ref, make_spec, config) -> None:
    for engine in ("hpa", "keda"):
        spec = make_spec(autoscaling={"engine": engine, "maxReplicas": 5, "gpuUtilization": 60})
        found = set(kinds(build_revision(ref, spec, REV, config))) & {HPA, SCALED_OBJECT}
        assert len(found) == 1


def test_hpa_targets_the_revision_deployment_with_shorthands_after_raw_metrics(ref, make_spec, config) -> None:
    raw = {
        "type": "External",
        "external": {"metric": {"name": "queue_depth"}, "target": {"type": "Value", "value": "30"}},
    }
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600}}
    spec = make_spec(
        autoscaling={
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": [raw],
            "cpuUtilization": 70,
            "gpuUtilization": 60,
            "queueTimeMs": 12.5,
            "inferenceRate": 200,
            "behavior": behavior,
        }
    )
    hpa = only(build_revision(ref, spec, REV, config), "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"resnet-{REV}"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["behavior"] == behavior
    assert hpa["spec"]["metrics"] == [
        raw,
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                "target": {"type": "AverageValue", "averageValue": "60"},
            },
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "tritonop_queue_time_ms"},
                "target": {"type": "AverageValue", "averageValue": "12500m"},
            },
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "tritonop_inference_rate"},
                "target": {"type": "AverageValue", "averageValue": "200"},
            },
        },
    ]


def test_hpa_without_metrics_scales_on_cpu_at_80_percent(ref, make_spec, config) -> None:
    hpa = only(build_revision(ref, make_spec(autoscaling={"maxReplicas": 3}), REV, config), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    assert "behavior" not in hpa["spec"]


@pytest.mark.parametrize("value, text", [(20, "20"), (12.5, "12500m"), (0.25, "250m"), (0.0001, "1m")])
def test_fractional_targets_are_milli_quantities(value: float, text: str) -> None:
    assert quantity(value) == text


def test_scaled_object_queries_this_revisions_triton_series(ref, make_spec) -> None:
    config = OperatorConfig(
        prometheus_url="http://prom.default:9090",
        label_namespace="kubernetes_namespace",
        label_isvc="isvc",
        label_revision="rev",
    )
    spec = make_spec(
        autoscaling={
            "engine": "keda",
            "maxReplicas": 6,
            "cpuUtilization": 75,
            "gpuUtilization": 60,
            "queueTimeMs": 20,
            "inferenceRate": 150.5,
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}},
        }
    )
    scaled = only(build_revision(ref, spec, REV, config), "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"resnet-{REV}"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 6)
    assert scaled["spec"]["advanced"] == {
        "horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}}
    }
    cpu, gpu, queue, rate = scaled["spec"]["triggers"]
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "75"}}
    selector = 'kubernetes_namespace="ml",isvc="resnet",rev="abcdef0123"'
    for trigger, metric_type, threshold, metric in [
        (gpu, "Value", "60", "nv_gpu_utilization"),
        (queue, "Value", "20", "nv_inference_queue_duration_us"),
        (rate, "AverageValue", "150.5", "nv_inference_count"),
    ]:
        assert trigger["type"] == "prometheus"
        assert trigger["metricType"] == metric_type
        assert trigger["metadata"]["serverAddress"] == "http://prom.default:9090"
        assert trigger["metadata"]["threshold"] == threshold
        query = trigger["metadata"]["query"]
        assert f"{metric}{{{selector}}}" in query
        promql_parser.parse(query)  # raises on invalid PromQL
    assert "nv_inference_request_success{" + selector + "}" in queue["metadata"]["query"]


def test_scaled_object_prefers_the_spec_prometheus_url(ref, make_spec, config) -> None:
    spec = make_spec(
        autoscaling={"engine": "keda", "maxReplicas": 3, "queueTimeMs": 5},
        rollout={"analysis": {"prometheusUrl": "http://prometheus.team:9090"}},
    )
    (trigger,) = only(build_revision(ref, spec, REV, config), "ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["serverAddress"] == "http://prometheus.team:9090"


def test_scaled_object_maps_raw_resource_metrics_and_defaults_to_cpu(ref, make_spec, config) -> None:
    memory = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "6Gi"}},
    }
    spec = make_spec(autoscaling={"engine": "keda", "maxReplicas": 3, "metrics": [memory]})
    triggers = only(build_revision(ref, spec, REV, config), "ScaledObject")["spec"]["triggers"]
    assert triggers == [{"type": "memory", "metricType": "AverageValue", "metadata": {"value": "6Gi"}}]
    default = only(
        build_revision(ref, make_spec(autoscaling={"engine": "keda", "maxReplicas": 3}), REV, config), "ScaledObject"
    )
    assert default["spec"]["triggers"] == [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}}]


PODS_METRIC = {"type": "Pods", "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": "1"}}}


def test_the_spec_refuses_raw_metrics_keda_cannot_express(make_spec) -> None:
    # Refused where the CRD refuses it (a CEL rule), not later by the builder.
    with pytest.raises(ValidationError, match="engine keda takes only Resource cpu or memory metrics"):
        make_spec(autoscaling={"engine": "keda", "maxReplicas": 3, "metrics": [PODS_METRIC]})


def test_scaled_object_still_refuses_raw_metrics_keda_cannot_express(ref, make_spec) -> None:
    hpa_spec = make_spec(autoscaling={"maxReplicas": 3, "metrics": [PODS_METRIC]})
    with pytest.raises(BuildError) as raised:
        keda_triggers(hpa_spec.autoscaling, "http://prometheus:9090", 'rev="r"')
    assert raised.value.reason == "UnsupportedKedaMetric"


def test_pdb_lets_one_pod_of_the_revision_go_at_a_time(ref: IsvcRef, make_spec, config) -> None:
    pdb = only(
        build_revision(ref, make_spec(autoscaling={"minReplicas": 2, "maxReplicas": 2}), REV, config),
        "PodDisruptionBudget",
    )
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {"serving.tritonop.dev/inferenceservice": "resnet", "serving.tritonop.dev/revision": REV}
        },
        # A pod that is not Ready serves nothing: it may always go (a drain, a wedged InPlace pod).
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
