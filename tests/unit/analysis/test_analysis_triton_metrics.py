"""Triton's metrics text: parsing, per-revision deltas, restarts and replaced pods."""

from __future__ import annotations

import pytest

from tritonop.analysis.triton_metrics import (
    DirectTally,
    MetricsTextError,
    PodCounters,
    RevisionTally,
    parse_counters,
    parse_labels,
)

# As Triton 2.51 prints it (trimmed): two models, failures split by reason, GPU gauges around.
TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="resnet",version="1"} 120
nv_inference_request_success{model="resnet",version="2"} 30
nv_inference_request_success{model="other",version="1"} 999
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="resnet",reason="BACKEND",version="1"} 7
nv_inference_request_failure{model="resnet",reason="OTHER",version="1"} 2
nv_inference_request_failure{model="resnet",reason="REJECTED",version="2"} 1
nv_inference_request_failure{model="other",reason="BACKEND",version="1"} 50
# TYPE nv_inference_count counter
nv_inference_count{model="resnet",version="1"} 240
nv_inference_count{model="resnet",version="2"} 30
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="resnet",version="1"} 3000000
nv_inference_request_duration_us{model="resnet",version="2"} 600000
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="resnet",version="1"} 1500
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-1"} 0.5
nv_inference_request_summary_us{model="resnet",version="1",quantile="0.5"} 1e4
"""


def test_parse_sums_versions_and_reasons_of_one_model() -> None:
    assert parse_counters(TEXT, "resnet") == PodCounters(
        success=150, failure=10, count=270, duration_us=3_600_000, queue_us=1500
    )
    assert parse_counters(TEXT, "other") == PodCounters(success=999, failure=50)
    # A server that has served nothing yet exports no series: zeros, not an error.
    assert parse_counters("# HELP nothing yet\n", "resnet") == PodCounters()


def test_label_values_with_escapes_and_timestamps() -> None:
    assert parse_labels(r'model="a\"b",version="1"') == {"model": 'a"b', "version": "1"}
    text = 'nv_inference_request_success{model="m\\\\x",version="1"} 4 1700000000000\n'
    assert parse_counters(text, "m\\x").success == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('nv_inference_request_success{model="m"} abc', "not a number"),
        ('nv_inference_request_success{model="m"} NaN', "counter nv_inference_request_success is NaN"),
        ('nv_inference_request_success{model="m"} -1', "is -1"),
        ("<html>503 Service Unavailable</html>", "line 1 is not a sample"),
        ('nv_inference_request_success{model="m",version} 1', "malformed labels"),
    ],
)
def test_malformed_text_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(MetricsTextError, match=message):
        parse_counters(text, "m")


def _counters(success: float, failure: float = 0, duration_ms: float = 0) -> PodCounters:
    return PodCounters(success=success, failure=failure, count=success, duration_us=duration_ms * 1000)


def test_deltas_from_a_baseline_across_pods() -> None:
    tally = RevisionTally()
    assert tally.observe({"a": _counters(100, 5), "b": _counters(50)}) == PodCounters()  # baseline only
    delta = tally.observe({"a": _counters(110, 7, duration_ms=200), "b": _counters(60, 0, duration_ms=100)})
    assert (delta.success, delta.failure) == (20, 2)
    assert (tally.requests, tally.failures) == (22, 2)
    assert list(tally.latencies_ms) == [None, pytest.approx(300 / 20)]


def test_a_restarted_server_counts_from_zero() -> None:
    tally = RevisionTally()
    tally.observe({"a": _counters(100, 5)})
    tally.observe({"a": _counters(3, 1)})  # counters went down: the server restarted
    assert (tally.requests, tally.failures, tally.restarts) == (4, 1, 1)
    tally.observe({"a": _counters(10, 1)})
    assert tally.requests == 11


def test_replaced_and_unreachable_pods() -> None:
    tally = RevisionTally()
    tally.observe({"a": _counters(10)})
    tally.observe({"a": None})  # not reached this time: its counters wait for the next sample
    assert tally.requests == 0
    tally.observe({"a": _counters(16)})
    assert tally.requests == 6
    # Pod a replaced by pod c: c's first scrape is a baseline, a is forgotten.
    tally.observe({"c": _counters(40)})
    tally.observe({"c": _counters(45), "a": _counters(999)})  # a reappearing is a new baseline too
    assert tally.requests == 11


def test_direct_tally_pairs_samples_even_when_one_side_is_unreached() -> None:
    tally = DirectTally("canary1", "stable1")
    tally.observe({"c": _counters(0)}, {"s": _counters(0)})
    tally.observe({"c": _counters(5, duration_ms=100)}, {"s": None})
    tally.observe({"c": _counters(10, duration_ms=200)}, {"s": _counters(50, duration_ms=500)})
    assert tally.canary_means() == [20.0, 20.0]
    assert tally.paired_means() == [(20.0, 10.0)]
