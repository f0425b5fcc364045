"""The operator's own metrics about each object's rollout (see tritonop.metrics)."""

from __future__ import annotations

from tritonop import metrics
from tritonop.children.refs import IsvcRef
from tritonop.rollout import Event, RolloutState

ROLLBACK_REASONS = ("RolledBack", "RolloutFailed", "Aborted")


class RolloutTelemetry:
    def __init__(self) -> None:
        self._weight_series: dict[tuple[str, str], str] = {}  # the canary-weight series per object

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

    def forget(self, namespace: str, name: str) -> None:
        revision = self._weight_series.pop((namespace, name), None)
        if revision is not None:
            metrics.CANARY_WEIGHT.remove(namespace, name, revision)
