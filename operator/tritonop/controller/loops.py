"""One loop per InferenceService, owned by the operator and fed by the object's watch events.

kopf delivers the watch events (handlers.py, `on.event`); everything else is ours. An
object's loop starts at its first event and, on each turn:
- reconciles on its first turn (forced when the object already has a status: a restart
  re-applies every child once, repairing drift made while the operator was away), when its
  spec changed (`metadata.generation`), or when one of its children changed;
- then ticks, and sleeps until a watch event wakes it or the tick's delay passes (a delay
  only while something is time-driven: a settled object sleeps until an event).
Deletion (a `deletionTimestamp`, or the DELETED event) stops it; the children go through
their ownerReferences.

Why not kopf's create/update/resume handlers and a daemon: they cost every object two writes
of itself (kopf's finalizer, which a daemon requires, and its last-handled annotation) and
kopf's per-event cause detection and JSON patching (docs/benchmarks.md, "kopf's two writes").
Which spec was handled is `metadata.generation` here, the same fact the status reports as
`observedGeneration`; nothing needs writing to remember it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tritonop import metrics
from tritonop.controller.status_store import Key, object_key
from tritonop.kube.client import KubeError
from tritonop.packing import INFERENCE_SERVICES
from tritonop.rollout import Event

log = logging.getLogger("tritonop")

CONFLICT_RETRY_S = 1.0  # a 409: the object changed under a decision; re-read and re-decide promptly
API_RETRY_S = 10.0  # other API trouble (5xx, timeouts) is temporary
FAILURE_RETRY_S = (10.0, 300.0)  # an unexpected error (a bug): first and longest retry, doubling
# Passes under way at once, per API request slot (--api-concurrency). The API slots bound the
# throughput already; this bounds the memory of a burst: without it, 10,000 objects created at
# once all build their children and wait for a slot holding them (docs/benchmarks.md).
PASSES_PER_API_SLOT = 8


class Waker:
    """What wakes one object's sleeping loop: asyncio.Event's set, clear and wait for a single
    waiter, in a fraction of its memory (an Event and its deque of waiters are ~1.1 KB, and
    every object has one; this holds a future only while its loop sleeps)."""

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._set = False
        self._future: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            return
        assert self._future is None, "a Waker has one waiter: its object's loop"
        self._future = asyncio.get_running_loop().create_future()
        try:
            await self._future
        finally:
            self._future = None


class Passes(Protocol):
    """What a loop asks of the Controller (orchestrator.py)."""

    async def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> None: ...
    async def tick(self, body: Mapping[str, Any]) -> float | None: ...
    def changed(self, body: Mapping[str, Any]) -> None: ...
    def waker(self, body: Mapping[str, Any]) -> Waker: ...
    def take_child_change(self, body: Mapping[str, Any]) -> bool: ...
    def forget(self, body: Mapping[str, Any]) -> None: ...
    def post_event(self, body: Mapping[str, Any], event: Event) -> None: ...


@dataclass(eq=False, slots=True)
class _Loop:
    kept: bytes = b""  # the newest body the watch delivered, packed (see `body`)
    uid: str | None = None
    task: asyncio.Task[None] | None = None
    stopped: bool = False
    previous: asyncio.Task[None] | None = None  # the loop of a deleted object of the same name

    @property
    def body(self) -> Mapping[str, Any]:
        """The newest body, unpacked anew: each sleeping object keeps its body packed, a tenth of
        its parsed size (docs/benchmarks.md, "Memory at 10,000"), and a pass unpacks it once."""
        body: Mapping[str, Any] = INFERENCE_SERVICES.unpack(self.kept)
        return body

    def keep(self, body: Mapping[str, Any]) -> None:
        self.kept, self.uid = _kept(body), _uid(body)


class ObjectLoops:
    def __init__(self, passes: Passes, *, concurrency: int = 256, retry_scale: float = 1.0) -> None:
        self.passes = passes
        self._slots = asyncio.Semaphore(concurrency)  # passes under way at once
        self._retry_scale = retry_scale  # tests shorten the retry delays
        self._loops: dict[Key, _Loop] = {}
        self._stopping: dict[Key, asyncio.Task[None]] = {}  # stopped loops' tasks, not ended yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._context: contextvars.Context | None = None
        self._paused = False

    def __len__(self) -> int:
        return len(self._loops)

    def event(self, kind: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of an InferenceService (``kind`` ADDED, MODIFIED, DELETED, or None
        for the initial listing)."""
        if self._paused:
            return  # another operator is active; kopf lists everything again on resuming
        key = object_key(body)
        loop = self._loops.get(key)
        if loop is not None and loop.uid != _uid(body):
            self._stop(key)  # deleted and created again while a DELETED event was missed
            loop = None
        if kind == "DELETED" or (body.get("metadata") or {}).get("deletionTimestamp"):
            if loop is not None:
                self._stop(key)
            return
        if loop is None:
            self._start(key, body)
            return
        loop.keep(body)
        self.passes.changed(body)

    async def pause(self) -> None:
        """Stop every loop (a pass under way is cancelled) and ignore events until ``resume``:
        another operator is active (handlers.py, kopf peering). Returns once all have ended."""
        self._paused = True
        for key in list(self._loops):
            self._stop(key)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def resume(self) -> None:
        self._paused = False

    async def aclose(self) -> None:
        await self.pause()

    def _start(self, key: Key, body: Mapping[str, Any]) -> None:
        loop = self._loops[key] = _Loop(previous=self._stopping.pop(key, None))
        loop.keep(body)
        metrics.MANAGED_OBJECTS.add(*key)
        if self._context is None:
            # Our tasks run in the context of the first event: kopf's Event posting (kopf.event)
            # reads its queue from a context variable set there. Each loop gets a copy.
            self._context = contextvars.copy_context()
        loop.task = asyncio.get_running_loop().create_task(self._run(key, loop), context=self._context.copy())
        self._tasks.add(loop.task)
        # With our context: a callback added without one keeps a copy of the current context,
        # here kopf's handler context, which holds the event's whole body for the loop's life.
        loop.task.add_done_callback(self._tasks.discard, context=self._context)

    def _stop(self, key: Key) -> None:
        loop = self._loops.pop(key)
        loop.stopped = True
        metrics.MANAGED_OBJECTS.discard(*key)
        self.passes.forget(loop.body)  # also wakes it, to see it is stopped
        if loop.task is not None and not loop.task.done():
            loop.task.cancel()  # a pass under way for a deleted object has nothing left to do
            self._stopping[key] = loop.task
            loop.task.add_done_callback(lambda task: self._ended(key, task), context=self._context)

    def _ended(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._stopping.get(key) is task:
            del self._stopping[key]

    async def _run(self, key: Key, loop: _Loop) -> None:
        if loop.previous is not None:
            # The same name deleted moments ago: let its last pass end, then forget what it
            # left, so nothing of it (its status writes above all) is taken for this object's.
            await asyncio.wait({loop.previous})
            self.passes.forget(loop.body)
            loop.previous = None
        waker = self.passes.waker(loop.body)
        handled: int | None = None  # the generation last reconciled; None: not yet this process
        failures = 0
        while not loop.stopped:
            waker.clear()
            handled, delay, failures = await self._pass(key, loop, handled, failures)
            await _sleep(waker, delay)

    async def _pass(
        self, key: Key, loop: _Loop, handled: int | None, failures: int
    ) -> tuple[int | None, float | None, int]:
        """One turn: (the generation handled, how long to sleep, failures in a row). Its own
        coroutine so the parsed body is gone before the loop sleeps: a sleeping object keeps its
        body packed only (docs/benchmarks.md, "Memory at 10,000")."""
        body: Mapping[str, Any] = {}
        try:
            async with self._slots:
                body = loop.body  # the newest, after waiting for a slot
                child_changed = self.passes.take_child_change(body)
                if handled is None or child_changed or _generation(body) != handled:
                    await self.passes.reconcile(body, force=handled is None and bool(body.get("status")))
                    handled = _generation(body)
                return handled, await self.passes.tick(body), 0
        except KubeError as err:
            delay = (CONFLICT_RETRY_S if err.status == 409 else API_RETRY_S) * self._retry_scale
            log.warning("%s/%s: pass failed, retrying in %.0f s: %s", *key, delay, err)
            return handled, delay, failures
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug: say so where the user looks, and retry; never end the loop
            first_delay, longest = FAILURE_RETRY_S
            delay = min(longest, first_delay * 2**failures) * self._retry_scale
            log.exception("%s/%s: pass failed unexpectedly, retrying in %.0f s", *key, delay)
            self.passes.post_event(body or loop.body, Event("Warning", "PassFailed", f"{type(err).__name__}: {err}"))
            return handled, delay, failures + 1


async def _sleep(waker: Waker, delay: float | None) -> None:
    """Until ``waker`` is set or ``delay`` seconds pass (None: no limit), with no task of its
    own: a sleeping object holds its loop's frame only (docs/benchmarks.md, memory per object)."""
    if delay is None:
        await waker.wait()  # no timeout object to keep: most objects sleep like this
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await waker.wait()


def _kept(body: Mapping[str, Any]) -> bytes:
    """The object as a loop keeps it: packed, without `metadata.managedFields`, which no pass
    reads and which is a large part of each body (docs/benchmarks.md, "Object loops")."""
    meta = body.get("metadata") or {}
    if "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return INFERENCE_SERVICES.pack(dict(body))


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _uid(body: Mapping[str, Any]) -> str | None:
    uid = (body.get("metadata") or {}).get("uid")
    return str(uid) if uid is not None else None
