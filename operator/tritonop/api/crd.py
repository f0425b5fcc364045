"""Generate the InferenceService CRD from the pydantic models.

Pydantic emits JSON Schema (2020-12); Kubernetes wants a *structural* OpenAPI v3
schema: no $ref, no anyOf-with-null, no additionalProperties beside properties,
boolean exclusive bounds, and preserve-unknown-fields where we pass Kubernetes
types through. Defaults are left out on purpose: the operator applies them from
the models, so stored objects stay exactly what the user (or Git) wrote. A
``default`` in the schema would make the API server write it into every object on
create, update and read (Argo CD would see drift against Git, and a CEL rule's
``has()`` would hold for fields nobody set). Each field's description names its
default instead ("Default: 5m."), which is what ``kubectl explain`` prints.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tritonop import CATEGORY, GROUP, KIND, PLURAL, SHORT_NAME, SINGULAR, VERSION
from tritonop.api.kube_descriptions import KUBE_DESCRIPTIONS
from tritonop.api.models import (
    AFFINITY_NEEDS_ROUTER,
    ALL_MODELS_ALONE,
    CASE_MODEL_REQUIRED,
    EXPERIMENT_METRICS_DISTINCT,
    EXPERIMENT_NEEDS_SETTINGS,
    EXPERIMENT_NO_STEPS,
    EXPERIMENT_ONE_MODEL,
    EXPERIMENT_SETTINGS_ONLY,
    EXPERIMENT_VARIANT_CHANGES,
    EXPERIMENT_VARIANT_VERSION,
    EXPERIMENT_VARIANT_WEIGHTS,
    EXPERIMENT_VARIANTS_DISTINCT,
    EXPERIMENT_VARIANTS_NEED_SPLIT,
    IN_PLACE_ANALYSIS,
    IN_PLACE_EXPLICIT,
    IN_PLACE_SHADOW,
    IN_PLACE_VERSION,
    KEDA_METRICS_MESSAGE,
    KEDA_METRICS_RULE,
    MATCH_NEEDS_CONDITION,
    MATCH_NEEDS_ROUTER,
    MODELS_DISTINCT,
    MODELS_NOT_WITH_NAME,
    MODELS_NOT_WITH_VERSION,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    NGINX_COOKIE_ALWAYS,
    NGINX_MIRRORS_ALL,
    SHADOW_NEEDS_MIRROR,
    InferenceServiceSpec,
    InferenceServiceStatus,
)

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATH = f"crds/{GROUP}_{PLURAL}.yaml"

# traffic.provider is one with a router (the default, service, has none).
ROUTED = "(has(self.provider) && self.provider != 'service')"
NOT_IN_PLACE = "!has(self.rollout) || !has(self.rollout.strategy) || self.rollout.strategy != 'InPlace'"
NO_VARIANTS = (
    "!has(self.rollout) || !has(self.rollout.experiment) || !has(self.rollout.experiment.variants) || "
    "size(self.rollout.experiment.variants) == 0"
)
# Cross-field rules checked at admission by the API server (CEL, GA since 1.29).
# Paths are JSON paths into the spec schema; each entry is (path, rule, message).
CEL_RULES: list[tuple[tuple[str, ...], str, str]] = [
    (
        ("model",),
        "self.storageUri.matches('^(s3|gs|as|pvc|https?|file)://.+$')",
        "model.storageUri must start with s3://, gs://, as://, pvc://, http://, https:// or file://",
    ),
    (("model",), "!has(self.models) || !has(self.name)", MODELS_NOT_WITH_NAME),
    (("model",), "!has(self.models) || !has(self.version)", MODELS_NOT_WITH_VERSION),
    (("model",), "!has(self.models) || size(self.models) == 1 || !self.models.exists(m, m == '*')", ALL_MODELS_ALONE),
    (("model",), "!has(self.models) || self.models.all(m, self.models.exists_one(n, n == m))", MODELS_DISTINCT),
    (
        (),
        "!has(self.model.models) || (size(self.model.models) == 1 && self.model.models[0] != '*') || "
        "!has(self.rollout) || !has(self.rollout.acceptance) || self.rollout.acceptance.cases.all(c, has(c.model))",
        CASE_MODEL_REQUIRED,
    ),
    (
        (),
        f"{NOT_IN_PLACE} || has(self.model.version)",
        IN_PLACE_VERSION,
    ),
    (
        (),
        f"{NOT_IN_PLACE} || !has(self.triton) || !has(self.triton.modelControlMode) || "
        "self.triton.modelControlMode == 'explicit'",
        IN_PLACE_EXPLICIT,
    ),
    ((), f"{NOT_IN_PLACE} || !has(self.rollout.shadow)", IN_PLACE_SHADOW),
    (
        (),
        f"{NOT_IN_PLACE} || !has(self.rollout.analysis) || ("
        "(!has(self.rollout.analysis.source) || self.rollout.analysis.source != 'prometheus') && "
        "(!has(self.rollout.analysis.checks) || size(self.rollout.analysis.checks) == 0) && "
        "(!has(self.rollout.analysis.latency) || !has(self.rollout.analysis.latency.quantile)))",
        IN_PLACE_ANALYSIS,
    ),
    (
        (),
        "!has(self.rollout) || !has(self.rollout.strategy) || self.rollout.strategy != 'Experiment' || "
        "!has(self.model.models) || !self.model.models.exists(m, m == '*')",
        EXPERIMENT_ONE_MODEL,
    ),
    (
        ("rollout",),
        "!has(self.strategy) || self.strategy != 'Experiment' || has(self.experiment)",
        EXPERIMENT_NEEDS_SETTINGS,
    ),
    (
        ("rollout",),
        "!has(self.experiment) || (has(self.strategy) && self.strategy == 'Experiment')",
        EXPERIMENT_SETTINGS_ONLY,
    ),
    (("rollout",), "!has(self.steps) || !has(self.strategy) || self.strategy != 'Experiment'", EXPERIMENT_NO_STEPS),
    (
        ("rollout", "experiment"),
        "!has(self.metrics) || self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
        EXPERIMENT_METRICS_DISTINCT,
    ),
    (
        ("rollout", "experiment"),
        "!has(self.variants) || self.variants.all(v, self.variants.exists_one(w, w.name == v.name))",
        EXPERIMENT_VARIANTS_DISTINCT,
    ),
    (
        ("rollout", "experiment"),
        # Spelled out for its 3 items: CEL's list sum() is a Kubernetes extension.
        "(has(self.weight) ? self.weight : 50) + (!has(self.variants) ? 0 : "
        "(size(self.variants) > 0 ? self.variants[0].weight : 0) + "
        "(size(self.variants) > 1 ? self.variants[1].weight : 0) + "
        "(size(self.variants) > 2 ? self.variants[2].weight : 0)) <= 99",
        EXPERIMENT_VARIANT_WEIGHTS,
    ),
    (
        (),
        f"{NO_VARIANTS} || !has(self.traffic) || !has(self.traffic.provider) || self.traffic.provider != 'nginx'",
        EXPERIMENT_VARIANTS_NEED_SPLIT,
    ),
    (
        (),
        f"{NO_VARIANTS} || !has(self.model.models) || "
        "self.rollout.experiment.variants.all(v, !has(v.model) || !has(v.model.version))",
        EXPERIMENT_VARIANT_VERSION,
    ),
    (
        ("triton",),
        "!has(self.gpus) || self.gpus >= 0",
        "triton.gpus must be 0 (CPU) or more",
    ),
    (
        ("autoscaling",),
        "(has(self.minReplicas) ? self.minReplicas : 1) <= (has(self.maxReplicas) ? self.maxReplicas : 1)",
        "autoscaling.minReplicas must not exceed autoscaling.maxReplicas (default 1)",
    ),
    (("autoscaling",), KEDA_METRICS_RULE, KEDA_METRICS_MESSAGE),
    (
        ("rollout",),
        "!has(self.steps) || self.steps.all(s, s >= 1 && s <= 99)",
        "rollout.steps must each be within 1..99",
    ),
    (
        ("rollout",),
        "!has(self.steps) || (self.steps.isSorted() && self.steps.all(s, self.steps.exists_one(t, t == s)))",
        "rollout.steps must be strictly increasing",
    ),
    (
        ("traffic",),
        "!has(self.provider) || self.provider != 'gateway-api' || "
        "(has(self.gateway) && has(self.gateway.parentRefs) && size(self.gateway.parentRefs) > 0)",
        "traffic.provider gateway-api needs traffic.gateway.parentRefs",
    ),
    (
        ("traffic",),
        "!has(self.provider) || self.provider != 'nginx' || has(self.nginx)",
        "traffic.provider nginx needs traffic.nginx.host",
    ),
    (("traffic",), f"!has(self.match) || {ROUTED}", MATCH_NEEDS_ROUTER),
    (("traffic",), f"!has(self.sessionAffinity) || {ROUTED}", AFFINITY_NEEDS_ROUTER),
    (("traffic", "match"), "has(self.header) || has(self.cookie)", MATCH_NEEDS_CONDITION),
    (
        ("traffic",),
        "!has(self.provider) || self.provider != 'nginx' || !has(self.match) || !has(self.match.cookie) || "
        "!has(self.match.cookie.value) || self.match.cookie.value == 'always'",
        NGINX_COOKIE_ALWAYS,
    ),
    (
        (),
        "!has(self.rollout) || !has(self.rollout.shadow) || "
        "(has(self.traffic) && has(self.traffic.provider) && self.traffic.provider != 'service')",
        SHADOW_NEEDS_MIRROR,
    ),
    (
        (),
        "!has(self.rollout) || !has(self.rollout.shadow) || !has(self.traffic) || !has(self.traffic.provider) || "
        "self.traffic.provider != 'nginx' || self.rollout.shadow.percent == 100",
        NGINX_MIRRORS_ALL,
    ),
    (
        (),
        "!has(self.rollout) || !has(self.rollout.analysis) || !has(self.rollout.analysis.gpuMemory) || "
        "!has(self.triton) || !has(self.triton.gpus) || self.triton.gpus > 0",
        "rollout.analysis.gpuMemory needs triton.gpus above 0: Triton on CPU has no GPU memory",
    ),
]
# Rules on list items: (path to the array, rule, message).
CEL_ITEM_RULES: list[tuple[tuple[str, ...], str, str]] = [
    (("rollout", "analysis", "checks"), "has(self.min) || has(self.max)", "each custom check needs min or max"),
    (
        ("rollout", "experiment", "variants"),
        "(has(self.model) && (has(self.model.storageUri) || has(self.model.version))) || has(self.image)",
        EXPERIMENT_VARIANT_CHANGES,
    ),
]
# Children are named NAME-REVISION (10 hex chars) and Services must be DNS-1035 labels (<= 63).
# The API server's own check of metadata.name (a DNS-1123 subdomain) admits more than that;
# parse_spec rejects the same names with reason InvalidName.
ROOT_RULES = [
    (
        f"self.metadata.name.size() <= {NAME_MAX_LENGTH}",
        f"metadata.name must be at most {NAME_MAX_LENGTH} characters: children are named NAME-REVISION",
    ),
    (
        f"self.metadata.name.matches('{NAME_PATTERN}')",
        "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, "
        "ending with a letter or digit): it names the InferenceService's Services",
    ),
]

# Kubernetes' own text for the two type fields. metadata gets none: the API server refuses a
# CRD whose metadata schema says anything but type object (and name/generateName rules).
API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object: "
    f"{GROUP}/{VERSION}. Servers should convert recognized schemas to the latest internal value, "
    "and may reject unrecognized values."
)
KIND_DESCRIPTION = (
    f"Kind is a string value representing the REST resource this object represents: {KIND}. "
    "Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
)

PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
    {"name": "Canary %", "type": "integer", "jsonPath": ".status.canary.weight"},
    {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-Schema node into a structural OpenAPI v3 node."""
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string"):
        # Already structural (anyOf [integer, string] is the one anyOf allowed here).
        return {k: v for k, v in node.items() if k not in ("title", "default")}
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _structural({**options[0], **rest}, defs)
        raise ValueError(f"cannot make a structural schema of anyOf {options}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "default", "$defs"):
            continue
        if key == "properties":
            out["properties"] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs) if value else {"x-kubernetes-preserve-unknown-fields": True}
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _structural(value, defs)
            # additionalProperties: false is implied by structural pruning
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if not out.get("type") and not out.get("x-kubernetes-preserve-unknown-fields"):
        # Free-form values (e.g. acceptance data: numbers, strings or booleans).
        out = {"x-kubernetes-preserve-unknown-fields": True, **out}
    return out


