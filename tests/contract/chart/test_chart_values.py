"""values.yaml against values.schema.json, and helm itself enforcing the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.helm import CHART_DIR, run_helm, template_args

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

# Each is a mistake a user could make; helm must refuse to render with it.
BAD_VALUES: dict[str, dict[str, Any]] = {
    "unknown-top-level-key": {"replicaCount": 2},
    "misspelt-nested-key": {"ha": {"enable": True}},
    "wrong-type": {"ha": {"replicas": "two"}},
    "string-for-boolean": {"serviceMonitor": {"enabled": "yes"}},
    "namespace-not-a-dns-label": {"watchNamespaces": ["Team_A"]},
    "privileged-metrics-port": {"operator": {"metricsPort": 80}},
    "single-replica-ha": {"ha": {"enabled": True, "replicas": 1}},
    "prometheus-url-without-scheme": {"operator": {"prometheusUrl": "prometheus:9090"}},
    "allowed-prometheus-url-with-userinfo": {"operator": {"allowedPrometheusUrls": ["http://u:p@prom:9090"]}},
    "allowed-file-path-relative": {"operator": {"allowedFilePaths": ["models"]}},
    "metrics-selector-as-a-map": {"networkPolicy": {"metricsNamespaceSelector": {"name": "monitoring"}}},
    "metrics-selector-without-value": {"networkPolicy": {"metricsPodSelector": "app"}},
}


def object_schemas(schema: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every sub-schema that declares properties, with a readable location."""
    found = [(path, schema)] if "properties" in schema else []
    for name, child in schema.get("properties", {}).items():
        found += object_schemas(child, f"{path}.{name}")
    for name, child in schema.get("definitions", {}).items():
        found += object_schemas(child, f"#/definitions/{name}")
    items = schema.get("items")
    if isinstance(items, dict):
        found += object_schemas(items, f"{path}[]")
    return found


def test_schema_is_draft_07() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_every_defined_object_rejects_unknown_keys() -> None:
    # extraEnv items are Kubernetes EnvVars: their shape belongs to Kubernetes, not to us.
    loose = [path for path, sub in object_schemas(SCHEMA) if sub.get("additionalProperties") is not False]
    assert loose == ["$.operator.extraEnv[]"]


def test_values_yaml_satisfies_schema() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def test_schema_describes_every_default_value() -> None:
    assert set(VALUES) == set(SCHEMA["properties"])
    for key, value in VALUES.items():
        if isinstance(value, dict) and "properties" in SCHEMA["properties"][key]:
            assert set(value) <= set(SCHEMA["properties"][key]["properties"]), key


def schema_at(path: list[str]) -> dict[str, Any] | None:
    schema: dict[str, Any] | None = SCHEMA
    for key in path:
        schema = (schema or {}).get("properties", {}).get(key)
    return schema


def test_every_value_is_documented() -> None:
    # Every leaf key on a level the schema defines has a comment right above it; keys inside
    # pass-through Kubernetes values (resources.requests.cpu, ...) are the user's business.
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        key, _, rest = stripped.partition(":")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = [k for _, k in stack]
        stack.append((indent, key))
        parent_schema = schema_at(parent)
        if parent_schema is None or "properties" not in parent_schema or rest.strip() == "":
            continue
        assert lines[index - 1].strip().startswith("#"), f"values.yaml line {index + 1}: {key} has no comment"


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_are_rejected_by_helm_and_schema(case: str, tmp_path: Path) -> None:
    bad = BAD_VALUES[case]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate({**VALUES, **bad})
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(bad))
    result = run_helm(template_args(values_files=[values_file]))
    assert result.returncode != 0, f"helm rendered with {bad}"
    assert "schema" in result.stderr.lower(), result.stderr
