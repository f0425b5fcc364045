"""The operator's own Prometheus metrics, and the HTTP server for /metrics and /healthz."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

RECONCILES = Counter(
    "tritonop_reconciles", "Reconciles by result (success, error, invalid).", ["result"], registry=REGISTRY
)
RECONCILE_DURATION = Histogram(
    "tritonop_reconcile_duration_seconds",
    "Time spent in one reconcile or rollout tick.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
PASSES = Counter(
    "tritonop_passes",
    "Passes the operator ran over an InferenceService: reconcile (create, spec change, resume) or tick "
    "(a change to it or its children woke it, or a time-driven step).",
    ["namespace", "name", "pass"],
    registry=REGISTRY,
)
TIME_DRIVEN = Gauge(
    "tritonop_time_driven",
    "1 while the InferenceService's ticks run on a clock (a canary, a first revision's unready pod, a retry); "
    "0 while it waits for a change (no requests, no work).",
    ["namespace", "name"],
    registry=REGISTRY,
)
MANAGED = Gauge(
    "tritonop_managed_inferenceservices",
    "InferenceServices this operator manages (each counted once, however often its handlers run).",
    registry=REGISTRY,
)
CANARY_WEIGHT = Gauge(
    "tritonop_canary_weight_percent",
    "Current canary traffic percent (0-100).",
    ["namespace", "name", "revision"],
    registry=REGISTRY,
)
PHASE = Gauge(
    "tritonop_inferenceservice_phase",
    "1 for the InferenceService's current status.phase, 0 for the other phases.",
    ["namespace", "name", "phase"],
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
