"""The operator's own metrics: names with units, the phase gauge, check gauges, the managed count.

Rollouts run through the real Controller (tests/support/controller_harness.py); the metrics
are read from the operator's registry, which is process-wide: the per-object gauges start
empty in each test here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from tests.support.controller_harness import NAME, NAMESPACE, Harness, model_spec
from tritonop import metrics
from tritonop.api.models import CheckResult
from tritonop.children import IsvcRef
from tritonop.controller.telemetry import RolloutTelemetry, bound_sides

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
PHASES = ("Pending", "Progressing", "Ready", "RolledBack", "Failed")


def sample(metric: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(metric, labels)


def phases(name: str) -> dict[str, float | None]:
    return {p: sample("tritonop_inferenceservice_phase", namespace=NAMESPACE, name=name, phase=p) for p in PHASES}


def current_phase(name: str) -> str | None:
    shown = phases(name)
    assert set(shown.values()) <= {0.0, 1.0} or set(shown.values()) == {None}, shown
    ones = [p for p, v in shown.items() if v == 1.0]
    assert len(ones) <= 1, shown
    return ones[0] if ones else None


@pytest.fixture
def harness() -> Harness:
    """A Harness, with no per-object gauge series left by earlier tests in this process."""
    for gauge in (metrics.PHASE, metrics.CHECK_VALUE, metrics.CHECK_BOUND, metrics.CANARY_WEIGHT):
        gauge.clear()
    return Harness(T0)


def test_exported_names_carry_units_and_counters_end_in_total() -> None:
    metrics.RECONCILES.labels("success").inc(0)  # a counter with a sample, whatever ran before
    families = {family.name: family for family in metrics.REGISTRY.collect() if family.name.startswith("tritonop_")}
    assert families["tritonop_canary_weight_percent"].type == "gauge"
    assert families["tritonop_reconcile_duration_seconds"].type == "histogram"
    assert "tritonop_canary_weight" not in families
    counters = [family for family in families.values() if family.type == "counter"]
    assert counters
    for family in counters:
        assert not family.name.endswith("_total"), family.name  # prometheus_client adds it to the samples
        assert all(s.name in (f"{family.name}_total", f"{family.name}_created") for s in family.samples)
    text = generate_latest(metrics.REGISTRY).decode()
    assert 'tritonop_reconciles_total{result="success"}' in text


async def test_phase_gauge_follows_the_status_and_goes_with_the_object(harness: Harness) -> None:
    h, name = harness, NAME
    v1, v2 = model_spec(traffic=GATEWAY), model_spec("s3://models/v2", traffic=GATEWAY)
    h.apply(v1)
    assert set(phases(name).values()) == {None}
    await h.reconcile()
    assert current_phase(name) == h.status()["phase"] == "Pending"
    await h.tick()
    assert current_phase(name) == "Ready"
    h.apply(v2)
    await h.reconcile()
    assert current_phase(name) == "Progressing"
    await h.tick()
    h.prometheus.mode = "fail"
    for _ in range(2):
        h.advance(10)
        await h.tick()
    assert current_phase(name) == "RolledBack"
    assert sum(v or 0 for v in phases(name).values()) == 1
    h.delete()
    assert set(phases(name).values()) == {None}, "a deleted object's phase series stay"


async def test_invalid_spec_on_a_first_deploy_shows_phase_failed(harness: Harness) -> None:
    h, name = harness, NAME
    h.apply(model_spec(traffic=GATEWAY, rollout={"steps": [50, 10]}))
    await h.reconcile()
    assert h.status()["phase"] == "Failed"
    assert current_phase(name) == "Failed"


async def test_check_gauges_hold_the_latest_analysis_value_and_bound(harness: Harness) -> None:
    h, name = harness, NAME
    h.apply(model_spec(traffic=GATEWAY))
    await h.reconcile()
    await h.tick()
    h.apply(model_spec("s3://models/v2", traffic=GATEWAY))
    await h.reconcile()
    await h.tick()  # the gate opens: step 1
    h.advance(10)
    await h.tick()  # the first analysis
    checks = h.status()["canary"]["lastAnalysis"]
    assert checks, h.status()
    for check in checks:
        labels = {"namespace": NAMESPACE, "name": name, "check": check["name"]}
        if check.get("value") is not None:
            assert sample("tritonop_analysis_check_value", **labels) == pytest.approx(check["value"])
        for side, bound in bound_sides(check.get("bound")).items():
            assert sample("tritonop_analysis_check_bound", **labels, bound=side) == bound
    success = next(c for c in checks if c["name"] == "successRate")
    assert sample("tritonop_analysis_check_value", namespace=NAMESPACE, name=name, check="successRate") == 1.0
    assert success["bound"].startswith(">=")
    h.prometheus.mode = "fail"
    h.advance(10)
    await h.tick()
    assert sample("tritonop_analysis_check_value", namespace=NAMESPACE, name=name, check="successRate") == 0.5
    h.delete()
    gauges = ("tritonop_analysis_check_value", "tritonop_analysis_check_bound", "tritonop_canary_weight_percent")
    left = [
        s for family in metrics.REGISTRY.collect() if family.name in gauges for s in family.samples
        if s.labels.get("name") == name
    ]  # fmt: skip
    assert not left, f"a deleted object's gauges stay: {left}"


def test_check_without_a_value_loses_its_value_series_and_dropped_checks_go() -> None:
    telemetry, ref = RolloutTelemetry(), IsvcRef(name="checks", namespace=NAMESPACE, uid="u")
    labels = {"namespace": NAMESPACE, "name": "checks"}
    telemetry.analysis(
        ref,
        [
            CheckResult(name="successRate", result="Pass", value=0.999, bound=">= 0.99"),
            CheckResult(name="latency", result="Pass", value=12.5, bound=">= 1ms and <= 50ms"),
        ],
    )
    assert sample("tritonop_analysis_check_value", **labels, check="latency") == 12.5
    assert sample("tritonop_analysis_check_bound", **labels, check="latency", bound="min") == 1.0
    assert sample("tritonop_analysis_check_bound", **labels, check="latency", bound="max") == 50.0
    telemetry.analysis(ref, [CheckResult(name="successRate", result="NoData", bound=">= 0.99")])
    assert sample("tritonop_analysis_check_value", **labels, check="successRate") is None
    assert sample("tritonop_analysis_check_bound", **labels, check="successRate", bound="min") == 0.99
    assert sample("tritonop_analysis_check_value", **labels, check="latency") is None
    assert sample("tritonop_analysis_check_bound", **labels, check="latency", bound="max") is None
    telemetry.forget(NAMESPACE, "checks")
    assert sample("tritonop_analysis_check_bound", **labels, check="successRate", bound="min") is None


def test_bound_text_parses_to_numeric_sides() -> None:
    assert bound_sides(">= 0.99") == {"min": 0.99}
    assert bound_sides("<= 20%") == {"max": 20.0}
    assert bound_sides(">= 1e-3ms and <= 1200ms") == {"min": 0.001, "max": 1200.0}
    assert bound_sides("") == bound_sides(None) == {}


def test_managed_set_never_goes_negative() -> None:
    gauge_before = sample("tritonop_managed_inferenceservices") or 0.0
    managed = metrics.ManagedSet(metrics.MANAGED)
    managed.discard(NAMESPACE, "x")
    managed.add(NAMESPACE, "x")
    managed.add(NAMESPACE, "x")
    assert len(managed) == 1
    managed.discard(NAMESPACE, "x")
    managed.discard(NAMESPACE, "x")
    assert len(managed) == 0
    metrics.MANAGED.set(gauge_before)  # this set shares the process-wide gauge
