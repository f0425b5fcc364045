"""rollout.strategy InPlace: a pod whose Triton never becomes ready again is evicted (I8c).

Unloading a version that raised errors under load can leave tritonserver not ready for good
(reproduced with the real server; see controller/in_place.py, ``WEDGED_AFTER``). Such a pod
serves nothing and stops every further load. These drive the real Controller through the
InPlace fuzz's machine (its pods and their Triton are the emulated part).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.controller.in_place_fuzz import InPlaceMachine
from tritonop.controller.in_place import WEDGED_AFTER


@pytest.fixture
def machine() -> Iterator[InPlaceMachine]:
    m = InPlaceMachine()
    try:
        m.minutes_pass(1)  # three pods on version 1, all Ready
        assert len(m.pods.versions) == 3 and not m.pods.unready
        yield m
    finally:
        m.teardown()


def out_of_endpoints(m: InPlaceMachine, *, triton_ready: bool) -> str:
    """One pod turns not Ready for good: its Triton wedged, or only its readiness probe fails."""
    pod = sorted(m.pods.versions)[0]
    m.pods.unready.add(pod)
    if not triton_ready:
        m.pods.wedged.add(pod)
    else:
        m.pods.server_ready_answer = lambda _: True  # type: ignore[method-assign]
    m.pods.sync(m.h)
    return pod


def ticks(m: InPlaceMachine, seconds: int, *, probes: bool = True) -> None:
    for _ in range(seconds // 5):
        m.h.advance(5)
        m._run(m.h.tick())
        if probes:
            m.pods.probe()
        m.pods.sync(m.h)


def evictions(m: InPlaceMachine) -> list[str]:
    return [c.name for c in m.h.kube.calls if c.verb == "evict"]


def wedged_events(m: InPlaceMachine) -> list[str]:
    return [e.message for e in m.h.events if e.reason == "PodWedged"]


def test_a_wedged_pod_is_evicted_after_the_grace_and_its_successor_gets_the_version(machine: InPlaceMachine) -> None:
    pod = out_of_endpoints(machine, triton_ready=False)
    ticks(machine, int(WEDGED_AFTER.total_seconds()) - 5)
    assert evictions(machine) == [] and pod in machine.pods.versions  # not before the grace
    ticks(machine, 15)
    assert evictions(machine) == [pod] and pod not in machine.pods.versions
    (message,) = wedged_events(machine)
    assert message.startswith(f"pod {pod}: Triton has versions 1 ready but has not been ready for 60 s"), message
    ticks(machine, 30)
    assert len(machine.pods.versions) == 3 and set(machine.pods.versions.values()) == {("1",)}
    assert not machine.pods.unready and evictions(machine) == [pod]


def test_a_pod_whose_triton_says_ready_is_never_evicted(machine: InPlaceMachine) -> None:
    """A readiness probe that fails while Triton is ready (a misconfigured probe, a blocked
    port): evicting would only restart pods in a loop."""
    pod = out_of_endpoints(machine, triton_ready=True)
    ticks(machine, 180, probes=False)
    assert evictions(machine) == [] and wedged_events(machine) == [] and pod in machine.pods.versions


def test_a_refused_eviction_is_asked_again_and_told_once(machine: InPlaceMachine) -> None:
    pod = out_of_endpoints(machine, triton_ready=False)
    ticks(machine, int(WEDGED_AFTER.total_seconds()))  # first seen on the first of these ticks
    assert evictions(machine) == []
    machine.h.kube.fail_next(429, "evict")  # its PodDisruptionBudget refuses, once
    ticks(machine, 5)
    assert pod in machine.pods.versions and len(wedged_events(machine)) == 1
    ticks(machine, 10)
    assert pod not in machine.pods.versions and len(wedged_events(machine)) == 1
    assert evictions(machine) == [pod, pod]
