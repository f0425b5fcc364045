"""kopf wiring only: every watch event goes to the object's loop, which runs the Controller.

Handlers are registered into an explicit registry built from the operator config
(the tick interval is a setting), so importing this module registers nothing.

kopf watches InferenceServices and hands every event to the object's loop
(controller/loops.py), which the operator owns: no kopf create/update/resume handler or
daemon, so kopf writes nothing to the objects (docs/architecture.md, "Object loops"). The
loop ticks, then sleeps until a change wakes it (any watch event of the object, or of a child
or pod it owns, through the watch cache) or until the tick asked to run again (only while
something is time-driven). A settled object therefore costs no request and no work.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from tritonop import GROUP, PLURAL, VERSION, metrics
from tritonop.config import OperatorConfig
from tritonop.controller import Controller
from tritonop.controller.loops import PASSES_PER_API_SLOT, ObjectLoops
from tritonop.kube.client import KubeClient, discover_connection, watch_cache
from tritonop.kube.credentials import Credentials, discover
from tritonop.notify import Notifier
from tritonop.rollout import Event

log = logging.getLogger("tritonop")

LEGACY_FINALIZER = f"{GROUP}/finalizer"

# How long startup waits for the watch caches to list everything before serving: until then
# reads go to the API server, so this only trades startup requests for startup time.
CACHE_SYNC_TIMEOUT_S = 60.0


def _post_event(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(kopf.Body(cast(kopf.RawBody, dict(body))), type=event.type, reason=event.reason, message=event.message)


def connection_info(credentials: Credentials) -> kopf.ConnectionInfo:
    """kopf's form of our credentials; kopf logs in again once ``expiration`` passes."""
    pair = credentials.client_cert()
    token = credentials.token()
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_path=credentials.ca_file if not credentials.ca_pem else None,
        ca_data=base64.b64encode(credentials.ca_pem).decode() if credentials.ca_pem else None,
        insecure=credentials.insecure,
        scheme="Bearer" if token else None,
        token=token,
        certificate_data=base64.b64encode(pair[0]).decode() if pair else None,
        private_key_data=base64.b64encode(pair[1]).decode() if pair else None,
        default_namespace=credentials.namespace,
        expiration=credentials.expiration(),
    )


def _follow_pauses(state: dict[str, Any]) -> None:
    """Pause the object loops whenever kopf pauses the operator (HA: a peer with a higher
    priority is active), and resume them with it, as kopf does with its own daemons.

    kopf has no public hook for this: its pause is a toggle set handed to the root task that
    stops daemons (`daemons.daemon_killer`), so that task is wrapped to follow the same toggles.
    tests/integration/operator/test_peering.py fails if a kopf upgrade changes it."""
    from kopf._core.engines import daemons  # kopf's internals: here only

    original = getattr(daemons.daemon_killer, "__wrapped__", daemons.daemon_killer)

    @functools.wraps(original)
    async def daemon_killer(*, operator_paused: Any, **kwargs: Any) -> None:
        follower = asyncio.ensure_future(_follow(state, operator_paused))
        try:
            await original(operator_paused=operator_paused, **kwargs)
        finally:
            follower.cancel()

    daemons.daemon_killer = daemon_killer


async def _follow(state: dict[str, Any], paused: Any) -> None:
    while True:
        await paused.wait_for(True)
        state["paused"] = True
        if "loops" in state:
            log.info("paused by kopf peering: every object loop stops until the operator resumes")
            await state["loops"].pause()
        await paused.wait_for(False)
        state["paused"] = False
        if "loops" in state:
            state["loops"].resume()  # kopf lists every object again: their loops start anew


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    state: dict[str, Any] = {}
    resource = (GROUP, VERSION, PLURAL)
    _follow_pauses(state)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials our own client uses: in-cluster service account, else the
        # kubeconfig as kubectl reads it (kopf's own kubeconfig login runs no exec plugins).
        return connection_info(discover(in_cluster_first=True))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # No handler here needs a finalizer. Naming the one earlier versions added (for their
        # daemon) lets kopf remove it from objects that still carry it: one PATCH each, once.
        settings.persistence.finalizer = LEGACY_FINALIZER
        # We post our own Events with reasons users can filter on; from kopf's log lines only
        # warnings and errors (e.g. a handler that keeps failing) become Events.
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # kopf's per-object workers stay unbounded (settings.queueing.worker_limit): the API
        # client's --api-concurrency slots are the bound. Measured (docs/benchmarks.md, "Scale"),
        # a limit of 64 drained a burst of 1,000 creations in steps of 64, ~3 objects/s, slower
        # than without, as converged objects' ticks take the API throughput the next step needs.
        if config.namespaces and not any(set(ns) & set("*?[!") for ns in config.namespaces):
            # Exact names: nothing to discover, and namespace-scoped installs grant no
            # cluster-wide Namespace list (kopf would retry that for a minute before serving).
            settings.scanning.disabled = True
        post_event = _post_event
        if config.notifications_file:
            notifier = state["notifier"] = Notifier.from_file(config.notifications_file)
            await notifier.start()

            def post_event(body: Mapping[str, Any], event: Event) -> None:
                _post_event(body, event)
                notifier.notify(body, event)  # queues only: never blocks or fails the reconcile

        connection = discover_connection()
        kube = KubeClient(connection, concurrency=config.api_concurrency)
        running = state["controller"] = Controller(kube, config, post_event=post_event)
        loops = state["loops"] = ObjectLoops(running, concurrency=PASSES_PER_API_SLOT * config.api_concurrency)
        if state.get("paused"):
            await loops.pause()
        cache = state["cache"] = watch_cache(connection, config.namespaces or None, on_change=running.child_changed)
        kube.use_cache(cache)
        cache.start()
        if not await cache.wait_synced(CACHE_SYNC_TIMEOUT_S):
            log.warning(
                "watch caches not synced after %.0f s; reading from the API server meanwhile", CACHE_SYNC_TIMEOUT_S
            )
        state["metrics"] = await metrics.serve(config.metrics_port)
        log.info("tritonop started; metrics and /healthz on :%s", config.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if "loops" in state:
            await state["loops"].aclose()
        if "cache" in state:
            await state["cache"].aclose()
        if "controller" in state:
            await state["controller"].aclose()
            await state["controller"].kube.aclose()
        if "metrics" in state:
            await state["metrics"].cleanup()
        if "notifier" in state:
            await state["notifier"].aclose()

    @kopf.on.event(*resource, registry=registry)
    async def changed(event: kopf.RawEvent, **_: Any) -> None:  # async: a sync handler costs a thread hop
        # Every watch event goes to the object's loop (controller/loops.py): its first starts it,
        # a spec change reconciles, any other change (annotations such as promote/abort, a status
        # written by someone else) wakes its tick, deletion stops it.
        if "loops" in state:
            state["loops"].event(event["type"], event["object"])

    return registry
