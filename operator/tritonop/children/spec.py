"""Parsing a raw InferenceService into its spec, with one-line messages for what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.errors import BuildError

INVALID_SPEC = "InvalidSpec"
MAX_REPORTED_ERRORS = 3
# pydantic's wording for the error types people hit most, in kubectl's terms.
ERROR_WORDING = {"missing": "required", "extra_forbidden": "unknown field"}


def parse_spec(obj: Mapping[str, Any]) -> InferenceServiceSpec:
    """The validated spec of a raw InferenceService dict; BuildError(reason="InvalidSpec") if invalid."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise BuildError(INVALID_SPEC, "spec: required")
    try:
        return InferenceServiceSpec.model_validate(dict(spec))
    except ValidationError as error:
        raise BuildError(INVALID_SPEC, one_line(error)) from None


def one_line(error: ValidationError) -> str:
    """e.g. "spec.rollout.steps: must be strictly increasing"; the first few errors, joined by '; '."""
    details = error.errors(include_url=False, include_input=False)
    messages = [_describe(detail["loc"], detail["type"], detail["msg"]) for detail in details[:MAX_REPORTED_ERRORS]]
    if len(details) > MAX_REPORTED_ERRORS:
        messages.append(f"and {len(details) - MAX_REPORTED_ERRORS} more")
    return " ".join("; ".join(messages).split())


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
