"""Scenario stages on a running local stack: deploy a first version, roll out the next one.

Each stage applies the InferenceService for a model variant and watches status, Events
and the router until the operator has decided, recording what it saw on the way (canary
weights, timings, the canary's traffic), so the demo, the e2e tests and the benchmark
judge the same observations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from e2e.local.harness import NAME, NAMESPACE, LocalStack

# Events that end a canary.
OUTCOMES = ("Promoted", "RolledBack", "RolloutFailed", "Aborted")
POLL_S = 0.1


@dataclass(frozen=True)
class Traffic:
    """What the router sent one revision during a stage."""

    successes: int
    failures: int
    unavailable: int

    @property
    def requests(self) -> int:
        return self.successes + self.failures + self.unavailable

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None


@dataclass
class RolloutRecord:
    """Everything a rollout stage observed."""

    variant: str
    stable_before: str | None
    canary: str | None = None
    outcome: str | None = None  # one of OUTCOMES
    status: dict[str, Any] = field(default_factory=dict)  # the status once decided
    events: list[dict[str, Any]] = field(default_factory=list)  # Events emitted during the stage
    weights: list[int] = field(default_factory=list)  # distinct canary weights seen, in order
    canary_seen_s: float | None = None  # apply -> canaryRevision in status (CanaryStarted)
    first_step_s: float | None = None  # apply -> the canary's first traffic weight in status
    decided_s: float | None = None  # apply -> the outcome in status
    canary_traffic: Traffic = Traffic(0, 0, 0)
    stable_traffic: Traffic = Traffic(0, 0, 0)

    @property
    def reasons(self) -> list[str]:
        return [e.get("reason", "") for e in self.events]

    @property
    def canary_to_decision_s(self) -> float | None:
        """From the canary's start (CanaryStarted) to the operator's decision."""
        if self.canary_seen_s is None or self.decided_s is None:
            return None
        return self.decided_s - self.canary_seen_s

    def event(self, reason: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("reason") == reason), None)


async def deploy(stack: LocalStack, variant: str, *, name: str = NAME, timeout: float = 90.0) -> dict[str, Any]:
    """Create the InferenceService with ``variant``; return its status once Ready."""
    await stack.apply(stack.inference_service(variant, name=name))
    return await stack.wait_until(
        lambda: (s := stack.status(name)).get("phase") == "Ready" and s, timeout, f"{name} ({variant}) Ready"
    )


async def roll_out(
    stack: LocalStack,
    variant: str,
    *,
    name: str = NAME,
    timeout: float = 120.0,
    spec_changes: Mapping[str, Any] | None = None,
    folder: str | None = None,
) -> RolloutRecord:
    """Change the InferenceService to ``variant`` and wait for the canary's outcome.

    ``spec_changes`` are merged into spec.rollout (e.g. a shorter readinessTimeout);
    ``folder`` rolls out a fresh copy of the variant (see LocalStack.inference_service).
    """
    isvc = stack.inference_service(variant, name=name, folder=folder)
    if spec_changes:
        isvc["spec"]["rollout"] = _merged(isvc["spec"]["rollout"], spec_changes)
    record = RolloutRecord(variant, stack.status(name).get("stableRevision"))
    seen_events = {_event_id(e) for e in stack.events(name)}
    before = _snapshot(stack, name)
    started = time.monotonic()
    await stack.apply(isvc)
    await stack.wait_until(lambda: _observe(stack, name, record, started), timeout, f"the outcome of {variant}")
    # kopf posts Events asynchronously: give the outcome's Event a moment to land.
    await stack.wait_until(
        lambda: any(e.get("reason") in OUTCOMES for e in _new_events(stack, name, seen_events)),
        10.0,
        f"the outcome Event of {variant}",
    )
    record.events = _new_events(stack, name, seen_events)
    record.outcome = next(e["reason"] for e in record.events if e.get("reason") in OUTCOMES)
    after = _snapshot(stack, name)
    if record.canary is not None:
        record.canary_traffic = _delta(before.get(record.canary), after.get(record.canary))
    if record.stable_before is not None:
        record.stable_traffic = _delta(before.get(record.stable_before), after.get(record.stable_before))
    return record


async def wait_for_weight(stack: LocalStack, weight: int, *, name: str = NAME, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the canary serves ``weight`` percent; returns that status."""
    return await stack.wait_until(
        lambda: (
            (s := stack.status(name)).get("canaryRevision") and (s.get("canary") or {}).get("weight") == weight and s
        ),
        timeout,
        f"canary weight {weight}%",
    )


def _observe(stack: LocalStack, name: str, record: RolloutRecord, started: float) -> bool:
    """Record what the status shows now; True once the operator has decided on the canary."""
    status = stack.status(name)
    elapsed = time.monotonic() - started
    canary = status.get("canaryRevision")
    if canary and canary != record.stable_before and record.canary is None:
        record.canary, record.canary_seen_s = canary, elapsed
    if canary and canary == record.canary:
        weight = (status.get("canary") or {}).get("weight", 0)
        if weight and (not record.weights or record.weights[-1] != weight):
            record.weights.append(weight)
            if record.first_step_s is None:
                record.first_step_s = elapsed
    decided = (
        record.canary is not None
        and canary is None
        and record.canary
        in (
            status.get("stableRevision"),
            status.get("failedRevision"),
        )
    )
    if decided:
        record.status, record.decided_s = status, elapsed
    return decided


def _snapshot(stack: LocalStack, name: str) -> dict[str, Traffic]:
    return {
        revision: Traffic(t.successes, t.failures, t.unavailable)
        for revision, t in stack.router.revisions(NAMESPACE, name).items()
    }


def _delta(before: Traffic | None, after: Traffic | None) -> Traffic:
    before = before or Traffic(0, 0, 0)
    after = after or Traffic(0, 0, 0)
    return Traffic(
        after.successes - before.successes, after.failures - before.failures, after.unavailable - before.unavailable
    )


def _new_events(stack: LocalStack, name: str, seen: set[str]) -> list[dict[str, Any]]:
    return [e for e in stack.events(name) if _event_id(e) not in seen]


def _event_id(event: Mapping[str, Any]) -> str:
    return (event.get("metadata") or {}).get("uid", "")


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out
