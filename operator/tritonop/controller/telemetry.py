"""The operator's own metrics about each object's rollout (see tritonop.metrics)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable

from tritonop import metrics
from tritonop.api.models import CheckResult, Phase
from tritonop.children.refs import IsvcRef
from tritonop.rollout import Event, RolloutState

ROLLBACK_REASONS = ("RolledBack", "RolloutFailed", "Aborted")
PHASES = tuple(p.value for p in Phase)
PASS_KINDS = ("reconcile", "tick")  # the kinds of pass every object has: no per-object record of them
# One side of a check's bound as the analysis writes it (judge.Bound.text): ">= 0.99", "<= 50ms".
_BOUND_SIDE = re.compile(r"(>=|<=)\s*([-+0-9.eE]+|[-+]?inf)")


def bound_sides(text: str | None) -> dict[str, float]:
    """``">= 1 and <= 5ms"`` -> ``{"min": 1.0, "max": 5.0}``; what does not parse is left out."""
    sides: dict[str, float] = {}
    for op, number in _BOUND_SIDE.findall(text or ""):
        try:
            sides["min" if op == ">=" else "max"] = float(number)
        except ValueError:
            continue
    return sides


class RolloutTelemetry:
    def __init__(self) -> None:
        self._weight_series: dict[tuple[str, str], str] = {}  # the canary-weight series per object
        # Per object, the check-value series (check) and check-bound series (check, side).
        self._check_values: dict[tuple[str, str], set[str]] = {}
        self._check_bounds: dict[tuple[str, str], set[tuple[str, str]]] = {}
        # Pass-counter series of kinds other than PASS_KINDS, per object (none today).
        self._other_passes: dict[tuple[str, str], set[str]] = {}

    def phase(self, namespace: str, name: str, phase: Phase | str | None) -> None:
        """1 for the phase the status now shows, 0 for every other phase (all 0 while unset)."""
        metrics.PHASE.set_phase(namespace, name, phase.value if isinstance(phase, Phase) else phase)

    def analysis(self, ref: IsvcRef, checks: Iterable[CheckResult]) -> None:
        """Each check's value and bound from the analysis that just ran. A check without a value
        (no data, an error) has no value series until it has one again; checks the analysis no
        longer runs lose theirs."""
        key = (ref.namespace, ref.name)
        values: set[str] = set()
        bounds: set[tuple[str, str]] = set()
        for check in checks:
            if check.value is not None:
                metrics.CHECK_VALUE.labels(ref.namespace, ref.name, check.name).set(check.value)
                values.add(check.name)
            for side, bound in bound_sides(check.bound).items():
                metrics.CHECK_BOUND.labels(ref.namespace, ref.name, check.name, side).set(bound)
                bounds.add((check.name, side))
        for check_name in self._check_values.get(key, set()) - values:
            metrics.CHECK_VALUE.remove(ref.namespace, ref.name, check_name)
        for check_name, side in self._check_bounds.get(key, set()) - bounds:
            metrics.CHECK_BOUND.remove(ref.namespace, ref.name, check_name, side)
        self._check_values[key], self._check_bounds[key] = values, bounds

    def canary_weight(self, ref: IsvcRef, state: RolloutState) -> None:
        """One series per object: the previous canary's goes when the canary changes."""
        key, revision = (ref.namespace, ref.name), state.canary or ""
        previous = self._weight_series.get(key)
        if previous is not None and previous != revision:
            metrics.CANARY_WEIGHT.remove(ref.namespace, ref.name, previous)
        metrics.CANARY_WEIGHT.labels(ref.namespace, ref.name, revision).set(state.weight)
        self._weight_series[key] = revision

    def count(self, ref: IsvcRef, event: Event) -> None:
        if event.reason == "Promoted":
            metrics.PROMOTIONS.labels(ref.namespace, ref.name).inc()
        elif event.reason in ROLLBACK_REASONS:
            metrics.ROLLBACKS.labels(ref.namespace, ref.name, event.reason).inc()

    @contextlib.asynccontextmanager
    async def pass_of(self, key: tuple[str, str], kind: str) -> AsyncIterator[None]:
        """Counts the pass once it has ended (however it ended): a count is of finished passes."""
        try:
            yield
        finally:
            metrics.PASSES.labels(*key, kind).inc()
            if kind not in PASS_KINDS:
                self._other_passes.setdefault(key, set()).add(kind)

    def time_driven(self, key: tuple[str, str], driven: bool) -> None:
        metrics.TIME_DRIVEN.labels(*key).set(1 if driven else 0)

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a deleted object."""
        for kind in (*PASS_KINDS, *self._other_passes.pop((namespace, name), ())):
            metrics.PASSES.remove(namespace, name, kind)  # compact families: no error if absent
        metrics.TIME_DRIVEN.remove(namespace, name)
        revision = self._weight_series.pop((namespace, name), None)
        if revision is not None:
            metrics.CANARY_WEIGHT.remove(namespace, name, revision)
        metrics.PHASE.forget(namespace, name)
        for check_name in self._check_values.pop((namespace, name), set()):
            metrics.CHECK_VALUE.remove(namespace, name, check_name)
        for check_name, side in self._check_bounds.pop((namespace, name), set()):
            metrics.CHECK_BOUND.remove(namespace, name, check_name, side)
