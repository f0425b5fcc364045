"""The InferenceService v1alpha1 API as pydantic models: the one source of truth.

The CRD's OpenAPI schema is generated from these models (see ``api/crd.py``);
field descriptions become ``kubectl explain`` text, so they say what a field
does and what its default is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tritonop.api.kube_types import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    HOSTNAME,
    POD_EXTRAS_RULES,
    Affinity,
    ContainerItem,
    EnvVarItem,
    GpuResource,
    Hostname,
    HPABehavior,
    KeepOrder,
    LabelValue,
    LocalObjectReference,
    MetricSpecItem,
    ParentReference,
    PodSecurityContext,
    Quantity,
    ResourceRequirements,
    SecurityContextValue,
    TolerationItem,
    TopologySpreadConstraintItem,
    TritonProbes,
    VolumeItem,
    VolumeMount,
    cel,
    check_pod_extras,
)
from tritonop.durations import DURATION_MAX_LENGTH, DURATION_PATTERN, duration_nanos

STORAGE_URI_PATTERN = r"^(s3|gs|as|pvc|https?|file)://.+$"
# metadata.name becomes the Service NAME and the Services NAME-REVISION (10 hex characters):
# a DNS-1035 label (a letter first) of at most 63 characters leaves NAME 52.
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 52
HOSTNAME_BODY = HOSTNAME[1:-1]
# Ingress Prefix paths as the API server and ingress-nginx's strict path validation accept them:
# "/" or segments of letters, digits, _ and -, no empty, "." or ".." segments.
NGINX_PATH = r"^(/[A-Za-z0-9_-]+)*/?$"

# What one check, or a whole analysis, concluded.
Verdict = Literal["Pass", "Fail", "NoData", "Error"]


class Model(BaseModel):
    """Base for all API models: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optionals omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


@dataclass(frozen=True)
class DurationBounds:
    """A duration string's bounds, checked in the CRD (CEL) and here alike.

    The bounds keep every timer finite (no OverflowError adding a huge interval to a
    datetime) and keep 0s out where it means nothing or disables something.
    """

    minimum: str
    maximum: str
    exclusive_minimum: bool = False

    @property
    def message(self) -> str:
        above = "longer than" if self.exclusive_minimum else "at least"
        return f"must be {above} {self.minimum} and at most {self.maximum}"

    def field(self) -> Any:
        above = ">" if self.exclusive_minimum else ">="
        rule = f"duration(self) {above} duration('{self.minimum}') && duration(self) <= duration('{self.maximum}')"
        return Field(
            pattern=DURATION_PATTERN, max_length=DURATION_MAX_LENGTH, json_schema_extra=cel((rule, self.message))
        )

    def validator(self) -> AfterValidator:
        low, high = duration_nanos(self.minimum), duration_nanos(self.maximum)

        def check(text: str) -> str:
            nanos = duration_nanos(text)
            if (nanos <= low if self.exclusive_minimum else nanos < low) or nanos > high:
                raise ValueError(f"{self.message}, got {text}")
            return text

        return AfterValidator(check)


INTERVAL = DurationBounds("1s", "24h")
READINESS_TIMEOUT = DurationBounds("1s", "24h")
NO_DATA_TIMEOUT = DurationBounds("0s", "24h")
ACCEPTANCE_TIMEOUT = DurationBounds("0s", "5m", exclusive_minimum=True)
IntervalDuration = Annotated[str, INTERVAL.field(), INTERVAL.validator()]
ReadinessDuration = Annotated[str, READINESS_TIMEOUT.field(), READINESS_TIMEOUT.validator()]
NoDataDuration = Annotated[str, NO_DATA_TIMEOUT.field(), NO_DATA_TIMEOUT.validator()]
AcceptanceTimeout = Annotated[str, ACCEPTANCE_TIMEOUT.field(), ACCEPTANCE_TIMEOUT.validator()]


# ---------------------------------------------------------------- spec: model

MODEL_NAME = r"^[A-Za-z0-9_.-]+$"
# model.models: "*" stands for every model in the repository (tritonserver's --load-model=*).
ALL_MODELS = "*"
ServedModelName = Annotated[str, Field(max_length=128, pattern=r"^([A-Za-z0-9_.-]+|\*)$")]
# Cross-field rules of model.models, checked by the CRD's CEL rules (api/crd.py) and here alike.
MODELS_NOT_WITH_NAME = "model.models and model.name are exclusive: list the model in models, or name it in name"
MODELS_NOT_WITH_VERSION = (
    "model.version pins one model; with model.models pin each model's versions in its config.pbtxt (version_policy)"
)
ALL_MODELS_ALONE = 'model.models: "*" (every model in the repository) stands alone'
MODELS_DISTINCT = "model.models must name each model once"
CASE_MODEL_REQUIRED = "rollout.acceptance.cases[].model is required when model.models serves several models"


class ModelSource(Model):
    name: str | None = Field(
        None,
        max_length=128,
        pattern=MODEL_NAME,
        description="Triton model name (the folder in the model repository). Not with models. Default: metadata.name.",
    )
    models: list[ServedModelName] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description=(
            'Serve several models of the repository instead of one, e.g. [preprocess, resnet, ensemble], or ["*"] '
            'for every model in it; 1..64 distinct names, "*" alone. Each is loaded (--load-model), must be '
            "ready (an ensemble's composing models too), is judged by the analysis and reported in status.models. "
            "Not with name or version: pin versions in each model's config.pbtxt (version_policy). See "
            "docs/models.md. Default: one model (name)."
        ),
    )
    storage_uri: str = Field(
        ...,
        max_length=2048,
        pattern=STORAGE_URI_PATTERN,
        description=(
            "Where the Triton model repository lives. s3://, gs://, as:// are read by Triton natively; "
            "pvc://CLAIM/path mounts the claim read-only; http(s):// fetches a .tar.gz/.zip archive "
            "with an init container; file:// is a path on the node (local development only)."
        ),
    )
    version: str | None = Field(
        None,
        max_length=20,
        pattern=r"^[0-9]+$",
        description="Pin one model version; not with models. Default: Triton's version policy (the latest).",
    )
    storage_secret_name: str | None = Field(
        None,
        max_length=253,
        pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description=(
            "Secret in the same namespace with storage credentials. s3:// and as://: every key becomes "
            "an environment variable of the Triton container (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_DEFAULT_REGION, AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY); gs://: the Secret is mounted and "
            "its key credentials.json is GOOGLE_APPLICATION_CREDENTIALS. Never copied into status or logs."
        ),
    )

    @model_validator(mode="after")
    def _several_models(self) -> ModelSource:
        if self.models is None:
            return self
        if self.name is not None:
            raise ValueError(MODELS_NOT_WITH_NAME)
        if self.version is not None:
            raise ValueError(MODELS_NOT_WITH_VERSION)
        if ALL_MODELS in self.models and len(self.models) > 1:
            raise ValueError(ALL_MODELS_ALONE)
        if len(set(self.models)) != len(self.models):
            raise ValueError(MODELS_DISTINCT)
        return self

    @property
    def several(self) -> bool:
        """Whether more than one model may be served: several listed, or every model ("*")."""
        return self.models is not None and (len(self.models) > 1 or self.models[0] == ALL_MODELS)


# ---------------------------------------------------------------- spec: triton


class ModelControlMode(str, Enum):
    explicit = "explicit"
    poll = "poll"
    none = "none"


# TritonRuntime fields added after revisions were first hashed: left out of the wire form while
# at their default, so a spec that does not use them keeps its revision (no roll on upgrade).
POD_SETTINGS_OMITTED_AT_DEFAULT = (
    "gpu_resource",
    "runtime_class_name",
    "priority_class_name",
    "topology_spread_constraints",
    "termination_grace_period_seconds",
    "volumes",
    "volume_mounts",
    "init_containers",
    "sidecars",
    "probes",
    "pod_security_context",
    "security_context",
)


