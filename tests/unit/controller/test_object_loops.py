"""The per-object loops (controller/loops.py): which watch event makes which pass, retries, stops.

The Controller is replaced by a recorder of the passes asked of it, so each test states which
events lead to a reconcile (forced or not), a tick, or nothing; the Controller's own passes are
tested through tests/support/controller_harness.py, and the loops with the real Controller and
kopf in tests/integration/operator.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import sys
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.support.operator_process import eventually
from tritonop import metrics
from tritonop.controller.loops import ObjectLoops, Waker
from tritonop.kube.client import KubeError
from tritonop.packing import INFERENCE_SERVICES
from tritonop.rollout import Event

NS = "ml"


class Passes:
    """Records what the loops ask of the Controller; fails passes on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []  # (pass, name, generation or force)
        self.events: list[Event] = []
        self.forgotten: list[str] = []
        self.delay: float | None = None
        self.fail_next: list[BaseException] = []
        self.hold: asyncio.Event | None = None  # a pass waits on it when set
        self.children_changed: set[str] = set()
        self.wakers: dict[str, Waker] = {}

    async def _pass(self) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> None:
        self.calls.append(("reconcile", _name(body), ("force" if force else "", body["metadata"].get("generation"))))
        await self._pass()

    async def tick(self, body: Mapping[str, Any]) -> float | None:
        self.calls.append(("tick", _name(body), body["metadata"].get("generation")))
        await self._pass()
        return self.delay

    def changed(self, body: Mapping[str, Any]) -> None:
        self.wake(_name(body))

    def wake(self, name: str) -> None:
        if name in self.wakers:
            self.wakers[name].set()

    def waker(self, body: Mapping[str, Any]) -> Waker:
        return self.wakers.setdefault(_name(body), Waker())

    def take_child_change(self, body: Mapping[str, Any]) -> bool:
        changed = _name(body) in self.children_changed
        self.children_changed.discard(_name(body))
        return changed

    def forget(self, body: Mapping[str, Any]) -> None:
        self.forgotten.append(_name(body))
        waker = self.wakers.pop(_name(body), None)
        if waker is not None:
            waker.set()

    def post_event(self, body: Mapping[str, Any], event: Event) -> None:
        self.events.append(event)

    def of(self, name: str, kind: str | None = None) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[1] == name and (kind is None or c[0] == kind)]


def _name(body: Mapping[str, Any]) -> str:
    return str(body["metadata"]["name"])


def body(
    name: str, generation: int = 1, *, uid: str | None = None, status: bool = False, **meta: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"namespace": NS, "name": name, "uid": uid or f"uid-{name}", "generation": generation, **meta}
    }
    if status:
        obj["status"] = {"phase": "Ready"}
    return obj


async def settled(passes: Passes, loops: ObjectLoops, check: Callable[[], Any], what: str) -> None:
    """Wait for ``check``, then let every loop run until it sleeps (nothing left runnable)."""
    await eventually(check, timeout=5, interval=0.005, what=what)
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def loops() -> Any:
    passes = Passes()
    running = ObjectLoops(passes, retry_scale=0.001)
    yield passes, running
    await running.aclose()


async def test_a_new_object_is_reconciled_then_ticked_and_sleeps_until_an_event(loops: Any) -> None:
    passes, running = loops
    running.event("ADDED", body("a"))
    await settled(passes, running, lambda: passes.of("a", "tick"), "the first tick")
    assert passes.of("a") == [("reconcile", "a", ("", 1)), ("tick", "a", 1)]  # no status: not forced
    # A settled object (tick returned None) sleeps: nothing runs until an event.
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(passes.of("a")) == 2


async def test_an_object_with_status_at_first_sight_is_reconciled_with_force(loops: Any) -> None:
    passes, running = loops
    running.event(None, body("b", generation=3, status=True))  # the listing at a restart
    await settled(passes, running, lambda: passes.of("b", "tick"), "the first tick")
    assert passes.of("b", "reconcile") == [("reconcile", "b", ("force", 3))]


