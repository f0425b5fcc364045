"""What the API server admits with the generated CRD, emulated offline for the API tests.

Creating an InferenceService, the API server (apiextensions-apiserver):
1. receives JSON as kubectl (or Argo CD) sends a YAML file: no NaN or infinity, keys are
   strings, an integral float (YAML 2.0) is written as 2; integers beyond int64 decode as floats;
2. drops nulls where the schema declares the field or map value (not nullable here);
3. rejects unknown fields (kubectl's default --validate=strict; without it they are pruned,
   and the operator would never see them);
4. checks metadata.name is a DNS-1123 subdomain;
5. validates the OpenAPI v3 schema: draft-4 keywords (boolean exclusiveMinimum, 1.5 is
   not an integer), patterns in Go's RE2 where `$` is the end of the text, and
   int-or-string nodes;
6. evaluates every x-kubernetes-validations CEL rule on its node (at the root, metadata is
   only name and generateName); an evaluation error rejects.

cel-python stands in for cel-go; Kubernetes' list extension isSorted() is supplied here.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import cache
from itertools import pairwise
from typing import Any

import celpy
import jsonschema
from celpy import celtypes
from jsonschema import validators

DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _re2(pattern: str) -> str:
    """A Go RE2 pattern in Python's terms: `$` (not in multi-line mode) is the end of the text."""
    return re.sub(r"(?<!\\)\$", r"\\Z", pattern)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_re2(pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


OpenAPIValidator = validators.extend(jsonschema.Draft4Validator, {"pattern": _pattern})


def _is_sorted(values: Any) -> celtypes.BoolType:
    items = list(values)
    return celtypes.BoolType(all(a <= b for a, b in pairwise(items)))


def _matches(text: Any, pattern: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_compiled(str(pattern)).search(str(text)) is not None)


class Admission:
    """admit(obj) -> the reasons the API server would refuse ``obj`` (empty: admitted)."""

    def __init__(self, root_schema: Mapping[str, Any]) -> None:
        self.root = root_schema
        # The spec's sections are validated one by one and remembered: mutated specs share most of them.
        spec = root_schema["properties"]["spec"]
        self.sections = {name: OpenAPIValidator(sub) for name, sub in spec["properties"].items()}
        shallow_spec = {**spec, "properties": {key: {} for key in spec["properties"]}}
        self.shallow = OpenAPIValidator(
            {**root_schema, "properties": {**root_schema["properties"], "spec": shallow_spec}}
        )
        self._section_errors: dict[tuple[str, str], list[str]] = {}
        self.cel = celpy.Environment()
        self._programs: dict[str, Any] = {}
        self._verdicts: dict[tuple[str, str], bool] = {}
        self.refusing_rules: Counter[str] = Counter()  # rule -> specs it refused

    def admit(self, obj: Any) -> list[str]:
        try:
            wire = as_sent(obj)
        except (TypeError, ValueError) as error:
            return [f"not JSON: {error}"]
        wire = prune_nulls(wire, self.root)
        errors = [f"{path}: unknown field" for path in unknown_fields(wire, self.root)]
        name = (wire.get("metadata") or {}).get("name") if isinstance(wire, dict) else None
        if not isinstance(name, str) or len(name) > 253 or not DNS_1123_SUBDOMAIN.fullmatch(name):
            errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
        errors += self._schema_errors(wire)
        if errors:
            return errors
        failures = list(self._rule_failures(wire, self.root, ""))
        self.refusing_rules.update({rule for _, rule, _ in failures})
        return [f"{path}: {message}" for path, _, message in failures]

    def _schema_errors(self, wire: Any) -> list[str]:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in self.shallow.iter_errors(wire)]
        spec = wire.get("spec") if isinstance(wire, dict) else None
        for name, value in spec.items() if isinstance(spec, dict) else ():
            if name in self.sections:
                key = (name, json.dumps(value, sort_keys=True))
                if key not in self._section_errors:
                    self._section_errors[key] = [
                        f"spec.{name}.{'.'.join(map(str, e.absolute_path))}: {e.message}"
                        for e in self.sections[name].iter_errors(value)
                    ]
                errors += self._section_errors[key]
        return errors

    def _rule_failures(self, value: Any, schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, str, str]]:
        rules = schema.get("x-kubernetes-validations", [])
        if rules:
            for rule in self._failing([r["rule"] for r in rules], _cel_view(value, path)):
                yield path or "<root>", rule, next(r["message"] for r in rules if r["rule"] == rule)
        if isinstance(value, dict):
            properties = schema.get("properties") or {}
            values = schema.get("additionalProperties")
            for key, item in value.items():
                sub = properties.get(key) if key in properties else values if isinstance(values, dict) else None
                if sub is not None:
                    yield from self._rule_failures(item, sub, f"{path}.{key}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                yield from self._rule_failures(item, schema["items"], f"{path}[{index}]")

    def _failing(self, rules: list[str], value: Any) -> list[str]:
        # Specs share most of their parts, and cel-python is slow: remember each verdict, and
        # convert a value to CEL once for all the rules on its node.
        text = json.dumps(value, sort_keys=True)
        missing = [rule for rule in rules if (rule, text) not in self._verdicts]
        if missing:
            activation = {"self": celpy.json_to_cel(value)}
            for rule in missing:
                self._verdicts[rule, text] = self._evaluate(rule, activation)
        return [rule for rule in rules if not self._verdicts[rule, text]]

    def _evaluate(self, rule: str, activation: dict[str, Any]) -> bool:
        if rule not in self._programs:
            self._programs[rule] = self.cel.program(
                self.cel.compile(rule), functions={"isSorted": _is_sorted, "matches": _matches}
            )
        try:
            result = self._programs[rule].evaluate(activation)
        except Exception:  # an evaluation error refuses the object, whatever cel-python raises
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)


