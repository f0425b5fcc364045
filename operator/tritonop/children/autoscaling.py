"""A revision's autoscaler: an autoscaling/v2 HPA or a KEDA ScaledObject, never both.

See docs/autoscaling.md for the metrics behind each shorthand.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tritonop.analysis.promql import label_matchers
from tritonop.api.models import Autoscaling, AutoscalingEngine, InferenceServiceSpec
from tritonop.children.errors import BuildError
from tritonop.children.labels import revision_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import revision_child_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig

DEFAULT_CPU_UTILIZATION = 80
# Pods metrics served to the HPA by prometheus-adapter (rules in docs/autoscaling.md).
GPU_UTILIZATION_METRIC = "DCGM_FI_DEV_GPU_UTIL"
QUEUE_TIME_METRIC = "tritonop_queue_time_ms"
INFERENCE_RATE_METRIC = "tritonop_inference_rate"
KEDA_RESOURCE_TRIGGERS = ("cpu", "memory")


def is_autoscaled(spec: InferenceServiceSpec) -> bool:
    """Whether a revision gets an autoscaler (and its Deployment leaves replicas to it)."""
    return spec.autoscaling.max_replicas > spec.autoscaling.min_replicas


def build_autoscaler(ref: IsvcRef, spec: InferenceServiceSpec, revision: str, config: OperatorConfig) -> dict[str, Any]:
    """The HPA or ScaledObject NAME-REV that spec.autoscaling.engine asks for."""
    if spec.autoscaling.engine == AutoscalingEngine.keda:
        prometheus_url = spec.rollout.analysis.prometheus_url or config.prometheus_url
        return build_scaled_object(
            ref, spec.autoscaling, revision, prometheus_url, revision_selector(ref, revision, config)
        )
    return build_hpa(ref, spec.autoscaling, revision)


def build_hpa(ref: IsvcRef, autoscaling: Autoscaling, revision: str) -> dict[str, Any]:
    name = revision_child_name(ref, revision)
    hpa_spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": hpa_metrics(autoscaling),
    }
    if autoscaling.behavior:
        hpa_spec["behavior"] = copy.deepcopy(autoscaling.behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(ref, name, revision_labels(ref.name, revision)),
        "spec": hpa_spec,
    }


def hpa_metrics(autoscaling: Autoscaling) -> list[dict[str, Any]]:
    """The raw MetricSpecs, then one per shorthand; CPU at 80% when nothing is set."""
    metrics = [copy.deepcopy(dict(metric)) for metric in autoscaling.metrics]
    if autoscaling.cpu_utilization is not None:
        metrics.append(_cpu_metric(autoscaling.cpu_utilization))
    if autoscaling.gpu_utilization is not None:
        metrics.append(_pods_metric(GPU_UTILIZATION_METRIC, autoscaling.gpu_utilization))
    if autoscaling.queue_time_ms is not None:
        metrics.append(_pods_metric(QUEUE_TIME_METRIC, autoscaling.queue_time_ms))
    if autoscaling.inference_rate is not None:
        metrics.append(_pods_metric(INFERENCE_RATE_METRIC, autoscaling.inference_rate))
    return metrics or [_cpu_metric(DEFAULT_CPU_UTILIZATION)]


def build_scaled_object(
    ref: IsvcRef, autoscaling: Autoscaling, revision: str, prometheus_url: str, selector: str
) -> dict[str, Any]:
    name = revision_child_name(ref, revision)
    scaled_spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
    }
    if autoscaling.behavior:
        scaled_spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": copy.deepcopy(autoscaling.behavior)}}
    scaled_spec["triggers"] = keda_triggers(autoscaling, prometheus_url, selector)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": child_metadata(ref, name, revision_labels(ref.name, revision)),
        "spec": scaled_spec,
    }


def keda_triggers(autoscaling: Autoscaling, prometheus_url: str, selector: str) -> list[dict[str, Any]]:
    """KEDA triggers equivalent to hpa_metrics: resource triggers for CPU/memory, Prometheus for the rest.

    Per-pod averages (GPU utilisation, queue time) use metricType Value, so KEDA
    scales by the ratio to the target; the inference rate is a total and uses
    AverageValue, so KEDA divides it by the replica count.
    """
    triggers = [_keda_trigger_from_metric(metric) for metric in autoscaling.metrics]
    if autoscaling.cpu_utilization is not None:
        triggers.append(_keda_resource_trigger("cpu", "Utilization", autoscaling.cpu_utilization))
    if autoscaling.gpu_utilization is not None:
        # Triton's own gauge (0..1) carries the revision's pod labels; DCGM's series do not.
        query = f"avg(nv_gpu_utilization{{{selector}}}) * 100"
        triggers.append(_prometheus_trigger(prometheus_url, query, autoscaling.gpu_utilization, "Value"))
    if autoscaling.queue_time_ms is not None:
        # clamp_min: no traffic reads as 0 ms instead of 0/0; one request a minute is far above the floor.
        query = (
            f"sum(rate(nv_inference_queue_duration_us{{{selector}}}[1m])) / 1000"
            f" / clamp_min(sum(rate(nv_inference_request_success{{{selector}}}[1m])), 1e-9)"
        )
        triggers.append(_prometheus_trigger(prometheus_url, query, autoscaling.queue_time_ms, "Value"))
    if autoscaling.inference_rate is not None:
        query = f"sum(rate(nv_inference_count{{{selector}}}[1m]))"
        triggers.append(_prometheus_trigger(prometheus_url, query, autoscaling.inference_rate, "AverageValue"))
    return triggers or [_keda_resource_trigger("cpu", "Utilization", DEFAULT_CPU_UTILIZATION)]


def revision_selector(ref: IsvcRef, revision: str, config: OperatorConfig) -> str:
    """PromQL label matchers for the series of one revision's Triton pods, quoted like the analysis queries."""
    return label_matchers(
        ((config.label_namespace, ref.namespace), (config.label_isvc, ref.name), (config.label_revision, revision))
    )