async def test_a_spec_change_reconciles_other_changes_only_tick(loops: Any) -> None:
    passes, running = loops
    running.event("ADDED", body("c"))
    await settled(passes, running, lambda: passes.of("c", "tick"), "the first tick")
    running.event("MODIFIED", body("c", annotations={"serving.tritonop.dev/promote": "x"}))  # same generation
    await settled(passes, running, lambda: len(passes.of("c", "tick")) == 2, "the annotation's tick")
    assert len(passes.of("c", "reconcile")) == 1
    running.event("MODIFIED", body("c", generation=2))
    await settled(passes, running, lambda: len(passes.of("c", "tick")) == 3, "the spec change's tick")
    assert passes.of("c", "reconcile")[-1] == ("reconcile", "c", ("", 2))
    assert passes.of("c")[-2:] == [("reconcile", "c", ("", 2)), ("tick", "c", 2)]


async def test_a_child_change_reconciles_before_the_tick(loops: Any) -> None:
    passes, running = loops
    running.event("ADDED", body("d"))
    await settled(passes, running, lambda: passes.of("d", "tick"), "the first tick")
    passes.children_changed.add("d")
    passes.wake("d")
    await settled(passes, running, lambda: len(passes.of("d", "tick")) == 2, "the child change's tick")
    assert [c[0] for c in passes.of("d")] == ["reconcile", "tick", "reconcile", "tick"]


async def test_a_time_driven_object_ticks_again_after_its_delay(loops: Any) -> None:
    passes, running = loops
    passes.delay = 0.01
    running.event("ADDED", body("e"))
    await settled(passes, running, lambda: len(passes.of("e", "tick")) >= 3, "three ticks with no event")
    assert len(passes.of("e", "reconcile")) == 1


async def test_a_failed_reconcile_is_retried_until_it_succeeds(loops: Any) -> None:
    passes, running = loops
    passes.fail_next = [KubeError(503, "unavailable"), KubeError(409, "conflict")]
    running.event("ADDED", body("f", generation=4))
    await settled(passes, running, lambda: passes.of("f", "tick"), "a tick after the retries")
    # Reconciled three times (two failures), each for the same generation; ticks only after success.
    assert [c[0] for c in passes.of("f")] == ["reconcile", "reconcile", "reconcile", "tick"]


async def test_an_unexpected_error_is_reported_and_retried_not_fatal(loops: Any) -> None:
    passes, running = loops
    passes.fail_next = [RuntimeError("a bug")]
    running.event("ADDED", body("g"))
    await settled(passes, running, lambda: passes.of("g", "tick"), "a tick after the retry")
    assert [(e.type, e.reason) for e in passes.events] == [("Warning", "PassFailed")]
    assert "RuntimeError: a bug" in passes.events[0].message
    assert [c[0] for c in passes.of("g")] == ["reconcile", "reconcile", "tick"]


async def test_deletion_stops_the_loop_and_forgets_the_object(loops: Any) -> None:
    passes, running = loops
    passes.delay = 0.01  # time-driven: it would tick again and again
    running.event("ADDED", body("h"))
    await settled(passes, running, lambda: passes.of("h", "tick"), "a tick")
    running.event("MODIFIED", body("h", deletionTimestamp="2026-11-30T12:00:00Z"))
    assert passes.forgotten == ["h"] and len(running) == 0
    ticks = len(passes.of("h"))
    await asyncio.sleep(0.05)  # several of its delays: a stopped loop would have ticked meanwhile
    assert len(passes.of("h")) == ticks
    running.event("DELETED", body("h", deletionTimestamp="2026-11-30T12:00:00Z"))
    assert passes.forgotten == ["h"]  # already stopped: nothing twice


async def test_a_pass_under_way_at_deletion_is_cancelled(loops: Any) -> None:
    passes, running = loops
    passes.hold = asyncio.Event()  # the first pass never ends by itself
    running.event("ADDED", body("i"))
    await settled(passes, running, lambda: passes.of("i"), "the first pass started")
    running.event("DELETED", body("i"))
    await settled(passes, running, lambda: not running._tasks, "the loop's task ended")
    assert passes.of("i") == [("reconcile", "i", ("", 1))]


