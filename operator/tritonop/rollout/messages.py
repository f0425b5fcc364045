"""Human-readable summaries of analysis results for status messages and Events.

Convention for ``CheckResult.bound``: the requirement as a comparison, e.g. ">= 0.99"
or "<= 250". A failed check then reads as the violation: "success-rate 0.7 < 0.99".
"""

from __future__ import annotations

from collections.abc import Sequence

from tritonop.api.models import CheckResult

# The comparison that holds when a requirement is violated; two-character operators first.
_VIOLATION = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe_failure(check: CheckResult) -> str:
    """One failed check with its value and bound; a sequential check's own sentence says more."""
    if check.evidence is not None and check.message:
        return f"{check.name}: {check.message}"
    if check.value is None:
        return f"{check.name}: {check.message or 'failed'}"
    value = f"{check.value:.4g}"
    bound = (check.bound or "").strip()
    for operator, violated in _VIOLATION.items():
        if bound.startswith(operator):
            return f"{check.name} {value} {violated} {bound.removeprefix(operator).strip()}"
    if bound:
        return f"{check.name} {value} (bound {bound})"
    return f"{check.name} {value}"


def describe_failures(checks: Sequence[CheckResult]) -> str:
    failures = [describe_failure(c) for c in checks if c.result == "Fail"]
    return "; ".join(failures) or "analysis failed"


def describe_missing_data(checks: Sequence[CheckResult]) -> str:
    missing = [f"{c.name}: {c.message or c.result}" for c in checks if c.result in ("NoData", "Error")]
    return "; ".join(missing) or "no analysis results"
