"""Admission and the operator agree on every spec: a differential test over thousands of specs.

Every spec the CRD admits must parse (parse_spec) and then render or raise BuildError;
every spec it refuses, parse_spec must refuse with BuildError. The specs are the examples
and differential_bases.yaml, mutated field by field: deleted, null, wrong types, boundary
numbers, bad names and hosts, zero and huge durations, unknown fields, missing optional
fields filled in from the schema, and a few mutations at once. A seeded generator keeps
the run deterministic.

Admission is emulated by tests/unit/api/admission.py (the CRD's openAPIV3Schema with
jsonschema and its CEL rules with cel-python). TRITONOP_DIFFERENTIAL_DUMP=FILE writes
each spec and the emulator's verdict as JSON lines, to replay them against the real
apiextensions-apiserver validation code.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.unit.api.admission import Admission, as_sent, cel_rules
from tritonop.api.crd import generate_crd
from tritonop.children import BuildError, parse_spec
from tritonop.config import OperatorConfig
from tritonop.render import render

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SEED = 20240610
TARGET = 2200
ROOT = generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
DELETE = object()  # a mutation that removes the field
# CEL rules older than the schema keywords that now imply them: they never refuse a schema-valid spec.
SCHEMA_IMPLIED_RULES = (
    "self.storageUri.matches(",
    "!has(self.gpus) || self.gpus >= 0",
    "!has(self.steps) || self.steps.all(s, s >= 1",
)

Path_ = tuple[str | int, ...]

# fmt: off
STRINGS = [
    "", " ", "a", "A", "x" * 300, "abc\n", "1model", "my.model", "my-model", "-x", "x-", "x_y", "a" * 52, "a" * 53,
    "a" * 63, "a" * 64, "*", "*.example.com", "a.example.com", "Example.com", "a..b", "1.2.3.4", "/", "/api", "api",
    "/api//v1", "/a/./b", "/v2/models/", "0s", "1s", "999ms", "0.5s", "1m30s", "24h", "24h0.001ms", "23h60m",
    "5m", "5m0.001ms", "300s", "300.001s", "9999999999h", "99999h", "100000ms", "1.5h", "1.2345s", "1d", "-1s",
    "8Gi", "500m", "0.5", "1.5Gi", "8GB", "-1", "1e3", "2", "s3://bucket/repo", "gs://b/p", "pvc://claim/path",
    "pvc://Bad_Claim/x", "https://example.com/m.tar.gz", "https://example.com/repo", "file:///models",
    "file://relative", "ftp://x/y", "http://prometheus:9090", "prometheus:9090", "In", "Exists", "Gt", "Equal",
    "Utilization", "Value", "AverageValue", "Resource", "Pods", "keda", "hpa", "gateway-api", "istio", "nginx",
    "service", "linkerd", "poll", "NoExecute", "metadata.name", "status.podIP", "limits.cpu", "cpu", "memory", "v1",
    "FP32", "fp32", "ns/gw", "mesh", "true", "1",
]
# fmt: on
WRONG_TYPES: list[Any] = [None, DELETE, "1", "true", 1, -1, 0, 1.5, 1.0, True, False, [], {}, {"bogus": 1}]
# Edges each rule and bound must judge, on top of the sampled mutations: (base, path, value).
TOLERATIONS: Path_ = ("spec", "triton", "tolerations")
AFFINITY: Path_ = ("spec", "triton", "affinity")
PREFERRED_NODE: Path_ = (*AFFINITY, "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
REQUIRED_NODE: Path_ = (*AFFINITY, "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
REQUIRED_POD: Path_ = (*AFFINITY, "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
POD: Path_ = ("spec", "triton")  # of manifests/examples/gpu-settings.yaml (llm-mig)
SPREAD = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
POD_SETTINGS_EDGES: list[tuple[Path_, Any]] = [
    (("gpuResource",), "example.kubernetes.io/gpu"),
    (("gpuResource",), "amd.com/gpu"),
    (("volumes", 0, "name"), "tmp"),
    (("volumes", 1, "name"), "tokenizer"),
    (("volumes", 0), {"name": "tokenizer", "emptyDir": {}, "configMap": {"name": "x"}}),
    (("volumeMounts", 0, "name"), "missing"),
    (("volumeMounts", 0, "mountPath"), "/mnt/models"),
    (("volumeMounts", 0, "mountPath"), "/var/log/triton"),
    (("sidecars", 0, "name"), "triton"),
    (("sidecars", 0, "volumeMounts"), [{"name": "logs", "mountPath": "/x"}, {"name": "tokenizer", "mountPath": "/x"}]),
    (("sidecars", 0, "volumeMounts", 0, "name"), "missing"),
    (("initContainers",), [{"name": "log-shipper", "image": "busybox"}]),
    (("initContainers",), [{"name": "warm-up", "image": "busybox"}]),
    (("securityContext",), {"allowPrivilegeEscalation": False, "privileged": True}),
    (("securityContext",), {"allowPrivilegeEscalation": False, "capabilities": {"add": ["CAP_SYS_ADMIN"]}}),
    (("podSecurityContext", "seccompProfile"), {"type": "Localhost"}),
    (("podSecurityContext", "seccompProfile"), {"type": "Localhost", "localhostProfile": "profiles/triton.json"}),
    (("podSecurityContext", "appArmorProfile"), {"type": "RuntimeDefault", "localhostProfile": "triton"}),
    (("topologySpreadConstraints", 0, "minDomains"), 2),
    (("topologySpreadConstraints",), [SPREAD, SPREAD]),
    (("topologySpreadConstraints",), [SPREAD, {**SPREAD, "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2}]),
]
TRAFFIC_FEATURES: dict[str, Any] = {
    "match": {"header": {"name": "x-canary", "value": "yes"}, "cookie": {"name": "beta", "value": "on"}},
    "sessionAffinity": {"cookieName": "session", "maxAge": "1h"},
}
EDGES: list[tuple[str, Path_, Any]] = [
    # model.models' cross-field rules (manifests/examples/ensemble.yaml).
    ("classifier", ("spec", "model", "name"), "resnet"),
    ("classifier", ("spec", "model", "version"), "3"),
    ("classifier", ("spec", "model", "models"), ["*"]),
    ("classifier", ("spec", "model", "models"), ["*", "pipeline"]),
    ("classifier", ("spec", "model", "models"), ["pipeline", "resnet", "pipeline"]),
    ("classifier", ("spec", "rollout", "acceptance", "cases", 0, "model"), DELETE),
    # rollout.strategy InPlace's cross-field rules (manifests/examples/in-place.yaml).
    ("ranker", ("spec", "model", "version"), DELETE),
    ("ranker", ("spec", "triton", "modelControlMode"), "poll"),
    ("ranker", ("spec", "rollout", "analysis", "source"), "prometheus"),
    ("ranker", ("spec", "rollout", "analysis", "checks"), [{"name": "kpi", "query": "vector(1)", "min": 0}]),
    ("ranker", ("spec", "rollout", "strategy"), "Canary"),
    # rollout.strategy Experiment's rules (manifests/examples/experiment.yaml).
    ("recommender", ("spec", "rollout", "experiment"), DELETE),
    ("recommender", ("spec", "rollout", "strategy"), "Canary"),
    ("recommender", ("spec", "rollout", "strategy"), DELETE),
    ("recommender", ("spec", "rollout", "steps"), [20]),
    ("recommender", ("spec", "rollout", "steps"), None),
    *[
        ("recommender", ("spec", "model"), {"storageUri": "s3://b/r", "models": models})
        for models in (["*"], ["recommender", "ranker"])
    ],
    *[
        (
            "recommender",
            ("spec", "rollout", "experiment", "metrics"),
            [{"name": n, "query": "vector(1)"} for n in names],
        )
        for names in (["kpi", "kpi"], ["kpi", "orders"], [])
    ],
    *[("recommender", ("spec", "rollout", "experiment", "weight"), w) for w in (0, 1, 79, 80, 99, 100)],
    # rollout.experiment.variants (A/B/n).
    *[
        ("recommender", ("spec", "rollout", "experiment", "variants"), variants)
        for variants in (
            [],
            [{"name": "c", "weight": 20, "model": {"version": "2"}}, {"name": "c", "weight": 1, "image": "t:2"}],
            [{"name": "c", "weight": 20, "model": {"version": "2"}}, {"name": "d", "weight": 1, "image": "t:2"}],
            [{"name": "c", "weight": 59, "model": {"version": "2"}}, {"name": "d", "weight": 1, "image": "t:2"}],
            [{"name": "c", "weight": 1, "model": {}}],
            [{"name": "c", "weight": 1}],
            [{"name": "C", "weight": 1, "image": "t:2"}],
            [{"name": "c", "weight": 0, "image": "t:2"}],
        )
    ],
    ("recommender", ("spec", "traffic"), {"provider": "nginx", "nginx": {"host": "r.example.com"}}),
    ("recommender", ("spec", "traffic"), {"provider": "istio", "istio": {"hosts": ["r.example.com"]}}),
    ("recommender", ("spec", "traffic"), {"provider": "service"}),
    *[
        (
            "recommender",
            ("spec",),
            {
                "model": {"storageUri": "s3://b/r", "models": ["recommender", "ranker"]},
                "rollout": {
                    "strategy": "Experiment",
                    "experiment": {"duration": "1h", "variants": [{"name": "c", "weight": 1, "model": model}]},
                },
            },
        )
        for model in ({"version": "2"}, {"storageUri": "s3://b/c"})
    ],
    *[("recommender", ("spec", "rollout", "experiment", "duration"), d) for d in ("0s", "1s", "720h", "720h0.001ms")],
    ("ranker", ("spec", "rollout", "shadow"), {"percent": 10, "duration": "1m"}),
    *[("kitchen-gateway", ("spec", "rollout", "interval"), d) for d in ("0s", "999ms", "1s", "24h", "24h0.001ms")],
    *[("kitchen-gateway", ("spec", "rollout", "readinessTimeout"), d) for d in ("0s", "1s", "24h", "23h60m0.001ms")],
    *[("kitchen-gateway", ("spec", "rollout", "analysis", "noDataTimeout"), d) for d in ("0s", "24h", "24h0.001ms")],
    *[
        ("kitchen-gateway", ("spec", "rollout", "acceptance", "timeout"), d)
        for d in ("0s", "0.001ms", "5m", "300.001s")
    ],
    ("kitchen-gateway", ("spec", "rollout", "interval"), "9999999999h"),
    ("kitchen-gateway", (*TOLERATIONS, 1), {"operator": "Exists", "value": "x"}),
    ("kitchen-gateway", (*TOLERATIONS, 1), {"operator": "Exists", "value": ""}),
    ("kitchen-gateway", (*TOLERATIONS, 1), {"key": "", "operator": "Equal", "value": "x"}),
    ("kitchen-gateway", (*TOLERATIONS, 0, "tolerationSeconds"), 10),
    ("kitchen-gateway", ("spec", "triton", "resources"), {"limits": "8Gi"}),
    ("kitchen-gateway", ("spec", "triton", "resources", "limits", "cpu"), "8.5"),
    ("kitchen-gateway", ("spec", "triton", "resources", "limits", "cpu"), 8.5),
    ("kitchen-gateway", ("spec", "triton", "env", 0), {"name": "X"}),
    (
        "kitchen-gateway",
        ("spec", "triton", "env", 0),
        {"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ),
    (
        "kitchen-gateway",
        ("spec", "triton", "affinity"),
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
    ),
    ("kitchen-gateway", ("spec", "traffic", "gateway", "parentRefs", 0), {"namespace": "gateways"}),
    ("kitchen-gateway", ("spec", "rollout", "analysis", "successRate"), None),
    ("kitchen-gateway", ("spec", "rollout", "analysis", "successRate"), {"enabled": False}),
    *[
        ("kitchen-gateway", ("spec", "rollout", "analysis", "gpuMemory"), g)
        for g in (
            {"maxBytes": "20Gi", "maxIncreasePercent": 10},
            {"maxBytes": 1},
            {"maxBytes": "0.5n"},
            {"maxBytes": "0.0Gi"},
            {"maxBytes": 0},
            {"maxIncreasePercent": 0},
            {},
        )
    ],
    ("kitchen-istio", ("spec", "rollout", "analysis", "gpuMemory"), {"maxBytes": "20Gi"}),  # gpus: 0
    ("kitchen-istio", ("spec", "autoscaling", "metrics", 0), {"type": "Resource", "resource": "cpu"}),
    (
        "kitchen-istio",
        ("spec", "autoscaling", "metrics", 1),
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": 10}}},
    ),
    ("kitchen-istio", ("spec", "autoscaling", "metrics", 1, "resource", "target", "type"), "Value"),
    ("kitchen-istio", ("spec", "traffic", "istio", "hosts", 0), "Not A Host"),
    ("kitchen-gateway", ("spec", "traffic", "gateway", "parentRefs"), []),
    ("kitchen-gateway", ("spec", "autoscaling", "minReplicas"), 9),
    ("kitchen-gateway", ("spec", "rollout", "steps"), [5, 5, 50]),
    ("kitchen-gateway", ("spec", "rollout", "analysis", "checks", 0, "max"), None),
    ("kitchen-gateway", ("spec", "autoscaling", "metrics", 0, "type"), "Pods"),
    ("kitchen-gateway", ("spec", "autoscaling", "metrics", 1, "pods", "target", "type"), "Value"),
    (
        "kitchen-gateway",
        ("spec", "autoscaling", "metrics", 2, "object", "target"),
        {"type": "Utilization", "averageUtilization": 50},
    ),
    ("kitchen-gateway", ("spec", "autoscaling", "metrics", 0, "resource", "target", "value"), 1),
    ("kitchen-gateway", ("spec", "triton", "env", 2, "valueFrom", "fieldRef"), {"fieldPath": "spec.nodeName"}),
    ("kitchen-gateway", (*PREFERRED_NODE, 0, "preference", "matchExpressions", 0, "values"), ["1", "2"]),
    ("kitchen-gateway", (*REQUIRED_POD, 0, "labelSelector", "matchExpressions", 0, "values"), []),
    ("kitchen-gateway", (*REQUIRED_NODE, "nodeSelectorTerms", 0, "matchExpressions", 1, "values"), ["x"]),
    ("kitchen-nginx", ("spec", "traffic", "nginx", "path"), "api"),
    ("kitchen-nginx", ("spec", "traffic", "nginx", "path"), "/a/../b"),
    ("kitchen-nginx", ("spec", "traffic", "nginx"), None),
    ("kitchen-service", ("spec", "triton", "gpus"), "1"),
    ("kitchen-service", ("spec", "rollout", "paused"), "true"),
    *[("kitchen-service", ("metadata", "name"), n) for n in ("1model", "my.model", "a" * 52, "a" * 53, "a-")],
    *[("llm-mig", (*POD, *path), value) for path, value in POD_SETTINGS_EDGES],
    # traffic.match, traffic.sessionAffinity and rollout.shadow against the providers.
    *[("kitchen-service", ("spec", "traffic", field), value) for field, value in TRAFFIC_FEATURES.items()],
    *[("kitchen-istio", ("spec", "traffic", field), value) for field, value in TRAFFIC_FEATURES.items()],
    ("kitchen-service", ("spec", "rollout", "shadow"), {"percent": 10, "duration": "1m"}),
    ("kitchen-istio", ("spec", "rollout", "shadow"), {"percent": 10, "duration": "1m"}),
    ("kitchen-nginx", ("spec", "rollout", "shadow"), {"percent": 99, "duration": "1m"}),
    ("kitchen-nginx", ("spec", "rollout", "shadow"), {"percent": 100, "duration": "1m"}),
    ("kitchen-nginx", ("spec", "traffic", "match"), {"cookie": {"name": "beta", "value": "on"}}),
    ("kitchen-nginx", ("spec", "traffic", "match"), {"cookie": {"name": "beta", "value": "always"}}),
    (
        "kitchen-nginx",
        ("spec", "traffic", "match"),
        {"cookie": {"name": "beta"}, "header": {"name": "x", "value": "1"}},
    ),
    ("kitchen-gateway", ("spec", "traffic", "match"), {}),
    ("kitchen-gateway", ("spec", "traffic", "match"), {"header": {"name": "X-Canary", "value": "1"}}),
    ("kitchen-gateway", ("spec", "traffic", "match"), {"header": {"name": "x_canary", "value": "1"}}),
    ("kitchen-gateway", ("spec", "traffic", "match"), {"header": {"name": "x-canary", "value": "1 "}}),
    ("kitchen-gateway", ("spec", "traffic", "match"), {"cookie": {"name": "a;b", "value": "1"}}),
    ("kitchen-gateway", ("spec", "traffic", "match"), {"cookie": {"name": "a", "value": "x y"}}),
    *[
        ("kitchen-gateway", ("spec", "traffic", "sessionAffinity"), {"maxAge": d})
        for d in ("0s", "720h", "720h0.001ms")
    ],
    ("kitchen-gateway", ("spec", "traffic", "sessionAffinity"), {"cookieName": "a=b"}),
]
NAMES = ["resnet", "1model", "my.model", "My-model", "model-", "a" * 52, "a" * 53, "r", "a-b-c", "x" * 254, ""]


def load_bases() -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((HERE / "differential_bases.yaml").read_text()))
    for path in sorted((REPO / "manifests" / "examples").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "InferenceService"]
    return docs


# ---------------------------------------------------------------- the schema, as a generator needs it


def schema_at(path: Path_) -> dict[str, Any] | None:
    node: dict[str, Any] | None = ROOT
    for part in path:
        if node is None:
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif "properties" in node:
            node = node["properties"].get(part)
        else:
            extra = node.get("additionalProperties")
            node = extra if isinstance(extra, dict) else None
    return node


def _matching(pattern: str) -> list[str]:
    regex = re.compile(pattern.replace("$", r"\Z"))
    return [s for s in STRINGS if regex.search(s)]


def sample_value(schema: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A value the schema probably admits (CEL rules aside): required fields only, smallest numbers."""
    if schema.get("x-kubernetes-int-or-string"):
        return rng.choice([1, "250m", "1Gi"])
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        if "properties" not in schema:
            return {"key": "value"} if isinstance(schema.get("additionalProperties"), dict) else {}
        return {name: sample_value(schema["properties"][name], rng, depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        items = schema.get("items") or {}
        return [] if depth > 4 or not items.get("type") else [sample_value(items, rng, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1)) + (1 if schema.get("exclusiveMinimum") else 0)
    if kind == "number":
        return float(schema.get("minimum", 0.5)) + (0.5 if schema.get("exclusiveMinimum") else 0)
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "string":
        candidates = _matching(schema["pattern"]) if "pattern" in schema else ["a", "value"]
        candidates = [c for c in candidates if len(c) <= schema.get("maxLength", 10**6)] or ["a"]
        return rng.choice(candidates)
    return rng.choice([1, "a", True])


def candidates_for(value: Any, schema: dict[str, Any] | None, rng: random.Random) -> list[Any]:
    """Replacement values for one field: wrong types, nulls, boundaries, strings worth trying."""
    out = list(WRONG_TYPES)
    schema = schema or {}
    if "enum" in schema:
        out += [*schema["enum"], "Invalid", str(schema["enum"][0]).upper()]
    if schema.get("type") in ("integer", "number") or isinstance(value, int | float):
        for bound in ("minimum", "maximum"):
            if bound in schema:
                edge = schema[bound]
                out += [edge - 1, edge, edge + 1] if schema.get("type") == "integer" else [edge - 0.5, edge, edge + 0.5]
        out += [2**63, 10**12, 0.001]
    if schema.get("type") == "string" or isinstance(value, str) or schema.get("x-kubernetes-int-or-string"):
        if "maxLength" in schema and schema["maxLength"] <= 2000:
            base = value if isinstance(value, str) and value else "a"
            out += [(base * schema["maxLength"])[: schema["maxLength"]], "a" * (schema["maxLength"] + 1)]
        pool = _matching(schema["pattern"]) if "pattern" in schema else []
        out += rng.sample(pool, min(16, len(pool))) + rng.sample(STRINGS, 8)
        if isinstance(value, str):
            out += [value.upper(), value + "\n", " " + value]
    if isinstance(value, list):
        out += [[], value[:1] * 2, value[1:], [*value, None], [*value, "x"]]
        if "maxItems" in schema and value:
            out.append((value * (schema["maxItems"] + 1))[: schema["maxItems"] + 1])
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out += [sorted(value, reverse=True), [*value, 100], [0, *value]]
    if isinstance(value, dict):
        out += [{**value, "bogus": 1}, dict(reversed(list(value.items()))) if value else {"a": "b"}]
    if schema:
        out.append(sample_value(schema, rng))
    return out


def walk(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))


def mutated(obj: dict[str, Any], path: Path_, replacement: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    if replacement is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(replacement)
    return out


Mutation = tuple[str, dict[str, Any], Path_, Any]  # label, base, path, replacement


def mutations(base: dict[str, Any], rng: random.Random) -> Iterator[tuple[str, Mutation]]:
    """(field, mutation): every field of ``base`` replaced by each candidate, absent optional fields filled in."""
    name = base["metadata"]["name"]
    for path, value in walk(base["spec"], ("spec",)):
        schema = schema_at(path)
        if len(path) > 1:
            for replacement in candidates_for(value, schema, rng):
                yield _dotted(path), (f"{name}: {_dotted(path)} = {_label(replacement)}", base, path, replacement)
        if isinstance(value, dict) and schema and "properties" in schema:
            for key, sub in schema["properties"].items():
                if key not in value:
                    field = _dotted((*path, key))
                    yield field, (f"{name}: {field} += sample", base, (*path, key), sample_value(sub, rng))
    for new_name in NAMES:
        yield "metadata.name", (f"{name}: metadata.name = {new_name[:20]!r}", base, ("metadata", "name"), new_name)


def _label(replacement: Any) -> str:
    return "delete" if replacement is DELETE else json.dumps(replacement, default=str)[:40]


def _dotted(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def generate() -> list[tuple[str, dict[str, Any]]]:
    """The bases, then single mutations spread evenly over the fields, then a few mutations at once."""
    rng = random.Random(SEED)
    bases = load_bases()
    by_field: dict[str, list[Mutation]] = {}
    for base in bases:
        for field, mutation in mutations(base, rng):
            by_field.setdefault(re.sub(r"\[\d+\]", "[]", field), []).append(mutation)
    queues = [rng.sample(group, len(group)) for _, group in sorted(by_field.items())]
    chosen = [(f"{base['metadata']['name']}: as is", base) for base in bases]
    named = {base["metadata"]["name"]: base for base in bases}
    for name, path, value in EDGES:
        chosen.append((f"{name}: {_dotted(path)} = {_label(value)} (edge)", mutated(named[name], path, value)))
    while len(chosen) < TARGET * 3 // 4:
        for queue in queues:
            if queue and len(chosen) < TARGET * 3 // 4:
                label, base, path, replacement = queue.pop()
                chosen.append((label, mutated(base, path, replacement)))
    while len(chosen) < TARGET:
        label, spec = rng.choice(chosen)
        fields = [(path, value) for path, value in walk(spec.get("spec"), ("spec",)) if len(path) > 1]
        if not fields:
            continue
        path, value = rng.choice(fields)
        replacement = rng.choice(candidates_for(value, schema_at(path), rng))
        chosen.append((f"{label}; {_dotted(path)} = {_label(replacement)}", mutated(spec, path, replacement)))
    return chosen


# ---------------------------------------------------------------- the test


def test_admission_and_parse_spec_agree_on_every_generated_spec() -> None:
    admission = Admission(ROOT)
    config = OperatorConfig()
    specs = generate()
    admitted = parsed = rendered = 0
    disagreements: list[str] = []
    crashes: list[str] = []
    render_errors: Counter[str] = Counter()
    dump = []
    for label, obj in specs:
        refusals = admission.admit(obj)
        try:
            parse_spec(obj)
            parse_error = None
        except BuildError as error:
            parse_error = f"{error.reason}: {error}"
        except Exception as error:  # the point: nothing but BuildError
            crashes.append(f"{label}: parse_spec raised {type(error).__name__}: {error}")
            continue
        admitted += not refusals
        parsed += parse_error is None
        if (not refusals) != (parse_error is None):
            disagreements.append(f"{label}: admission {refusals[:2] or 'admits'}; parse_spec {parse_error or 'parses'}")
        if parse_error is None:
            try:
                render(obj, config)
                rendered += 1
            except BuildError as error:
                render_errors[error.reason] += 1
            except Exception as error:
                crashes.append(f"{label}: render raised {type(error).__name__}: {error}")
        with contextlib.suppress(TypeError, ValueError):  # what kubectl cannot send is not replayed
            dump.append({"label": label, "object": as_sent(obj), "admitted": not refusals})
    if os.environ.get("TRITONOP_DIFFERENTIAL_DUMP"):
        lines = (json.dumps(entry, default=str) for entry in dump)
        Path(os.environ["TRITONOP_DIFFERENTIAL_DUMP"]).write_text("\n".join(lines) + "\n")
    print(
        f"differential: {len(specs)} specs, {admitted} admitted, {len(specs) - admitted} refused, "
        f"{len(disagreements)} disagreements; of the admitted, {rendered} rendered and "
        f"{sum(render_errors.values())} raised BuildError {dict(render_errors)}"
    )
    assert not crashes, "\n".join(crashes[:20])
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements[:30])
    assert len(specs) >= 2000
    # Every CEL rule refused some spec (except those the schema already implies), so each was compared.
    implied = {rule for rule in cel_rules(ROOT) if rule.startswith(SCHEMA_IMPLIED_RULES)}
    assert cel_rules(ROOT) - implied - set(admission.refusing_rules) == set()
    # Not vacuous: plenty of specs on either side of the line.
    assert admitted >= len(specs) // 5 and len(specs) - admitted >= len(specs) // 5