class TritonRuntime(Model):
    model_config = ConfigDict(json_schema_extra=cel(*POD_EXTRAS_RULES))

    image: str | None = Field(
        None,
        max_length=512,
        pattern=r"^\S+$",
        description="tritonserver image. Default: the operator's --triton-image setting.",
    )
    gpus: int = Field(
        1, ge=0, le=64, description="GPUs (of gpuResource) per pod, 0..64; 0 runs Triton on CPU. Default: 1."
    )
    gpu_resource: GpuResource = Field(
        "nvidia.com/gpu",
        description="Extended resource gpus counts, set in the Triton container's limits and requests: "
        "nvidia.com/gpu, a MIG slice such as nvidia.com/mig-1g.10gb, amd.com/gpu. See docs/gpus.md. "
        "Default: nvidia.com/gpu.",
    )
    resources: Annotated[ResourceRequirements, KeepOrder] = Field(
        default_factory=ResourceRequirements,
        description="Triton container resources: requests and limits, each a map of resource name to quantity "
        "(cpu in cores: 2, 500m; memory in bytes: 8Gi). gpuResource is set from gpus. Default: none.",
    )
    args: list[str] = Field(
        default_factory=list, max_length=64, description="Extra tritonserver flags, appended last. Default: none."
    )
    env: Annotated[list[EnvVarItem], KeepOrder] = Field(
        default_factory=list,
        max_length=128,
        description="Extra container env vars: each a name with a value or a valueFrom (configMapKeyRef, "
        "secretKeyRef, fieldRef or resourceFieldRef). Default: none.",
    )
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Pod nodeSelector: node label key to value; Triton pods run only on nodes with all these "
        "labels. Default: any node.",
    )
    tolerations: Annotated[list[TolerationItem], KeepOrder] = Field(
        default_factory=list,
        max_length=32,
        description="Pod tolerations: taints of nodes Triton pods may run on. When gpus > 0 a toleration for "
        "the GPU taint is added: nvidia.com/gpu:NoSchedule for nvidia.com resources, else gpuResource:NoSchedule.",
    )
    affinity: Annotated[Affinity, KeepOrder] = Field(
        default_factory=Affinity,
        description="Pod scheduling constraints: nodeAffinity, podAffinity, podAntiAffinity. Default: none.",
    )
    runtime_class_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Pod runtimeClassName: the RuntimeClass (container runtime handler) Triton pods run with, "
        "e.g. nvidia on k3s and RKE2 GPU nodes. Default: the cluster's default runtime.",
    )
    priority_class_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Pod priorityClassName: the PriorityClass of Triton pods (which pods are preempted first). "
        "Default: the cluster's default priority.",
    )
    topology_spread_constraints: Annotated[list[TopologySpreadConstraintItem], KeepOrder] = Field(
        default_factory=list,
        max_length=8,
        description="Pod topologySpreadConstraints: how a revision's pods spread over zones or nodes. A "
        "constraint without labelSelector counts the pods of its own revision. Default: none.",
    )
    service_account_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount the Triton pods run as. Default: the namespace's default ServiceAccount.",
    )
    image_pull_secrets: Annotated[list[LocalObjectReference], KeepOrder] = Field(
        default_factory=list,
        max_length=16,
        description="Secrets for pulling the tritonserver image, each {name: SECRET}. Default: none.",
    )
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Extra labels on Triton pods. Default: none."
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra annotations on Triton pods. Default: none."
    )
    shm_size: str = Field(
        "1Gi",
        max_length=16,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description="Size of the memory-backed /dev/shm in bytes, a quantity (Python backend and ensembles "
        "need it). Default: 1Gi.",
    )
    model_control_mode: ModelControlMode = Field(
        ModelControlMode.explicit,
        description=(
            "tritonserver --model-control-mode. explicit loads exactly this model (and pinned version) at "
            "start; poll loads every model in the repository and reloads on change; none loads every model "
            "once. Default: explicit."
        ),
    )
    strict_readiness: bool = Field(
        True, description="--strict-readiness: ready only when every loaded model is ready. Default: true."
    )
    summary_latencies: bool = Field(
        False,
        description="Export latency summaries (quantiles) with --metrics-config summary_latencies=true; "
        "needed for latency.quantile checks. Default: false.",
    )
    termination_grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=86400,
        description="Pod terminationGracePeriodSeconds: seconds Triton has to finish in-flight requests after "
        "SIGTERM, 0..86400. Default: Kubernetes' 30.",
    )
    volumes: Annotated[list[VolumeItem], KeepOrder] = Field(
        default_factory=list,
        max_length=32,
        description="Extra pod volumes (emptyDir, configMap, secret, persistentVolumeClaim or csi), for "
        "volumeMounts of the Triton container, initContainers and sidecars. Names must be unique and not "
        "the operator's own (dshm, tmp, model-repository, storage-credentials). Default: none.",
    )
    volume_mounts: Annotated[list[VolumeMount], KeepOrder] = Field(
        default_factory=list,
        max_length=32,
        description="Extra volumeMounts of the Triton container, each naming one of volumes, at a path other "
        "than the operator's own (/dev/shm, /tmp, /mnt/models, /var/run/secrets/tritonop/storage). Default: none.",
    )
    init_containers: Annotated[list[ContainerItem], KeepOrder] = Field(
        default_factory=list,
        max_length=8,
        description="Extra init containers, run in order after the operator's own (fetch-model, for http(s) "
        "storage). One without a securityContext gets the Triton container's. Default: none.",
    )
    sidecars: Annotated[list[ContainerItem], KeepOrder] = Field(
        default_factory=list,
        max_length=8,
        description="Extra containers beside Triton in every pod. One without a securityContext gets the "
        "Triton container's. Default: none.",
    )
    probes: Annotated[TritonProbes, KeepOrder] = Field(
        default_factory=TritonProbes,
        description="Timing of the Triton container's startup, readiness and liveness probes "
        "(initialDelaySeconds, periodSeconds, timeoutSeconds, failureThreshold); what each probe asks "
        "stays the operator's. Default: the operator's timing (docs/gpus.md).",
    )
    pod_security_context: Annotated[PodSecurityContext, KeepOrder] | None = Field(
        None,
        description="Pod securityContext, replacing the operator's (runAsNonRoot, runAsUser, runAsGroup and "
        "fsGroup 1000, seccomp RuntimeDefault). Must keep the pod within Pod Security restricted unless the "
        "operator runs with --allow-unrestricted-security-context (docs/gpus.md). Default: the operator's.",
    )
    security_context: Annotated[SecurityContextValue, KeepOrder] | None = Field(
        None,
        description="Triton container securityContext, replacing the operator's (runAsNonRoot, runAsUser 1000, "
        "no privilege escalation, capabilities drop ALL, read-only root, seccomp RuntimeDefault); also given "
        "to init containers and sidecars that set none. Restricted as podSecurityContext. Default: the operator's.",
    )

    @model_validator(mode="after")
    def _pod_extras(self) -> TritonRuntime:
        check_pod_extras(
            self.volumes, self.volume_mounts, self.init_containers, self.sidecars, self.topology_spread_constraints
        )
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_pod_settings(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        for name, default in _pod_setting_defaults().items():
            if getattr(self, name) == default:
                field = fields[name]
                data.pop((field.alias or name) if info.by_alias else name, None)
        return data


@functools.cache
def _pod_setting_defaults() -> dict[str, Any]:
    """Each omitted-at-default pod setting's default, computed once: pydantic's get_default
    inspects the factory's signature on every call, which was 16% of the operator's CPU at
    10,000 objects (the revision hash dumps triton on every pass). Only ever compared with."""
    fields = TritonRuntime.model_fields
    return {name: fields[name].get_default(call_default_factory=True) for name in POD_SETTINGS_OMITTED_AT_DEFAULT}


# ---------------------------------------------------------------- spec: autoscaling


class AutoscalingEngine(str, Enum):
    hpa = "hpa"
    keda = "keda"


class Autoscaling(Model):
    engine: AutoscalingEngine = Field(
        AutoscalingEngine.hpa,
        description="hpa (an autoscaling/v2 HorizontalPodAutoscaler) or keda (a KEDA ScaledObject "
        "with Prometheus triggers; KEDA creates the HPA itself). Default: hpa.",
    )
    min_replicas: int = Field(1, ge=1, le=1000, description="Minimum replicas per revision; 1..1000. Default: 1.")
    max_replicas: int = Field(
        1, ge=1, le=1000, description="Maximum replicas per revision; 1..1000. Default: 1 (no scaling)."
    )
    cpu_utilization: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Shorthand: target average CPU utilisation in percent of requests; 1..1000. Default: none.",
    )
    gpu_utilization: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Shorthand: target average GPU utilisation in percent, 1..100 (DCGM_FI_DEV_GPU_UTIL, a Pods "
        "metric served by prometheus-adapter, or a KEDA Prometheus trigger). Default: none.",
    )
    queue_time_ms: float | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="Shorthand: target average Triton queue time per request in milliseconds "
        "(ms, from nv_inference_queue_duration_us). Default: none.",
    )
    inference_rate: float | None = Field(
        None,
        gt=0,
        le=1_000_000_000,
        description="Shorthand: target inferences per second per pod (from nv_inference_count). Default: none.",
    )
    metrics: Annotated[list[MetricSpecItem], KeepOrder] = Field(
        default_factory=list,
        max_length=16,
        description="autoscaling/v2 MetricSpec entries, added to the HPA's metrics. With engine keda only "
        "Resource cpu or memory metrics (targets Utilization or AverageValue) can be expressed. Default: none.",
    )
    behavior: Annotated[HPABehavior, KeepOrder] = Field(
        default_factory=HPABehavior,
        description="autoscaling/v2 HPA behavior (scaleUp, scaleDown). Default: Kubernetes' scaling rules.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas})")
        return self

    @model_validator(mode="after")
    def _keda_metrics(self) -> Autoscaling:
        if self.engine == AutoscalingEngine.keda and not all(_keda_expressible(m) for m in self.metrics):
            raise ValueError(KEDA_METRICS_MESSAGE)
        return self