def _describe_kube_types(defs: dict[str, Any]) -> None:
    """Give the pass-through Kubernetes types' properties their ``kubectl explain`` text."""
    for name, descriptions in KUBE_DESCRIPTIONS.items():
        if name not in defs:
            continue
        properties = defs[name]["properties"]
        for prop, text in descriptions.items():
            if prop not in properties:
                raise KeyError(f"KUBE_DESCRIPTIONS names {name}.{prop}, which {name} does not have")
            properties[prop].setdefault("description", text)


def _schema_of(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    _describe_kube_types(raw.get("$defs", {}))
    schema: dict[str, Any] = _structural(raw, raw.get("$defs", {}))
    return schema


def _at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for part in path:
        schema = schema["properties"][part]
    return schema


def spec_schema() -> dict[str, Any]:
    schema = _schema_of(InferenceServiceSpec)
    for path, rule, message in CEL_RULES:
        _at(schema, path).setdefault("x-kubernetes-validations", []).append({"rule": rule, "message": message})
    for path, rule, message in CEL_ITEM_RULES:
        _at(schema, path)["items"].setdefault("x-kubernetes-validations", []).append({"rule": rule, "message": message})
    schema["description"] = "Desired state: the model, the Triton runtime, autoscaling, rollout and traffic."
    return schema


def status_schema() -> dict[str, Any]:
    schema = _schema_of(InferenceServiceStatus)
    schema["description"] = "Observed state, written only by the operator."
    return schema


def generate_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "tritonop", "app.kubernetes.io/part-of": "tritonop"},
            "annotations": {
                # Argo CD: never prune the CRD (it would delete every InferenceService) and
                # apply server-side (the schema is too large for client-side last-applied).
                "argocd.argoproj.io/sync-options": "Prune=false,ServerSideApply=true",
                "helm.sh/resource-policy": "keep",
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "InferenceService runs a Triton model and rolls out every change "
                            "of model or runtime as an SLO-judged canary.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": API_VERSION_DESCRIPTION},
                                "kind": {"type": "string", "description": KIND_DESCRIPTION},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in ROOT_RULES],
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    return "# Generated by `tritonop crd` from operator/tritonop/api/models.py. Do not edit.\n" + yaml.safe_dump(
        generate_crd(), sort_keys=False, width=120
    )
