"""What the Triton gates return: verdicts with a stable reason and a human message.

Reasons are CamelCase strings that end up in status conditions and Events, so they
never change spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    # readiness
    READY = "Ready"
    SERVER_UNREACHABLE = "ServerUnreachable"
    SERVER_NOT_READY = "ServerNotReady"
    MODEL_NOT_READY = "ModelNotReady"
    MODEL_LOAD_FAILED = "ModelLoadFailed"
    VERSION_NOT_LOADED = "VersionNotLoaded"
    # acceptance (ServerUnreachable too)
    ACCEPTANCE_PASSED = "AcceptancePassed"
    ACCEPTANCE_INFERENCE_ERROR = "AcceptanceInferenceError"
    ACCEPTANCE_OUTPUT_MISMATCH = "AcceptanceOutputMismatch"


@dataclass(frozen=True)
class Readiness:
    """Whether a revision's Triton serves the model (and pinned version) now."""

    ready: bool
    reason: str
    message: str


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one acceptance case."""

    name: str
    passed: bool
    reason: str
    message: str


@dataclass(frozen=True)
class AcceptanceResult:
    """The outcome of all acceptance cases; reason and message are the first failure's."""

    passed: bool
    reason: str
    message: str
    cases: list[CaseResult] = field(default_factory=list)