# KEDA turns Resource cpu/memory metrics into its cpu/memory triggers; it has no trigger for the rest.
KEDA_METRICS_RULE = (
    "!has(self.engine) || self.engine != 'keda' || !has(self.metrics) || self.metrics.all(m, "
    "m.type == 'Resource' && has(m.resource) && m.resource.name in ['cpu', 'memory'] "
    "&& m.resource.target.type in ['Utilization', 'AverageValue'])"
)
KEDA_METRICS_MESSAGE = (
    "autoscaling.metrics with engine keda takes only Resource cpu or memory metrics (Utilization or "
    "AverageValue); use the shorthands or engine hpa for other metrics"
)


def _keda_expressible(metric: Any) -> bool:
    resource = metric.get("resource") or {}
    return (
        metric["type"] == "Resource"
        and resource.get("name") in ("cpu", "memory")
        and resource["target"]["type"] in ("Utilization", "AverageValue")
    )


# ---------------------------------------------------------------- spec: rollout


class SuccessRateCheck(Model):
    enabled: bool = Field(True, description="false turns the built-in success-rate check off. Default: true.")
    min: float = Field(
        0.99, ge=0, le=1, description="Lowest acceptable share of successful requests, a ratio 0..1. Default: 0.99."
    )


class LatencyCheck(Model):
    max_ms: float = Field(..., gt=0, description="Highest acceptable request latency in milliseconds (ms), above 0.")
    quantile: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Judge this quantile, a ratio strictly between 0 and 1 (e.g. 0.99), from Triton's latency summaries (needs "
        "triton.summaryLatencies). Default: the mean request duration.",
    )


class ComparativeCheck(Model):
    max_success_rate_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fail when canary success rate < stable success rate minus this, a ratio 0..1 (0.01 is one "
        "percentage point). Default: not compared.",
    )
    max_latency_increase_percent: float | None = Field(
        None,
        ge=0,
        description="Fail when canary mean latency > stable mean latency by more than this, in percent (10 is "
        "10% slower). Default: not compared.",
    )


# Binary and decimal suffixes of a Kubernetes quantity (kube_types.QUANTITY_PATTERN), as multipliers.
QUANTITY_SUFFIXES = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    **{"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)},
}


def quantity_value(quantity: int | str) -> float:
    """A valid quantity (kube_types.Quantity) as a number: 20Gi -> 21474836480.0, 16G -> 16e9, 500m -> 0.5."""
    text = str(quantity)
    number = text.rstrip("KMGTPEikmnu")  # the pattern allows one suffix after the digits
    return float(Decimal(number) * QUANTITY_SUFFIXES[text[len(number) :]])


GPU_MEMORY_BOUND_MESSAGE = "gpuMemory needs maxBytes or maxIncreasePercent"


