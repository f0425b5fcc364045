"""Parsing a raw InferenceService into its spec, with one-line messages for what is wrong.

parse_spec admits exactly what the API server admits with the generated CRD, so that
`tritonop render` is a faithful validator and the operator never meets a spec it reads
differently from the cluster:
- nulls are dropped where the API server drops them (fields with a schema), so `null`
  means "absent, use the default", never "off";
- types are strict, as in JSON: "1" is not a number and "true" not a boolean (but 2.0 is
  the integer 2, as the API server decodes and stores it);
- metadata.name must make valid Service names (reason InvalidName).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import ValidationError

from tritonop.api.crd import spec_schema
from tritonop.api.kube_types import (
    ABSOLUTE_PATH,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    EXTENDED_RESOURCE,
    HOSTNAME,
    LABEL_VALUE_PATTERN,
    OPTIONAL_QUALIFIED_NAME,
    QUALIFIED_NAME,
    RELATIVE_PATH,
)
from tritonop.api.models import (
    ISTIO_GATEWAY,
    ISTIO_HOST,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    NGINX_PATH,
    STORAGE_URI_PATTERN,
    InferenceServiceSpec,
)
from tritonop.children.errors import BuildError
from tritonop.durations import DURATION_PATTERN

INVALID_SPEC = "InvalidSpec"
INVALID_NAME = "InvalidName"
MAX_REPORTED_ERRORS = 3
# pydantic's wording for the error types people hit most, in kubectl's terms.
ERROR_WORDING = {"missing": "required", "extra_forbidden": "unknown field"}
# What a pattern means, for "must be ..." messages; others are quoted.
PATTERN_WORDING = {
    DURATION_PATTERN: "a duration such as 30s, 1m30s, 2h or 500ms (at most 5 digits, and 3 after the point, "
    "per number)",
    NGINX_PATH: "/ or a path of /-separated segments of letters, digits, _ and -",
    HOSTNAME: "a lowercase DNS name, optionally starting with *.",
    ISTIO_HOST: "* or a lowercase DNS name, optionally starting with *.",
    ISTIO_GATEWAY: "a Gateway as [NAMESPACE/]NAME, or mesh",
    DNS_LABEL: "a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
    DNS_SUBDOMAIN: "a DNS subdomain (lowercase letters, digits, '-' and '.')",
    QUALIFIED_NAME: "a label key: [DNS-subdomain/]name, the name of letters, digits, '-', '_' and '.'",
    OPTIONAL_QUALIFIED_NAME: "empty or a label key: [DNS-subdomain/]name",
    LABEL_VALUE_PATTERN: "a label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    STORAGE_URI_PATTERN: "a URI starting with s3://, gs://, as://, pvc://, http://, https:// or file://",
    ABSOLUTE_PATH: "an absolute path without '.', '..' or empty segments, ':' or whitespace (e.g. /etc/app)",
    RELATIVE_PATH: "a relative path without '.', '..' or empty segments, not starting with '..', without whitespace "
    "(e.g. conf/app.yaml)",
    EXTENDED_RESOURCE: "an extended resource name DOMAIN/NAME (e.g. nvidia.com/gpu, nvidia.com/mig-1g.10gb)",
}


def parse_spec(obj: Mapping[str, Any]) -> InferenceServiceSpec:
    """The validated spec of a raw InferenceService dict; BuildError (InvalidSpec, InvalidName) if invalid."""
    check_name(obj)
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise BuildError(INVALID_SPEC, "spec: required")
    try:
        stored = json.loads(json.dumps(spec, allow_nan=False, default=_json_value), parse_float=_as_stored)
    except (TypeError, ValueError) as error:
        raise BuildError(INVALID_SPEC, f"spec: not representable as JSON: {error}") from None
    text = json.dumps(drop_nulls(stored, _spec_schema()))
    try:
        return InferenceServiceSpec.model_validate_json(text, strict=True)
    except ValidationError as error:
        raise BuildError(INVALID_SPEC, one_line(error)) from None


def check_name(obj: Mapping[str, Any]) -> None:
    """BuildError(InvalidName) unless metadata.name (when given) can name the Services NAME and NAME-REVISION."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        return  # no name: IsvcRef.from_object reports it
    if len(name) > NAME_MAX_LENGTH or not re.fullmatch(NAME_PATTERN, name):
        raise BuildError(
            INVALID_NAME,
            f"metadata.name {name!r} must be a DNS-1035 label of at most {NAME_MAX_LENGTH} characters "
            "(lowercase letters, digits and '-', starting with a letter, ending with a letter or digit): "
            "it names the Services NAME and NAME-REVISION",
        )


def drop_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` without the nulls the API server drops: in fields and map values the schema declares.

    Nulls in list items and in free-form (preserve-unknown-fields) values stay, and fail
    validation where a type is expected, as they do at admission.
    """
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        values = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key) if properties is not None else values if isinstance(values, Mapping) else None
            if sub is None:
                out[key] = item
            elif item is not None or sub.get("nullable"):
                out[key] = drop_nulls(item, sub)
        return out
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [drop_nulls(item, items) for item in value]
    return value


def _as_stored(text: str) -> int | float:
    """A JSON number as the API server stores it: 2.0 comes back as 2 (and is a valid integer there)."""
    number = float(text)
    return int(number) if number.is_integer() and abs(number) < 1e21 else number


@cache
def _spec_schema() -> dict[str, Any]:
    return spec_schema()


def _json_value(value: object) -> str:
    # YAML timestamps: kubectl sends them as the strings they were written as.
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def one_line(error: ValidationError) -> str:
    """e.g. "spec.rollout.steps: must be strictly increasing"; the first few errors, joined by '; '."""
    details = error.errors(include_url=False, include_input=False)
    messages = [_describe(detail["loc"], detail["type"], _message(detail)) for detail in details[:MAX_REPORTED_ERRORS]]
    if len(details) > MAX_REPORTED_ERRORS:
        messages.append(f"and {len(details) - MAX_REPORTED_ERRORS} more")
    return " ".join("; ".join(messages).split())


def _message(detail: Any) -> str:
    if detail["type"] == "string_pattern_mismatch":
        pattern = detail.get("ctx", {}).get("pattern", "")
        return f"must be {PATTERN_WORDING[pattern]}" if pattern in PATTERN_WORDING else f"must match {pattern}"
    return str(detail["msg"])


def _describe(loc: tuple[int | str, ...], error_type: str, message: str) -> str:
    parts = [str(part) for part in loc if isinstance(part, str)]
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = ERROR_WORDING.get(error_type, message.removeprefix("Value error, "))
    message = message.replace("Input should be ", "must be ", 1)
    # Our validators name the field themselves ("rollout.steps must ..."): say it once.
    for start in range(len(parts)):
        field_path = ".".join(parts[start:])
        if message.startswith(field_path + " "):
            message = message[len(field_path) + 1 :]
            break
    return f"{path}: {message}"
