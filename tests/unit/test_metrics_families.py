"""The compact metric families (tritonop.metrics.Family, PhaseFamily) export exactly what a
prometheus_client Gauge or Counter with the same labels would (less a counter's _created)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tritonop.metrics import Family, PhaseFamily


def lines(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_a_gauge_family_exports_as_a_gauge() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = Family("t_weight_percent", "Weight.", ["namespace", "name"], counter=False, registry=ours)
    gauge = Gauge("t_weight_percent", "Weight.", ["namespace", "name"], registry=theirs)
    for target in (family, gauge):
        target.labels("ml", "a").set(20)
        target.labels("ml", "b").set(0)
        target.labels("ml", "a").set(50)
        target.remove("ml", "b")
    assert lines(ours) == lines(theirs)
    assert ours.get_sample_value("t_weight_percent", {"namespace": "ml", "name": "a"}) == 50


def test_a_counter_family_exports_name_total() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = Family("t_passes", "Passes.", ["name", "pass"], counter=True, registry=ours)
    counter = Counter("t_passes", "Passes.", ["name", "pass"], registry=theirs)
    for target in (family, counter):
        target.labels("a", "tick").inc()
        target.labels("a", "tick").inc(2)
        target.labels("a", "reconcile").inc()
    assert lines(ours) == lines(theirs)
    assert ours.get_sample_value("t_passes_total", {"name": "a", "pass": "tick"}) == 3
    with pytest.raises(TypeError):
        family.labels("a", "tick").set(1)
    with pytest.raises(ValueError):
        family.labels("a", "tick").inc(-1)


def test_remove_of_an_absent_series_and_clear() -> None:
    registry = CollectorRegistry()
    family = Family("t_driven", "Driven.", ["name"], counter=False, registry=registry)
    family.remove("never")
    family.labels("a").set(1)
    family.clear()
    assert registry.get_sample_value("t_driven", {"name": "a"}) is None
    with pytest.raises(ValueError):
        family.labels("a", "b")


def test_the_phase_family_exports_one_series_per_phase() -> None:
    registry = CollectorRegistry()
    phases = PhaseFamily("t_phase", "Phase.", ("Pending", "Ready"), registry=registry)
    phases.set_phase("ml", "a", "Ready")
    phases.set_phase("ml", "b", None)
    value = lambda name, phase: registry.get_sample_value("t_phase", {"namespace": "ml", "name": name, "phase": phase})  # noqa: E731
    assert (value("a", "Pending"), value("a", "Ready")) == (0, 1)
    assert (value("b", "Pending"), value("b", "Ready")) == (0, 0)
    phases.forget("ml", "a")
    assert value("a", "Ready") is None and value("b", "Ready") == 0


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    Family("t_once", "Once.", ["name"], counter=False, registry=registry)
    with pytest.raises(ValueError):
        Family("t_once", "Once.", ["name"], counter=False, registry=registry)