async def test_the_same_name_created_again_starts_after_the_old_loop_ended_and_was_forgotten(loops: Any) -> None:
    passes, running = loops
    passes.hold = asyncio.Event()
    running.event("ADDED", body("j", uid="first"))
    await settled(passes, running, lambda: passes.of("j"), "the first object's pass")
    # Its DELETED event missed (a watch gap): the new uid alone says it is another object.
    running.event("ADDED", body("j", uid="second"))
    passes.hold.set()
    await settled(passes, running, lambda: passes.of("j", "tick"), "the new object's tick")
    assert passes.forgotten == ["j", "j"]  # at the stop, and again once the old task ended
    assert [c[0] for c in passes.of("j")] == ["reconcile", "reconcile", "tick"]
    assert len(running) == 1


async def test_the_managed_count_follows_the_loops() -> None:
    before = metrics.REGISTRY.get_sample_value("tritonop_managed_inferenceservices") or 0.0

    def managed() -> float:
        return (metrics.REGISTRY.get_sample_value("tritonop_managed_inferenceservices") or 0.0) - before

    passes = Passes()
    running = ObjectLoops(passes)
    try:
        for _ in range(3):  # any number of events counts an object once
            running.event("MODIFIED", body("managed-a"))
        running.event("ADDED", body("managed-b"))
        assert managed() == 2
        running.event("DELETED", body("managed-a"))
        running.event("DELETED", body("managed-a"))
        running.event("DELETED", body("never-seen"))
        assert managed() == 1
    finally:
        await running.aclose()
    assert managed() == 0


async def test_paused_loops_stop_ignore_events_and_start_anew_on_resume(loops: Any) -> None:
    passes, running = loops
    passes.delay = 0.01  # time-driven: a loop left running would keep ticking
    running.event("ADDED", body("k", status=True))
    await settled(passes, running, lambda: passes.of("k", "tick"), "a tick")
    await running.pause()  # another operator is active (kopf peering)
    assert len(running) == 0 and not running._tasks and passes.forgotten == ["k"]
    calls = len(passes.of("k"))
    running.event("MODIFIED", body("k", generation=2, status=True))
    await asyncio.sleep(0.05)  # several of its delays: a loop started by the event would have ticked
    assert len(passes.of("k")) == calls and len(running) == 0
    running.resume()
    running.event(None, body("k", generation=2, status=True))  # kopf lists everything again
    await settled(passes, running, lambda: len(passes.of("k")) >= calls + 2, "a reconcile and a tick after resuming")
    assert passes.of("k")[calls] == ("reconcile", "k", ("force", 2))  # a first sight again: forced


