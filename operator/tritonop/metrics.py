"""The operator's own Prometheus metrics, and the HTTP server for /metrics and /healthz."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tritonop.api.models import Phase

REGISTRY = CollectorRegistry()


class Family(Collector):
    """A labelled gauge or counter whose series are plain floats in one dict, keyed by their
    label values. Every InferenceService has several series (its phases, passes, clock, canary
    weight); a prometheus_client child costs ~700 bytes (an object, a lock, a value holder), a
    float in this dict ~100. The subset of prometheus_client's API the operator uses:
    ``labels(...).set/inc``, ``remove``, ``clear``. A counter exports ``NAME_total`` only (no
    ``_created``)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *, counter: bool, registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.counter = counter
        self.values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Series:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, not {len(values)}")
        return _Series(self, tuple(str(v) for v in values))

    def remove(self, *values: str) -> None:
        """Forget one series (no error if it is not there)."""
        self.values.pop(tuple(str(v) for v in values), None)

    def clear(self) -> None:
        self.values.clear()

    def _family(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self.counter:
            return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def samples(self) -> Iterable[tuple[tuple[str, ...], float]]:
        return self.values.items()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, value in list(self.samples()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield self._family()


class _Series:
    """One series of a Family: a handle made on each ``labels()`` call, holding nothing itself."""

    __slots__ = ("family", "key")

    def __init__(self, family: Family, key: tuple[str, ...]) -> None:
        self.family, self.key = family, key

    def set(self, value: float) -> None:
        if self.family.counter:
            raise TypeError(f"{self.family.name} is a counter: inc() only")
        self.family.values[self.key] = float(value)

    def inc(self, amount: float = 1) -> None:
        if self.family.counter and amount < 0:
            raise ValueError("counters only go up")
        self.family.values[self.key] = self.family.values.get(self.key, 0.0) + amount


class PhaseFamily(Family):
    """The phase gauge: 1 for an object's current phase and 0 for each other phase, stored as
    the one current phase per object (one dict entry instead of a series per phase)."""

    def __init__(self, name: str, documentation: str, phases: Sequence[str], *, registry: CollectorRegistry) -> None:
        self.phases = tuple(phases)
        self.current: dict[tuple[str, str], str | None] = {}
        super().__init__(name, documentation, ("namespace", "name", "phase"), counter=False, registry=registry)

    def set_phase(self, namespace: str, name: str, phase: str | None) -> None:
        self.current[(namespace, name)] = phase

    def forget(self, namespace: str, name: str) -> None:
        self.current.pop((namespace, name), None)

    def clear(self) -> None:
        self.current.clear()

    def samples(self) -> Iterable[tuple[tuple[str, ...], float]]:
        for (namespace, name), current in list(self.current.items()):
            for phase in self.phases:
                yield (namespace, name, phase), 1.0 if phase == current else 0.0


RECONCILES = Counter(
    "tritonop_reconciles", "Reconciles by result (success, error, invalid).", ["result"], registry=REGISTRY
)
RECONCILE_DURATION = Histogram(
    "tritonop_reconcile_duration_seconds",
    "Time spent in one reconcile or rollout tick.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
# Series every InferenceService has: compact Families (see Family).
PASSES = Family(
    "tritonop_passes",
    "Passes the operator ran over an InferenceService: reconcile (create, spec change, resume) or tick "
    "(a change to it or its children woke it, or a time-driven step).",
    ["namespace", "name", "pass"],
    counter=True,
    registry=REGISTRY,
)
TIME_DRIVEN = Family(
    "tritonop_time_driven",
    "1 while the InferenceService's ticks run on a clock (a canary, a first revision's unready pod, a retry); "
    "0 while it waits for a change (no requests, no work).",
    ["namespace", "name"],
    counter=False,
    registry=REGISTRY,
)
MANAGED = Gauge(
    "tritonop_managed_inferenceservices",
    "InferenceServices this operator manages (each counted once, however often its handlers run).",
    registry=REGISTRY,
)
CANARY_WEIGHT = Family(
    "tritonop_canary_weight_percent",
    "Current canary traffic percent (0-100).",
    ["namespace", "name", "revision"],
    counter=False,
    registry=REGISTRY,
)
PHASE = PhaseFamily(
    "tritonop_inferenceservice_phase",
    "1 for the InferenceService's current status.phase, 0 for the other phases.",
    tuple(p.value for p in Phase),
    registry=REGISTRY,
)
CHECK_VALUE = Gauge(
    "tritonop_analysis_check_value",
    "The value a check of the latest canary analysis measured (in the check's own unit: "
    "a ratio, milliseconds or percent; see status.canary.lastAnalysis).",
    ["namespace", "name", "check"],
    registry=REGISTRY,
)
CHECK_BOUND = Gauge(
    "tritonop_analysis_check_bound",
    "The bound a check's value is judged against (bound=min: value >= it passes; bound=max: value <= it passes).",
    ["namespace", "name", "check", "bound"],
    registry=REGISTRY,
)
ANALYSES = Counter(
    "tritonop_analysis", "Canary analyses by verdict.", ["namespace", "name", "verdict"], registry=REGISTRY
)
PROMOTIONS = Counter("tritonop_promotions", "Canaries promoted.", ["namespace", "name"], registry=REGISTRY)
ROLLBACKS = Counter(
    "tritonop_rollbacks", "Canaries rolled back or failed.", ["namespace", "name", "reason"], registry=REGISTRY
)


class ManagedSet:
    """The InferenceServices this process manages, keyed by namespace/name: a handler kopf
    retries (or create followed by resume) counts an object once; delete forgets it once."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._keys: set[tuple[str, str]] = set()

    def add(self, namespace: str, name: str) -> None:
        self._keys.add((namespace, name))
        self._gauge.set(len(self._keys))

    def discard(self, namespace: str, name: str) -> None:
        self._keys.discard((namespace, name))
        self._gauge.set(len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


MANAGED_OBJECTS = ManagedSet(MANAGED)

# Notifications (tritonop.notify): one series per sink name and result
# (sent, retried, failed, dropped). docs/notifications.md.
NOTIFICATIONS = Counter(
    "tritonop_notifications",
    "Notifications by sink and result: sent, retried (an attempt to be repeated), failed, dropped (queue full).",
    ["sink", "result"],
    registry=REGISTRY,
)


class Timer:
    """Context manager observing RECONCILE_DURATION."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        RECONCILE_DURATION.observe(time.perf_counter() - self._start)


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(_: web.Request) -> web.Response:
    # Served from the operator's own event loop: an answer proves the loop is not stuck.
    return web.json_response({"status": "ok"})


async def serve(port: int, host: str = "0.0.0.0") -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