class GpuMemoryCheck(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.maxBytes) || has(self.maxIncreasePercent)", GPU_MEMORY_BOUND_MESSAGE),
            (
                "!has(self.maxBytes) || (type(self.maxBytes) == string ? "
                "!self.maxBytes.matches('^0+(\\\\.0+)?([KMGTPE]i|[numkMGTPE])?$') : self.maxBytes > 0)",
                "gpuMemory.maxBytes must be above 0",
            ),
        )
    )

    max_bytes: Quantity | None = Field(
        None,
        description="Most GPU memory one canary pod may use, summed over its GPUs (Triton's "
        "nv_gpu_memory_used_bytes), in bytes: a whole number or a quantity such as 20Gi or 16G, above 0. The "
        "worst pod counts. Default: no maximum.",
    )
    max_increase_percent: float | None = Field(
        None,
        ge=0,
        description="Fail when the canary's per-pod GPU memory (its worst pod) exceeds the stable's (its worst "
        "pod) by more than this, in percent (10 is 10% more). Default: not compared.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> GpuMemoryCheck:
        if self.max_bytes is None and self.max_increase_percent is None:
            raise ValueError(GPU_MEMORY_BOUND_MESSAGE)
        if self.max_bytes is not None and quantity_value(self.max_bytes) <= 0:
            raise ValueError(f"gpuMemory.maxBytes must be above 0, got {self.max_bytes}")
        return self

    @property
    def max_bytes_value(self) -> float | None:
        """maxBytes in bytes, or None when unset."""
        return None if self.max_bytes is None else quantity_value(self.max_bytes)


class CustomCheck(Model):
    name: str = Field(..., max_length=63, pattern=DNS_LABEL, description="Check name (a DNS label), shown in status.")
    query: str = Field(
        ...,
        max_length=4096,
        description="PromQL returning one number (aggregate with sum/max/avg). {{selector}} expands to the "
        "revision's label matchers without braces: write metric{ {{selector}} } or add matchers, "
        'metric{ {{selector}}, reason="BACKEND" }. {{interval}} is the analysis window as a Prometheus '
        "duration (e.g. 60s). {{namespace}}, {{name}}, {{revision}}, {{model}} are raw values for use "
        "inside quotes. An unknown placeholder makes the check an Error.",
    )
    min: float | None = Field(
        None, description="Fail when the value is below this, in the query's unit. Default: no lower bound."
    )
    max: float | None = Field(
        None, description="Fail when the value is above this, in the query's unit. Default: no upper bound."
    )

    @model_validator(mode="after")
    def _has_bound(self) -> CustomCheck:
        if self.min is None and self.max is None:
            raise ValueError(f"check {self.name!r} needs min or max")
        return self


class AnalysisMode(str, Enum):
    sequential = "sequential"
    interval = "interval"


class AnalysisSource(str, Enum):
    auto = "auto"
    prometheus = "prometheus"
    direct = "direct"


class Analysis(Model):
    mode: AnalysisMode = Field(
        AnalysisMode.sequential,
        description="sequential: the built-in checks are judged on every tick by an always-valid sequential "
        "test and a canary conclusively worse than a bound is rolled back at once, whatever failureThreshold; "
        "a step still lasts interval and passes with at least minRequests requests and no conclusive failure. "
        "interval: judged once per interval, rolled back after failureThreshold failed analyses. Custom checks "
        "are judged once per interval in both. Default: sequential.",
    )
    source: AnalysisSource = Field(
        AnalysisSource.auto,
        description="Where the built-in checks read requests, failures and latencies. direct: Triton's own "
        "metrics endpoint (port 8002) on every canary and stable pod, about once a tick; prometheus: "
        "PromQL over interval (the only source of custom checks); auto: direct while every pod answers, "
        "else prometheus for that analysis. The source that judged is in status.canary.lastAnalysis. "
        "Sequential judging needs direct; with prometheus it judges per interval. Default: auto.",
    )
    alpha: float = Field(
        0.001,
        gt=0,
        le=0.5,
        description="Sequential mode: the false-rollback rate, the highest probability that a canary within "
        "all its bounds is rolled back, a ratio above 0 and at most 0.5, split evenly over the sequential "
        "checks. Default: 0.001.",
    )
    prometheus_url: str | None = Field(
        None,
        max_length=1024,
        pattern=r"^https?://\S+$",
        description="Prometheus base URL (http:// or https://); must be one the operator allows. Default: the "
        "operator's --prometheus-url.",
    )
    # None means off. On the wire that is {enabled: false}: the API server drops nulls, so
    # `successRate: null` keeps the default check, here as in a cluster.
    success_rate: SuccessRateCheck | None = Field(
        default_factory=SuccessRateCheck,
        description="Built-in success-rate check; {enabled: false} turns it off. Default: on, min 0.99.",
    )
    latency: LatencyCheck | None = Field(None, description="Built-in latency check. Default: off.")
    comparative: ComparativeCheck | None = Field(
        None, description="Judge the canary against the stable revision over the same window. Default: off."
    )
    gpu_memory: GpuMemoryCheck | None = Field(
        None,
        description="Judge the canary's GPU memory per pod, against a maximum and/or against the stable's; needs "
        "triton.gpus above 0. Default: off.",
    )
    checks: list[CustomCheck] = Field(
        default_factory=list, max_length=16, description="Custom PromQL checks, at most 16. Default: none."
    )
    min_requests: int = Field(
        20,
        ge=0,
        le=1_000_000_000,
        description="Fewer canary requests than this in the window means no data, not a verdict. Default: 20.",
    )
    no_data_timeout: NoDataDuration = Field(
        "5m",
        description="How long analysis may see no data (Prometheus down, query errors, too few requests) "
        "before each further no-data analysis counts as a failed check; a duration, 0s..24h. Default: 5m.",
    )

    @field_validator("success_rate")
    @classmethod
    def _success_rate_off(cls, check: SuccessRateCheck | None) -> SuccessRateCheck | None:
        return check if check is None or check.enabled else None

    @model_serializer(mode="wrap")
    def _dump_off_checks(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.success_rate is None:
            data["successRate" if info.by_alias else "success_rate"] = {"enabled": False}
        return data


class AcceptanceTensor(Model):
    name: str = Field(..., max_length=128, description="Input tensor name, as in the model's config.")
    datatype: str = Field(
        ...,
        pattern=r"^(BOOL|UINT8|UINT16|UINT32|UINT64|INT8|INT16|INT32|INT64|FP16|FP32|FP64|BYTES)$",
        description="Triton datatype: BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64 or BYTES.",
    )
    shape: list[Annotated[int, Field(ge=-1, le=1_000_000_000)]] = Field(
        ..., max_length=8, description="Tensor shape, at most 8 dimensions, batch dimension included."
    )
    data: list[Any] = Field(..., description="Flat row-major values.")


class AcceptanceOutput(Model):
    name: str = Field(..., max_length=128, description="Output tensor name, as in the model's config.")
    data: list[Any] = Field(..., description="Expected flat row-major values.")
    tolerance: float = Field(
        0.0, ge=0, description="Absolute tolerance for numeric outputs, in the output's unit. Default: 0."
    )


class AcceptanceCase(Model):
    name: str = Field(..., max_length=63, pattern=DNS_LABEL, description="Case name (a DNS label), shown in status.")
    model: str | None = Field(
        None,
        max_length=128,
        pattern=MODEL_NAME,
        description="The model the request is sent to, e.g. an ensemble: any model the revision serves (an "
        "ensemble's composing models too). Required when model.models serves several models. Default: the one "
        "model served.",
    )
    inputs: list[AcceptanceTensor] = Field(
        ..., min_length=1, max_length=16, description="Input tensors of one inference request, 1..16."
    )
    outputs: list[AcceptanceOutput] = Field(
        default_factory=list,
        max_length=16,
        description="Outputs to compare with the response. Default: none (the request must only succeed).",
    )


class Acceptance(Model):
    cases: list[AcceptanceCase] = Field(
        ..., min_length=1, max_length=16, description="Inference requests, 1..16; each must pass."
    )
    timeout: AcceptanceTimeout = Field(
        "30s", description="Per-request timeout, a duration longer than 0s and at most 5m. Default: 30s."
    )


# rollout.strategy InPlace's cross-field rules (checked at admission too: api/crd.py).
IN_PLACE_VERSION = "rollout.strategy InPlace needs model.version: the version it switches the pods to"
IN_PLACE_EXPLICIT = "rollout.strategy InPlace needs triton.modelControlMode explicit: it loads versions"
IN_PLACE_SHADOW = "rollout.shadow needs strategy Canary: an in-place switch has no route to mirror from"
IN_PLACE_ANALYSIS = (
    "rollout.strategy InPlace judges its canary pod on Triton's own metrics (per pod and version): "
    "analysis.source prometheus, custom checks and latency.quantile need strategy Canary"
)


class RolloutStrategy(str, Enum):
    canary = "Canary"
    in_place = "InPlace"
    experiment = "Experiment"


class Shadow(Model):
    percent: int = Field(
        ...,
        ge=1,
        le=100,
        description="Share of live requests copied to the canary, 1..100; clients get the stable's answers.",
    )
    duration: IntervalDuration = Field(
        ..., description="How long the canary is judged on mirrored requests alone, a duration; 1s..24h."
    )


# rollout.strategy Experiment's cross-field rules (checked at admission too: api/crd.py).
EXPERIMENT_NEEDS_SETTINGS = "rollout.strategy Experiment needs rollout.experiment (weight, duration)"
EXPERIMENT_SETTINGS_ONLY = "rollout.experiment needs rollout.strategy Experiment"
EXPERIMENT_NO_STEPS = "rollout.steps do not apply to strategy Experiment: its one split is rollout.experiment.weight"
EXPERIMENT_METRICS_DISTINCT = "rollout.experiment.metrics must name each metric once"
EXPERIMENT_ONE_MODEL = (
    "rollout.strategy Experiment reports one model's figures: list model.models (the first is compared) instead of *"
)
EXPERIMENT_VARIANTS_DISTINCT = "rollout.experiment.variants must each have their own name"
EXPERIMENT_VARIANT_WEIGHTS = (
    "rollout.experiment.weight and the variants' weights must add up to 99 at most: A keeps a share"
)
EXPERIMENT_VARIANT_CHANGES = "each rollout.experiment.variants entry must set model.storageUri, model.version or image"
EXPERIMENT_VARIANTS_NEED_SPLIT = (
    "rollout.experiment.variants need a provider that splits traffic more than two ways: gateway-api, istio "
    "or service (nginx has one canary Ingress)"
)
EXPERIMENT_VARIANT_VERSION = "rollout.experiment.variants[].model.version pins one model: not with model.models"
EXPERIMENT_DURATION = DurationBounds("1s", "720h")
ExperimentDuration = Annotated[str, EXPERIMENT_DURATION.field(), EXPERIMENT_DURATION.validator()]


class ExperimentMetric(Model):
    name: str = Field(
        ..., max_length=63, pattern=DNS_LABEL, description="Metric name (a DNS label), the key in status."
    )
    query: str = Field(
        ...,
        max_length=4096,
        description="PromQL returning one number, run once per variant (aggregate with sum/max/avg), with "
        "the placeholders of analysis.checks[].query: {{selector}} is the variant's label matchers, "
        "{{revision}} its revision, and {{interval}} the experiment's window so far as a Prometheus duration. "
        "An unknown placeholder leaves the metric out of status with the reason in status.experiment.message.",
    )


class VariantModel(Model):
    storage_uri: str | None = Field(
        None,
        max_length=2048,
        pattern=STORAGE_URI_PATTERN,
        description="The variant's model repository instead of model.storageUri (same schemes). Default: the spec's.",
    )
    version: str | None = Field(
        None,
        max_length=20,
        pattern=r"^[0-9]+$",
        description="The variant's pinned model version instead of model.version. Default: the spec's.",
    )


class ExperimentArm(Model):
    name: str = Field(
        ...,
        max_length=20,
        pattern=DNS_LABEL,
        description="The variant's name (a DNS label; A and B are the stable and the spec's revision), "
        "its key in status.experiment.variants.",
    )
    weight: int = Field(..., ge=1, le=98, description="The variant's share of the traffic in percent, 1..98.")
    model: VariantModel = Field(
        default_factory=VariantModel,
        description="What the variant serves instead of the spec's model: storageUri and/or version.",
    )
    image: str | None = Field(
        None, max_length=512, pattern=r"^\S+$", description="The variant's tritonserver image. Default: the spec's."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> ExperimentArm:
        if self.model.storage_uri is None and self.model.version is None and self.image is None:
            raise ValueError(EXPERIMENT_VARIANT_CHANGES)
        return self


class Experiment(Model):
    weight: int = Field(
        50,
        ge=1,
        le=99,
        description="Variant B's share of the traffic in percent, 1..99; A serves the rest. Default: 50.",
    )
    variants: list[ExperimentArm] = Field(
        default_factory=list,
        max_length=3,
        description="Variants beyond B (A/B/n), at most 3: each is the spec with its own model.storageUri, "
        "model.version or image, runs as its own revision at its own weight once B gets its weight, is "
        "judged by the analysis like B (one that fails is stopped, the experiment goes on), and is reported "
        "in status.experiment; the promote annotation naming its revision picks it. Needs provider "
        "gateway-api, istio or service. Default: none (A/B).",
    )
    duration: ExperimentDuration = Field(
        ...,
        description="How long the split is held before the experiment concludes (it is never promoted on its "
        "own), a duration; 1s..720h.",
    )
    metrics: list[ExperimentMetric] = Field(
        default_factory=list,
        max_length=16,
        description="Custom per-variant PromQL figures (e.g. a business KPI), at most 16, reported in "
        "status.experiment for each variant; not judged. Default: none.",
    )

    @field_validator("metrics")
    @classmethod
    def _distinct(cls, metrics: list[ExperimentMetric]) -> list[ExperimentMetric]:
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise ValueError(EXPERIMENT_METRICS_DISTINCT)
        return metrics

    @model_validator(mode="after")
    def _variants(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(EXPERIMENT_VARIANTS_DISTINCT)
        if self.weight + sum(v.weight for v in self.variants) > 99:
            raise ValueError(EXPERIMENT_VARIANT_WEIGHTS)
        return self


class Rollout(Model):
    strategy: RolloutStrategy = Field(
        RolloutStrategy.canary,
        description=(
            "Canary: every new revision runs as new pods next to the stable ones, with a growing share of "
            "traffic. InPlace: a change of only model.version loads the new version next to the old one in "
            "the running pods (Triton's repository API; needs modelControlMode explicit and model.version), "
            "runs acceptance against it, judges one pod as the canary step, then switches the rest pod by "
            "pod; no new pods, no extra GPUs. Other changes still roll out as a canary. Experiment: the new "
            "revision (B) gets rollout.experiment.weight of the traffic beside the stable (A) for "
            "rollout.experiment.duration, is never promoted on its own, and status.experiment reports both "
            "variants' figures; the promote annotation picks B, the abort annotation A; a B that fails its "
            "checks is still rolled back. See docs/rollout.md. Default: Canary."
        ),
    )
    steps: list[Annotated[int, Field(ge=1, le=99)]] = Field(
        default_factory=lambda: [10, 25, 50],
        max_length=20,
        description="Canary traffic percent per step, strictly increasing in 1..99; after the last "
        "step passes, the canary is promoted to 100%. Default: [10, 25, 50].",
    )
    interval: IntervalDuration = Field(
        "1m", description="Analysis period per step, a duration (e.g. 30s, 5m); 1s..24h. Default: 1m."
    )
    failure_threshold: int = Field(3, ge=1, le=100, description="Failed checks before rollback; 1..100. Default: 3.")
    paused: bool = Field(False, description="Hold the canary at its current weight. Default: false.")
    readiness_timeout: ReadinessDuration = Field(
        "10m",
        description="Deadline for a new revision's Triton to be ready with the model loaded before the "
        "rollout fails; a duration, 1s..24h. Default: 10m.",
    )
    analysis: Analysis = Field(
        default_factory=Analysis, description="How each step is judged. Default: the success-rate check only."
    )
    acceptance: Acceptance | None = Field(
        None, description="Sample inferences sent to the canary before it gets traffic. Default: none."
    )
    shadow: Shadow | None = Field(
        None,
        description=(
            "A shadow phase after the gate and before the first step: a share of live requests is "
            "mirrored to the canary, whose answers reach no client; it is judged on its own errors and "
            "latency as in a step, and a failing shadow rolls back before any user was served. Needs a "
            "provider that mirrors (gateway-api, istio, nginx). Default: none."
        ),
    )
    experiment: Experiment | None = Field(
        None,
        description="The A/B experiment of strategy Experiment: B's fixed weight, how long, and custom "
        "per-variant metrics; required with that strategy and refused with the others. Default: none.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= s <= 99 for s in steps):
            raise ValueError("rollout.steps must each be within 1..99")
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError("rollout.steps must be strictly increasing")
        return steps

    @model_validator(mode="after")
    def _experiment(self) -> Rollout:
        experiment = self.strategy == RolloutStrategy.experiment
        if experiment and self.experiment is None:
            raise ValueError(EXPERIMENT_NEEDS_SETTINGS)
        if not experiment and self.experiment is not None:
            raise ValueError(EXPERIMENT_SETTINGS_ONLY)
        if experiment and "steps" in self.model_fields_set:
            raise ValueError(EXPERIMENT_NO_STEPS)
        return self


# ---------------------------------------------------------------- spec: traffic


class TrafficProvider(str, Enum):
    gateway_api = "gateway-api"
    istio = "istio"
    nginx = "nginx"
    service = "service"


class GatewayRouting(Model):
    parent_refs: Annotated[list[ParentReference], KeepOrder] = Field(
        default_factory=list,
        max_length=16,
        description="HTTPRoute parentRefs (the Gateway(s)): each needs a name; group, kind, namespace, "
        "sectionName and port are optional.",
    )
    hostnames: list[Hostname] = Field(
        default_factory=list,
        max_length=16,
        description="Route hostnames: DNS names, optionally *.wildcard. Default: the Gateway listeners' hostnames.",
    )
    grpc: bool = Field(
        False, description="Also route Triton gRPC with a GRPCRoute with the same weights. Default: false."
    )


ISTIO_HOST = r"^(\*|" + HOSTNAME_BODY + r")$"
ISTIO_GATEWAY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?" + DNS_SUBDOMAIN[1:]
IstioHost = Annotated[str, Field(min_length=1, max_length=253, pattern=ISTIO_HOST)]
IstioGateway = Annotated[str, Field(min_length=1, max_length=317, pattern=ISTIO_GATEWAY)]


class IstioRouting(Model):
    hosts: list[IstioHost] = Field(
        default_factory=list,
        max_length=16,
        description="VirtualService hosts: DNS names, optionally *.wildcard, or *. Default: the entry Service.",
    )
    gateways: list[IstioGateway] = Field(
        default_factory=list,
        max_length=16,
        description="VirtualService gateways: [NAMESPACE/]NAME or mesh. Default: mesh (in-mesh traffic only).",
    )


class NginxRouting(Model):
    host: Hostname = Field(..., description="Ingress host: a DNS name, optionally *.wildcard.")
    ingress_class_name: str = Field(
        "nginx", max_length=253, pattern=DNS_SUBDOMAIN, description="IngressClass of the Ingress. Default: nginx."
    )
    path: str = Field(
        "/",
        min_length=1,
        max_length=1024,
        pattern=NGINX_PATH,
        description="Ingress path prefix: / or /-separated segments of letters, digits, _ and -. Default: /.",
    )


# Header names every provider matches alike: Istio matches lowercase keys only, and
# ingress-nginx drops names with "_" by default. Values: printable ASCII, no edge spaces.
HEADER_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_VALUE = r"^[!-~]([ -~]*[!-~])?$"
# Cookie names and values that need no quoting in a Cookie header (RFC 6265 tokens, a subset).
COOKIE_NAME = r"^[A-Za-z0-9_-]+$"
COOKIE_VALUE = r"^[A-Za-z0-9_.-]+$"
SESSION_MAX_AGE = DurationBounds("1s", "720h")
SessionMaxAge = Annotated[str, SESSION_MAX_AGE.field(), SESSION_MAX_AGE.validator()]
# What only a router can do, and what ingress-nginx cannot express (checked at admission too: api/crd.py).
MATCH_NEEDS_ROUTER = (
    "traffic.match needs a provider that routes by request (gateway-api, istio or nginx): "
    "the service provider has no router"
)
AFFINITY_NEEDS_ROUTER = (
    "traffic.sessionAffinity needs a provider that sets and matches cookies (gateway-api, istio or nginx): "
    "the service provider has no router"
)
MATCH_NEEDS_CONDITION = "traffic.match needs a header or a cookie"
NGINX_COOKIE_ALWAYS = (
    "traffic.match.cookie.value must be always with traffic.provider nginx: "
    "ingress-nginx routes by a cookie only when its value is always"
)
SHADOW_NEEDS_MIRROR = (
    "rollout.shadow needs a provider that mirrors requests (gateway-api, istio or nginx): "
    "the service provider has no router"
)
NGINX_MIRRORS_ALL = (
    "rollout.shadow.percent must be 100 with traffic.provider nginx: ingress-nginx mirrors every request"
)


class HeaderMatch(Model):
    name: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=HEADER_NAME,
        description="Request header name: lowercase letters, digits and '-'.",
    )
    value: str = Field(
        ...,
        min_length=1,
        max_length=256,
        pattern=HEADER_VALUE,
        description="The header's exact value: printable ASCII, no leading or trailing space.",
    )


class CookieMatch(Model):
    name: str = Field(
        ..., min_length=1, max_length=64, pattern=COOKIE_NAME, description="Cookie name: letters, digits, _ and -."
    )
    value: str = Field(
        "always",
        min_length=1,
        max_length=128,
        pattern=COOKIE_VALUE,
        description="The cookie's exact value: letters, digits, _, . and -; always with provider nginx. "
        "Default: always.",
    )


class TrafficMatch(Model):
    header: HeaderMatch | None = Field(
        None, description="Requests with this header and value go to the canary. Default: none."
    )
    cookie: CookieMatch | None = Field(
        None, description="Requests with this cookie and value go to the canary. Default: none."
    )

    @model_validator(mode="after")
    def _some_condition(self) -> TrafficMatch:
        if self.header is None and self.cookie is None:
            raise ValueError(MATCH_NEEDS_CONDITION)
        return self


class SessionAffinity(Model):
    cookie_name: str = Field(
        "tritonop-canary",
        min_length=1,
        max_length=64,
        pattern=COOKIE_NAME,
        description="Name of the cookie that keeps a client on the revision the split chose: letters, digits, "
        "_ and -. Default: tritonop-canary.",
    )
    max_age: SessionMaxAge = Field(
        "24h", description="How long the cookie keeps a client there, a duration; 1s..720h. Default: 24h."
    )


class Traffic(Model):
    provider: TrafficProvider = Field(
        TrafficProvider.service,
        description="How canary weights are enforced. service (default): one Service over all revisions, "
        "the split approximated by replica ratio; gateway-api: HTTPRoute weights; istio: VirtualService "
        "weights; nginx: ingress-nginx canary annotations (ingress-nginx is retired; kept for existing users). "
        "Default: service.",
    )
    gateway: GatewayRouting | None = Field(
        None, description="Gateway API routing; required with provider gateway-api (parentRefs)."
    )
    istio: IstioRouting | None = Field(
        None, description="Istio routing (provider istio). Default: no hosts or gateways."
    )
    nginx: NginxRouting | None = Field(None, description="ingress-nginx routing; required with provider nginx (host).")
    match: TrafficMatch | None = Field(
        None,
        description="Requests that go to the canary whatever its weight (testers, internal clients): those "
        "carrying the header, or the cookie. Applies once the canary is past its gate and shadow phase and "
        "while it has ready pods; otherwise they follow the split. Needs provider gateway-api, istio or "
        "nginx. See docs/traffic.md. Default: none.",
    )
    session_affinity: SessionAffinity | None = Field(
        None,
        description="Sticky splits: a client the split sent to the canary keeps reaching it (a cookie naming "
        "the canary) while the canary has weight, instead of flipping between revisions per request. "
        "Needs provider gateway-api, istio or nginx. See docs/traffic.md. Default: none.",
    )

    @model_validator(mode="after")
    def _provider_config(self) -> Traffic:
        if self.provider == TrafficProvider.gateway_api and not (self.gateway and self.gateway.parent_refs):
            raise ValueError("traffic.provider gateway-api needs traffic.gateway.parentRefs")
        if self.provider == TrafficProvider.nginx and self.nginx is None:
            raise ValueError("traffic.provider nginx needs traffic.nginx.host")
        if self.provider == TrafficProvider.service and self.match is not None:
            raise ValueError(MATCH_NEEDS_ROUTER)
        if self.provider == TrafficProvider.service and self.session_affinity is not None:
            raise ValueError(AFFINITY_NEEDS_ROUTER)
        cookie = self.match.cookie if self.match else None
        if self.provider == TrafficProvider.nginx and cookie is not None and cookie.value != "always":
            raise ValueError(NGINX_COOKIE_ALWAYS)
        return self


# ---------------------------------------------------------------- spec: network policy


class NetworkPolicySettings(Model):
    enabled: bool | None = Field(
        None,
        description="Create a NetworkPolicy NAME over this InferenceService's Triton pods: HTTP (8000) and "
        "gRPC (8001) from any pod in the cluster, metrics (8002) only from the monitoring namespaces the "
        "operator is configured with, every other ingress denied; egress is left open. Default: the "
        "operator's --network-policy setting (on unless the operator was installed without it).",
    )


# ---------------------------------------------------------------- spec


class InferenceServiceSpec(Model):
    model: ModelSource = Field(..., description="The model to serve and where its repository lives.")
    triton: TritonRuntime = Field(
        default_factory=TritonRuntime, description="The Triton server runtime: image, GPUs, resources, pod settings."
    )
    autoscaling: Autoscaling = Field(
        default_factory=Autoscaling, description="Replicas and autoscaling per revision. Default: 1 replica."
    )
    rollout: Rollout = Field(
        default_factory=Rollout,
        description="How a new revision (a change of model or triton) is rolled out: canary steps and analysis.",
    )
    traffic: Traffic = Field(
        default_factory=Traffic, description="How traffic is split between revisions. Default: provider service."
    )
    network_policy: NetworkPolicySettings = Field(
        default_factory=NetworkPolicySettings,
        description="Which peers may reach the Triton pods (a NetworkPolicy); see docs/security.md.",
    )

    @model_validator(mode="after")
    def _acceptance_models(self) -> InferenceServiceSpec:
        acceptance = self.rollout.acceptance
        if self.model.several and acceptance is not None and any(c.model is None for c in acceptance.cases):
            raise ValueError(CASE_MODEL_REQUIRED)
        return self

    @model_validator(mode="after")
    def _shadow_needs_mirror(self) -> InferenceServiceSpec:
        shadow = self.rollout.shadow
        if shadow is not None and self.traffic.provider == TrafficProvider.service:
            raise ValueError(SHADOW_NEEDS_MIRROR)
        if shadow is not None and self.traffic.provider == TrafficProvider.nginx and shadow.percent != 100:
            raise ValueError(NGINX_MIRRORS_ALL)
        return self

    @model_validator(mode="after")
    def _gpu_memory_needs_gpus(self) -> InferenceServiceSpec:
        # Triton on CPU exports no GPU metrics (--allow-gpu-metrics=false): the check could never
        # pass, so the spec is refused rather than its canaries held until noDataTimeout.
        if self.rollout.analysis.gpu_memory is not None and self.triton.gpus == 0:
            raise ValueError("rollout.analysis.gpuMemory needs triton.gpus above 0: Triton on CPU has no GPU memory")
        return self

    @model_validator(mode="after")
    def _in_place(self) -> InferenceServiceSpec:
        if self.rollout.strategy != RolloutStrategy.in_place:
            return self
        if self.model.version is None:
            raise ValueError(IN_PLACE_VERSION)
        if self.triton.model_control_mode != ModelControlMode.explicit:
            raise ValueError(IN_PLACE_EXPLICIT)
        analysis = self.rollout.analysis
        quantile = analysis.latency is not None and analysis.latency.quantile is not None
        if analysis.source == AnalysisSource.prometheus or analysis.checks or quantile:
            raise ValueError(IN_PLACE_ANALYSIS)
        if self.rollout.shadow is not None:
            raise ValueError(IN_PLACE_SHADOW)
        return self

    @model_validator(mode="after")
    def _experiment_one_model(self) -> InferenceServiceSpec:
        if self.rollout.strategy == RolloutStrategy.experiment and self.model.models == [ALL_MODELS]:
            raise ValueError(EXPERIMENT_ONE_MODEL)
        return self

    @model_validator(mode="after")
    def _experiment_variants(self) -> InferenceServiceSpec:
        variants = self.rollout.experiment.variants if self.rollout.experiment is not None else []
        if variants and self.traffic.provider == TrafficProvider.nginx:
            raise ValueError(EXPERIMENT_VARIANTS_NEED_SPLIT)
        if self.model.models is not None and any(v.model.version is not None for v in variants):
            raise ValueError(EXPERIMENT_VARIANT_VERSION)
        return self


# ---------------------------------------------------------------- status


class Phase(str, Enum):
    pending = "Pending"
    progressing = "Progressing"
    ready = "Ready"
    rolled_back = "RolledBack"
    failed = "Failed"


class Condition(Model):
    """One status condition, in the Kubernetes convention."""

    type: str = Field(..., description="Condition type: Ready, Reconciling or Stalled (kstatus).")
    status: Literal["True", "False", "Unknown"] = Field(..., description="True, False or Unknown.")
    reason: str = Field(..., description="Why the condition is as it is, one CamelCase word.")
    message: str = Field("", description="Details for humans. Default: empty.")
    last_transition_time: str | None = Field(
        None, description="When status last changed, RFC 3339 (e.g. 2026-01-02T03:04:05Z)."
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec this condition was computed from."
    )


class TrafficTarget(Model):
    """The share of traffic one revision gets."""

    revision: str = Field(..., description="Revision (10 hex characters of the model and triton spec's hash).")
    percent: int = Field(..., description="Share of traffic in percent, 0..100.")


class CheckEvidence(Model):
    """What a sequential check has seen on each side since the canary's first sample."""

    decision: Literal["Pass", "Fail", "Inconclusive"] = Field(
        ...,
        description="Fail: conclusively worse than the bound; Pass: enough evidence (minRequests) and no "
        "conclusive failure; Inconclusive: not enough evidence yet.",
    )
    canary_requests: int = Field(0, description="Canary requests seen (successful plus failed). Default: 0.")
    canary_failures: int = Field(0, description="Canary requests that failed. Default: 0.")
    stable_requests: int | None = Field(None, description="Stable requests seen, for checks against the stable.")
    stable_failures: int | None = Field(None, description="Stable requests that failed.")
    seconds: int | None = Field(
        None, description="Latency checks: samples (about one a second) with a mean latency on the compared sides."
    )
    seconds_above: int | None = Field(
        None, description="Latency checks: those samples whose canary mean exceeded the bound."
    )
    statistic: float = Field(
        ..., description="The evidence against the canary being within its bound (a likelihood ratio, from 1)."
    )
    threshold: float = Field(..., description="The statistic that is conclusive: 1/alpha for this check.")
    detectable: float | None = Field(
        None,
        description="The rate (failures, or samples above the bound) this much evidence detects with 80% "
        "probability; smaller is more sensitive.",
    )


class CheckResult(Model):
    """The outcome of one check in the last analysis."""

    name: str = Field(
        ...,
        description="Check name: successRate, latency, successRateVsStable, latencyVsStable, gpuMemory, "
        "gpuMemoryVsStable or a custom check's; with several models, suffixed with the model that decided, "
        "e.g. successRate[post].",
    )
    result: Verdict = Field(..., description="Pass, Fail, NoData or Error.")
    value: float | None = Field(None, description="Measured value, in the check's unit (ratio, ms, GiB, %, ...).")
    bound: str | None = Field(None, description="The bound it was judged against, e.g. >= 0.99 or <= 250ms.")
    message: str = Field("", description="Why, when it did not pass. Default: empty.")
    source: Literal["direct", "prometheus"] | None = Field(
        None, description="Where the check's data came from: direct (Triton's metrics endpoints) or prometheus."
    )
    evidence: CheckEvidence | None = Field(None, description="Sequential checks: the counts and the test.")


class CanaryStatus(Model):
    step: int = Field(0, description="Index into rollout.steps of the current step, from 0. Default: 0.")
    weight: int = Field(0, description="Canary's current traffic weight in percent, 0..100. Default: 0.")
    started_at: str | None = Field(None, description="When the canary started, RFC 3339.")
    step_started_at: str | None = Field(None, description="When the current step started, RFC 3339.")
    shadow_started_at: str | None = Field(
        None, description="When the shadow phase started (rollout.shadow), RFC 3339; absent without one."
    )
    failed_checks: int = Field(
        0, description="Failed checks so far; rollout.failureThreshold of them roll back. Default: 0."
    )
    no_data_since: str | None = Field(
        None, description="Since when analysis has seen no data, RFC 3339 (see rollout.analysis.noDataTimeout)."
    )
    next_analysis_at: str | None = Field(None, description="When the next analysis runs, RFC 3339.")
    waiting_for: str | None = Field(None, description="What the canary waits for before it gets traffic.")
    last_analysis: list[CheckResult] = Field(
        default_factory=list, description="Each check's result in the last analysis."
    )
    variants: list[ArmStatus] | None = Field(
        None,
        max_length=3,
        description="rollout.strategy Experiment: the variants beyond B (rollout.experiment.variants), their "
        "revisions and weights; absent without any.",
    )
    ignored_annotations: list[Literal["promote", "abort"]] | None = Field(
        None,
        max_length=2,
        description="Manual annotations that already named this revision when the canary started: "
        "stale (set for an earlier canary of the same revision), so ignored until removed and set again.",
    )


class ArmStatus(Model):
    """A variant beyond B (rollout.experiment.variants) while the experiment runs."""

    name: str = Field(..., description="The variant's name.")
    revision: str = Field(..., description="Its revision: the spec with the variant's settings.")
    weight: int = Field(0, description="Its traffic weight in percent; 0 before B gets its weight and once stopped.")
    failed_checks: int = Field(0, description="Failed analyses so far; rollout.failureThreshold of them stop it.")
    stopped: str | None = Field(None, description="Why it was stopped (its analysis failed); it serves no more.")
    ignored_annotations: list[Literal["promote"]] | None = Field(
        None,
        max_length=1,
        description="The promote annotation already named this revision when the variant started (set for an "
        "earlier experiment): ignored while it stays; remove it and set it again to pick this variant.",
    )


class PodVersions(Model):
    pod: str = Field(..., description="Triton pod of the stable revision.")
    versions: list[str] = Field(default_factory=list, description="Versions of the model it has ready.")


class InPlaceStatus(Model):
    """rollout.strategy InPlace: which version the stable revision's pods serve, and the switch."""

    revision: str | None = Field(None, description="The stable revision whose pods these versions are about.")
    version: str | None = Field(None, description="The version every pod serves when no switch runs.")
    candidate: str | None = Field(None, description="The version being switched to, if a switch runs.")
    failed_version: str | None = Field(
        None, description="The last version switched back; not retried until model.version changes."
    )
    canary_pod: str | None = Field(None, description="The pod that serves the candidate first, judged as the step.")
    canary: CanaryStatus | None = Field(None, description="Progress of the switch: gate, step, analysis.")
    pods: list[PodVersions] = Field(default_factory=list, description="Which pod has which versions ready.")


class ExperimentVariant(Model):
    """One variant's figures over the experiment's window (from its start to resultsAt)."""

    name: str = Field(
        ..., description="A: the stable revision; B: the new revision; else a rollout.experiment.variants name."
    )
    revision: str = Field(..., description="The variant's revision.")
    weight: int = Field(..., description="Its share of the traffic in percent, 0..100.")
    requests: int | None = Field(None, description="Requests it served (successful plus failed).")
    success_rate: float | None = Field(None, description="Share of its requests that succeeded, a ratio 0..1.")
    mean_latency_ms: float | None = Field(
        None, description="Mean duration of its successful requests in milliseconds (ms)."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Each rollout.experiment.metrics query's value for this variant, by name."
    )
    stopped: str | None = Field(
        None, description="A variant beyond B its analysis stopped: why (it serves no more; figures up to then)."
    )


class ExperimentComparison(Model):
    """A variant against A on one figure, with a confidence interval for the difference (95% for the
    experiment as a whole: with several variants, Bonferroni-corrected per comparison)."""

    variant: str = Field("B", description="The variant compared with A. Default: B.")
    metric: Literal["successRate", "meanLatencyMs"] = Field(..., description="The figure compared.")
    difference: float = Field(
        ..., description="The variant minus A: percentage points for successRate, milliseconds for meanLatencyMs."
    )
    low: float = Field(..., description="Lower end of the confidence interval for the difference.")
    high: float = Field(..., description="Upper end of the confidence interval for the difference.")
    significant: bool = Field(..., description="Whether the interval excludes 0.")
    statement: str = Field(..., description="The comparison in a sentence, with the test that made it.")


class ExperimentStatus(Model):
    """rollout.strategy Experiment: the split, its window, both variants' figures and the outcome."""

    started_at: str | None = Field(None, description="When B got its weight, RFC 3339.")
    ends_at: str | None = Field(
        None, description="When the experiment ends: startedAt plus rollout.experiment.duration, RFC 3339."
    )
    concluded: bool = Field(
        False,
        description="The duration has ended: the split is held until the promote or abort annotation. Default: false.",
    )
    winner: str | None = Field(
        None,
        description="The variant picked: B (or a variant beyond it) by the promote annotation naming its revision, "
        "A by the abort annotation.",
    )
    ended: bool = Field(
        False,
        description="B no longer runs: a winner was picked, B was rolled back (its checks failed), or the spec "
        "moved on. Default: false.",
    )
    results_at: str | None = Field(
        None, description="The end of the window the figures cover (they start at startedAt), RFC 3339."
    )
    variants: list[ExperimentVariant] = Field(default_factory=list, description="A and B, their figures.")
    comparison: list[ExperimentComparison] = Field(
        default_factory=list, description="B against A on success rate and mean latency, where the data allow."
    )
    message: str | None = Field(None, description="Where the experiment stands, in a sentence.")
    problems: list[str] = Field(
        default_factory=list,
        description="Why figures are missing or not updated at the last fetch (e.g. Prometheus unreachable).",
    )


class ModelFacts(Model):
    revision: str | None = Field(None, description="The revision these facts were read from.")
    name: str | None = Field(None, description="Model name Triton serves.")
    platform: str | None = Field(None, description="Triton platform or backend, e.g. onnxruntime_onnx, python.")
    versions: list[str] = Field(default_factory=list, description="Model versions Triton has loaded.")
    inputs: list[dict[str, Any]] = Field(
        default_factory=list, description="Input tensors from the model metadata: name, datatype, shape."
    )
    outputs: list[dict[str, Any]] = Field(
        default_factory=list, description="Output tensors from the model metadata: name, datatype, shape."
    )


class InferenceServiceStatus(Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec the operator last acted on."
    )
    phase: Phase | None = Field(
        None,
        description="Pending (the first revision is not serving yet), Progressing (a canary is rolling out), "
        "Ready (one revision serves 100%), RolledBack (the canary failed analysis or was aborted; the stable "
        "revision serves) or Failed (the canary never became ready or failed acceptance).",
    )
    message: str | None = Field(None, description="What happened last, in a sentence (e.g. why a rollback).")
    url: str | None = Field(
        None,
        description="URL clients use: the traffic provider's external host when configured, else the entry "
        "Service's in-cluster HTTP address.",
    )
    replicas: int | None = Field(None, description="Triton pods of the stable revision.")
    ready_replicas: int | None = Field(None, description="Ready Triton pods of the stable revision.")
    stable_revision: str | None = Field(None, description="Revision serving by default (10 hex characters).")
    canary_revision: str | None = Field(None, description="Revision being rolled out, if any.")
    failed_revision: str | None = Field(
        None, description="The last revision rolled back or failed; not retried until the spec changes."
    )
    traffic: list[TrafficTarget] = Field(default_factory=list, description="Traffic share of each revision.")
    canary: CanaryStatus | None = Field(None, description="Progress of the canary rollout, while one runs.")
    in_place: InPlaceStatus | None = Field(
        None, description="rollout.strategy InPlace: the version the pods serve and the switch in progress."
    )
    experiment: ExperimentStatus | None = Field(
        None,
        description="rollout.strategy Experiment: the running or last experiment, both variants' figures and "
        "the outcome; kept until another canary starts.",
    )
    model: ModelFacts | None = Field(None, description="What Triton reports about the model it loaded.")
    models: list[ModelFacts] | None = Field(
        None,
        description='With model.models: what Triton reports about each model served (for "*": each model '
        "loaded), in spec order; status.model stays empty.",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing and the other conditions, by type."
    )