async def test_the_kept_body_leaves_managed_fields_out(loops: Any) -> None:
    passes, running = loops
    seen: list[Mapping[str, Any]] = []
    original = passes.reconcile

    async def reconcile(body: Mapping[str, Any], *, force: bool = False) -> None:
        seen.append(body)
        await original(body, force=force)

    passes.reconcile = reconcile  # type: ignore[method-assign]
    obj = body("m", managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}], labels={"a": "b"})
    running.event("ADDED", obj)
    await settled(passes, running, lambda: seen, "the first reconcile")
    assert "managedFields" not in seen[0]["metadata"]
    assert seen[0]["metadata"]["labels"] == {"a": "b"} and seen[0]["metadata"]["uid"] == "uid-m"
    assert "managedFields" in obj["metadata"]  # the event's own body is left as it was
    # Kept packed, not as the parsed event: each pass gets its own copy, equal to the event's.
    kept = running._loops[(NS, "m")].kept
    assert isinstance(kept, bytes) and len(kept) < len(json.dumps(seen[0]))
    assert "managedFields" not in INFERENCE_SERVICES.unpack(kept)["metadata"]
    assert seen[0] == {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
    assert seen[0]["metadata"]["labels"] is not obj["metadata"]["labels"]


HANDLER_STATE: contextvars.ContextVar[object] = contextvars.ContextVar("handler_state")


class EventCause:
    """Stands in for what kopf's handler context holds per event (its cause: the whole body)."""


async def test_a_sleeping_loop_keeps_nothing_of_the_event_handler_context(loops: Any) -> None:
    passes, running = loops

    async def handler(name: str) -> weakref.ref[EventCause]:
        # Run as kopf runs our on.event handler: in a task whose context holds the event's cause.
        cause = EventCause()
        HANDLER_STATE.set(cause)
        running.event("ADDED", body(name))
        return weakref.ref(cause)

    first = await asyncio.create_task(handler("a"))
    later = [await asyncio.create_task(handler(name)) for name in ("b", "c")]
    await settled(passes, running, lambda: passes.of("c", "tick"), "the loops to sleep")
    gc.collect()
    # The first event's context is the one every loop runs in (kopf.event reads its queue from
    # it); no later event's context may stay alive with its loop.
    assert first() is not None
    assert [ref() for ref in later] == [None, None]


def _frame_locals(task: asyncio.Task[None]) -> list[Any]:
    """The local variables of every coroutine the task is suspended in."""
    found: list[Any] = []
    coro: Any = task.get_coro()
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        found.extend(coro.cr_frame.f_locals.values())
        coro = coro.cr_await
    return found


async def test_a_sleeping_loop_holds_its_body_packed_only(loops: Any) -> None:
    passes, running = loops
    running.event("ADDED", body("a", labels={"team": "vision"}))
    await settled(passes, running, lambda: passes.of("a", "tick"), "the loop to sleep")
    task = running._loops[(NS, "a")].task
    assert task is not None and not task.done()
    held = _frame_locals(task)
    assert held, "the sleeping loop's frames were not found"
    # A parsed body left in the sleeping frame would cost its full size per object at rest.
    assert not [v for v in held if isinstance(v, Mapping) and "metadata" in v]
    assert running._loops[(NS, "a")].body["metadata"]["labels"] == {"team": "vision"}


async def test_passes_under_way_are_bounded_and_the_rest_wait_their_turn() -> None:
    passes = Passes()
    passes.hold = asyncio.Event()
    running = ObjectLoops(passes, concurrency=2)
    try:
        for name in "vwxyz":
            running.event("ADDED", body(name))
        await settled(passes, running, lambda: len(passes.calls) == 2, "two passes started")
        assert len(passes.calls) == 2  # the other three wait for a slot, having built nothing
        passes.hold.set()
        await settled(passes, running, lambda: len(passes.of("z", "tick")) == 1, "every object ticked")
        assert {c[1] for c in passes.calls} == set("vwxyz")
        assert [c[1] for c in passes.calls if c[0] == "reconcile"][:2] == ["v", "w"]  # in arrival order
    finally:
        await running.aclose()


async def test_a_waker_wakes_its_one_waiter_as_an_event_would() -> None:
    waker = Waker()
    waker.set()
    await asyncio.wait_for(waker.wait(), 1)  # set before the wait: returns at once
    waker.clear()
    assert not waker.is_set()
    sleeping = asyncio.create_task(waker.wait())
    await asyncio.sleep(0)
    assert not sleeping.done()
    waker.set()
    await asyncio.wait_for(sleeping, 1)
    # A wait that times out leaves it ready for the next sleep.
    waker.clear()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await waker.wait()
    again = asyncio.create_task(waker.wait())
    await asyncio.sleep(0)
    waker.set()
    await asyncio.wait_for(again, 1)


def test_a_waker_is_a_fraction_of_an_event() -> None:
    event = asyncio.Event()
    as_event = sys.getsizeof(event) + sys.getsizeof(event.__dict__) + sys.getsizeof(event._waiters)
    assert sys.getsizeof(Waker()) * 5 < as_event and not hasattr(Waker(), "__dict__")
