"""kopf wiring only: every handler hands the object to the Controller.

Handlers are registered into an explicit registry built from the operator config
(the tick interval is a setting), so importing this module registers nothing.

Each InferenceService has one tick loop (a kopf daemon): it ticks, then sleeps until a change
wakes it (any watch event of the object, or of a child or pod it owns, through the watch
cache) or until the tick asked to run again (only while something is time-driven). A settled
object therefore costs no request and no work (docs/architecture.md, "Watch caches").
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from tritonop import GROUP, PLURAL, VERSION, metrics
from tritonop.config import OperatorConfig
from tritonop.controller import Controller
from tritonop.kube.client import KubeClient, KubeError, discover_connection, watch_cache
from tritonop.kube.credentials import Credentials, discover
from tritonop.notify import Notifier
from tritonop.rollout import Event

log = logging.getLogger("tritonop")

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


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


async def _wake_when_stopped(stopped: kopf.DaemonStopped, waker: asyncio.Event) -> None:
    await stopped.wait()
    waker.set()  # the tick loop sees it is stopped


async def _sleep(waker: asyncio.Event, delay: float | None) -> None:
    """Until ``waker`` is set or ``delay`` seconds pass (None: no limit), with no task of its
    own: a sleeping object holds its loop's frame and one waiting task (the stop watcher), not
    three (issue 13, memory per object)."""
    try:
        async with asyncio.timeout(delay):
            await waker.wait()
    except TimeoutError:
        pass


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    state: dict[str, Any] = {}
    resource = (GROUP, VERSION, PLURAL)

    def controller() -> Controller:
        running: Controller = state["controller"]
        return running

    async def guarded(call: Any) -> None:
        try:
            await call
        except KubeError as err:
            # API trouble (conflicts, 5xx, timeouts) is temporary: retry with a delay, never crash.
            # A 409 means the object changed under a decision: re-read and re-decide promptly.
            delay = 1 if err.status == 409 else 10
            raise kopf.TemporaryError(f"Kubernetes API error: {err}", delay=delay) from err

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials our own client uses: in-cluster service account, else the
        # kubeconfig as kubectl reads it (kopf's own kubeconfig login runs no exec plugins).
        return connection_info(discover(in_cluster_first=True))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Chosen once, never changed: changing them makes kopf re-run handlers on every object.
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # We post our own Events with reasons users can filter on; from kopf's log lines only
        # warnings and errors (e.g. a handler that keeps failing) become Events.
        settings.posting.level = logging.WARNING
        # A deleted object keeps its finalizer until its rollout timer has exited; recheck every
        # second (kopf's default is 60 s) so deletion is not held up by a tick that was mid-run.
        settings.background.cancellation_polling = 1
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
        if "cache" in state:
            await state["cache"].aclose()
        if "controller" in state:
            await controller().aclose()
            await controller().kube.aclose()
        if "metrics" in state:
            await state["metrics"].cleanup()
        if "notifier" in state:
            await state["notifier"].aclose()

    @kopf.on.resume(*resource, registry=registry)
    async def resume(body: kopf.Body, **_: Any) -> None:
        metrics.MANAGED_OBJECTS.add(*_key(body))  # a set: retries count once
        # force: re-apply every child once after a restart, repairing drift made while we were away.
        await guarded(controller().reconcile(body, force=True))

    @kopf.on.create(*resource, registry=registry)
    async def create(body: kopf.Body, **_: Any) -> None:
        metrics.MANAGED_OBJECTS.add(*_key(body))
        await guarded(controller().reconcile(body))

    @kopf.on.update(*resource, field="spec", registry=registry)
    async def update(body: kopf.Body, **_: Any) -> None:
        metrics.MANAGED_OBJECTS.add(*_key(body))
        await guarded(controller().reconcile(body))

    @kopf.daemon(*resource, cancellation_backoff=5.0, cancellation_timeout=5.0, registry=registry)
    async def ticks(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        """The object's tick loop; ``body`` is kopf's live view of it."""
        running = controller()
        waker = running.waker(body)
        stop = asyncio.ensure_future(_wake_when_stopped(stopped, waker))
        try:
            while not stopped:
                waker.clear()
                try:
                    if running.take_child_change(body):
                        await running.reconcile(body)  # level-based: puts back what went missing
                    delay = await running.tick(body)
                except KubeError as err:
                    # Temporary (conflicts, 5xx, timeouts): a 409 means the object changed under a
                    # decision, re-read and re-decide promptly; anything else waits a little.
                    delay = 1.0 if err.status == 409 else 10.0
                    log.warning("%s/%s: tick failed, retrying in %.0f s: %s", *_key(body), delay, err)
                await _sleep(waker, delay)
        finally:
            stop.cancel()

    @kopf.on.event(*resource, registry=registry)
    async def changed(body: kopf.Body, **_: Any) -> None:  # async: a sync handler costs a thread hop
        # Any change to the object (annotations such as promote/abort included, and its
        # status written by someone else) wakes its tick loop; a tick with nothing to do
        # costs nothing.
        if "controller" in state:
            controller().changed(body)

    @kopf.on.delete(*resource, optional=True, registry=registry)
    async def delete(body: kopf.Body, **_: Any) -> None:
        # Children go with the parent through ownerReferences; only forget our memory of it.
        metrics.MANAGED_OBJECTS.discard(*_key(body))
        if "controller" in state:
            controller().forget(body)

    return registry