def quantity(value: float) -> str:
    """A Kubernetes quantity: whole numbers plain, fractions in milli-units."""
    if value == int(value):
        return str(int(value))
    return f"{max(1, round(value * 1000))}m"


def _cpu_metric(utilization: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def _pods_metric(metric_name: str, average: float) -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": metric_name},
            "target": {"type": "AverageValue", "averageValue": quantity(average)},
        },
    }


def _keda_trigger_from_metric(metric: Mapping[str, Any]) -> dict[str, Any]:
    # The CRD and the models admit only these with engine keda; the error guards direct callers.
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    if metric.get("type") == "Resource" and resource.get("name") in KEDA_RESOURCE_TRIGGERS:
        if target.get("type") == "Utilization" and "averageUtilization" in target:
            return _keda_resource_trigger(resource["name"], "Utilization", target["averageUtilization"])
        if target.get("type") == "AverageValue" and "averageValue" in target:
            return _keda_resource_trigger(resource["name"], "AverageValue", target["averageValue"])
    raise BuildError(
        "UnsupportedKedaMetric",
        "autoscaling.metrics with engine keda supports only Resource cpu/memory metrics; "
        "use the shorthands or engine hpa for other metrics",
    )


def _keda_resource_trigger(resource: str, metric_type: str, value: float | str) -> dict[str, Any]:
    return {"type": resource, "metricType": metric_type, "metadata": {"value": _text(value)}}


def _prometheus_trigger(server: str, query: str, threshold: float, metric_type: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "metricType": metric_type,
        "metadata": {"serverAddress": server, "query": query, "threshold": _text(threshold)},
    }


def _text(value: float | str) -> str:
    """KEDA trigger metadata values are strings."""
    if isinstance(value, str):
        return value
    return str(int(value)) if value == int(value) else repr(float(value))