def _cel_view(value: Any, path: str) -> Any:
    """What a rule's ``self`` is: the node, but at the root metadata is only name and generateName."""
    if path or not isinstance(value, dict):
        return value
    metadata = value.get("metadata") or {}
    return {
        **{key: item for key, item in value.items() if key != "metadata"},
        "metadata": {key: metadata[key] for key in ("name", "generateName") if key in metadata},
    }


def prune_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop null fields and map values the schema declares (apiextensions' PruneNonNullableNullsWithoutDefaults)."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        values = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = (
                (properties or {}).get(key) if properties is not None else values if isinstance(values, dict) else None
            )
            if sub is not None and item is None and not sub.get("nullable"):
                continue
            out[key] = prune_nulls(item, sub) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_nulls(item, schema["items"]) for item in value]
    return value


def unknown_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Paths of fields the schema does not declare, outside x-kubernetes-preserve-unknown-fields."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        values = schema.get("additionalProperties")
        if properties is None and not isinstance(values, dict):
            return  # free-form, or metadata (the API server validates ObjectMeta itself)
        for key, item in value.items():
            sub = properties.get(key) if properties is not None else values
            if sub is None:
                if not schema.get("x-kubernetes-preserve-unknown-fields"):
                    yield f"{path}.{key}"
            else:
                yield from unknown_fields(item, sub, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")


def as_sent(obj: Any) -> Any:
    """``obj`` as the API server decodes it from kubectl; TypeError or ValueError if it is not JSON."""
    text = json.dumps(obj, allow_nan=False, default=_json_default)
    return json.loads(text, parse_int=_int64_or_float, parse_float=_go_float)


def _go_float(text: str) -> int | float:
    # Go's encoding/json writes a float64 without a fraction as an integer literal ("2", not "2.0").
    number = float(text)
    return int(number) if number.is_integer() and abs(number) < 1e21 else number


def _int64_or_float(text: str) -> int | float:
    """The API server decodes an integer beyond int64 as a float (apimachinery's number conversion)."""
    number = int(text)
    return number if -(2**63) <= number < 2**63 else float(number)


def _json_default(value: object) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def cel_rules(schema: Mapping[str, Any]) -> set[str]:
    """Every CEL rule in ``schema``."""
    rules = {rule["rule"] for rule in schema.get("x-kubernetes-validations", [])}
    for sub in (schema.get("properties") or {}).values():
        rules |= cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            rules |= cel_rules(schema[key])
    return rules
