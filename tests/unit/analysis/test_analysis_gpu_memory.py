"""The gpuMemory checks: the spec, the PromQL, judging Prometheus' answers, and the direct source."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import promql_parser
import pytest

from tests.support.gpu_exporter import GIB, triton_metrics_text
from tests.unit.api.admission import Admission
from tritonop.analysis import promql
from tritonop.analysis.checks import analyse
from tritonop.analysis.direct import judge_direct, prometheus_only, sequential_checks
from tritonop.analysis.judge import compare_gpu_memory, judge_gpu_memory
from tritonop.analysis.promql import RevisionSeries
from tritonop.analysis.result import QueryResult
from tritonop.analysis.triton_metrics import DirectTally, MetricsTextError, PodCounters, parse_gpu_memory
from tritonop.api.crd import generate_crd
from tritonop.api.models import Analysis, GpuMemoryCheck, quantity_value
from tritonop.children import BuildError, parse_spec
from tritonop.config import OperatorConfig

CONFIG = OperatorConfig()
CANARY = RevisionSeries("ml", "resnet", "canary1", "resnet50")
STABLE = RevisionSeries("ml", "resnet", "stable1", "resnet50")
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ISVC: dict[str, Any] = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "resnet", "namespace": "ml"},
    "spec": {"model": {"storageUri": "s3://models/resnet"}, "rollout": {"analysis": {"gpuMemory": {}}}},
}


def isvc(gpu_memory: Any, gpus: int | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(ISVC)
    obj["spec"]["rollout"]["analysis"]["gpuMemory"] = gpu_memory
    if gpus is not None:
        obj["spec"]["triton"] = {"gpus": gpus}
    return obj


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("20Gi", 20 * GIB), ("16G", 16e9), ("1.5Gi", 1.5 * GIB), (21474836480, 20 * GIB), ("512Mi", GIB / 2)],
)
def test_max_bytes_takes_bytes_or_a_quantity(quantity: int | str, expected: float) -> None:
    assert quantity_value(quantity) == expected
    check = GpuMemoryCheck.model_validate({"maxBytes": quantity})
    assert check.max_bytes_value == expected
    assert check.model_dump(by_alias=True, exclude_none=True) == {"maxBytes": quantity}  # stored as written


@pytest.mark.parametrize(
    ("gpu_memory", "gpus", "message"),
    [
        ({}, None, "needs maxBytes or maxIncreasePercent"),
        ({"maxBytes": "0Gi"}, None, "gpuMemory.maxBytes must be above 0, got 0Gi"),
        ({"maxBytes": 0}, None, "gpuMemory.maxBytes must be above 0, got 0"),
        ({"maxBytes": "20GB"}, None, "must be a quantity"),
        ({"maxIncreasePercent": -1}, None, "greater than or equal to 0"),
        ({"maxBytes": "20Gi"}, 0, "rollout.analysis.gpuMemory needs triton.gpus above 0"),
    ],
)
def test_bad_gpu_memory_specs_are_refused_by_admission_and_the_operator(
    gpu_memory: dict[str, Any], gpus: int | None, message: str
) -> None:
    obj = isvc(gpu_memory, gpus)
    with pytest.raises(BuildError, match=message) as raised:
        parse_spec(obj)
    assert raised.value.reason == "InvalidSpec"
    assert Admission(generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).admit(obj)


def test_a_good_gpu_memory_spec_is_admitted_and_parsed() -> None:
    obj = isvc({"maxBytes": "20Gi", "maxIncreasePercent": 10}, gpus=2)
    assert not Admission(generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).admit(obj)
    gpu_memory = parse_spec(obj).rollout.analysis.gpu_memory
    assert gpu_memory is not None and (gpu_memory.max_bytes_value, gpu_memory.max_increase_percent) == (20 * GIB, 10)


# ---------------------------------------------------------------- PromQL


def test_query_reads_the_revisions_gpu_gauge_per_pod_without_the_model() -> None:
    query = promql.gpu_memory_bytes(CANARY, 90, CONFIG)
    outer = promql_parser.parse(query)
    assert isinstance(outer, promql_parser.AggregateExpr) and str(outer.op) == "max"  # the worst pod
    per_pod = outer.expr
    assert isinstance(per_pod, promql_parser.AggregateExpr) and str(per_pod.op) == "sum"
    assert per_pod.modifier is not None and per_pod.modifier.labels == ["pod", "instance"]  # a pod's GPUs summed
    assert "max_over_time(nv_gpu_memory_used_bytes{" in query and "[90s]" in query  # each GPU's peak in the window
    selectors: list[promql_parser.VectorSelector] = []
    promql_parser.walk(outer, lambda n: selectors.append(n) if isinstance(n, promql_parser.VectorSelector) else None)
    (selector,) = selectors
    assert selector.name == "nv_gpu_memory_used_bytes"
    matchers = {m.name: m.value for m in selector.matchers.matchers}
    assert matchers == {"namespace": "ml", "inferenceservice": "resnet", "revision": "canary1"}  # no model label


def test_query_uses_the_configured_label_names() -> None:
    config = OperatorConfig(label_namespace="kube_namespace", label_isvc="isvc", label_revision="rev")
    query = promql.gpu_memory_bytes(CANARY, 60, config)
    assert '{kube_namespace="ml",isvc="resnet",rev="canary1"}' in query


# ---------------------------------------------------------------- judging Prometheus' answers


def test_max_bytes_is_judged_and_shown_in_gib() -> None:
    failed = judge_gpu_memory("gpuMemory", QueryResult.of(21.5 * GIB), 20 * GIB)
    assert (failed.result, failed.value, failed.bound) == ("Fail", 21.5, "<= 20GiB")
    assert failed.message == "canary GPU memory per pod 21.5GiB is above the maximum 20GiB"
    passed = judge_gpu_memory("gpuMemory", QueryResult.of(5 * GIB), 16e9)
    assert (passed.result, passed.value, passed.bound) == ("Pass", 5.0, "<= 14.90116119GiB")


def test_missing_gpu_data_says_why_and_an_error_stays_an_error() -> None:
    missing = judge_gpu_memory("gpuMemory", QueryResult.no_data("query returned no series"), GIB)
    assert missing.result == "NoData"
    assert missing.message.startswith("canary GPU memory per pod: no data: query returned no series; Triton exports")
    error = judge_gpu_memory("gpuMemory", QueryResult.error("no Prometheus answer"), GIB)
    assert (error.result, error.message) == ("Error", "canary GPU memory per pod: query failed: no Prometheus answer")


def test_increase_over_the_stable() -> None:
    failed = compare_gpu_memory("gpuMemoryVsStable", QueryResult.of(15 * GIB), QueryResult.of(10 * GIB), 20)
    assert (failed.result, failed.value, failed.bound) == ("Fail", 50.0, "<= 20%")
    assert failed.message == "canary GPU memory per pod 15GiB vs stable 10GiB: 50% more, more than the allowed 20%"
    passed = compare_gpu_memory("gpuMemoryVsStable", QueryResult.of(11 * GIB), QueryResult.of(10 * GIB), 20)
    assert (passed.result, passed.value) == ("Pass", 10.0)
    no_stable = compare_gpu_memory("gpuMemoryVsStable", QueryResult.of(GIB), QueryResult.no_data("none"), 20)
    assert no_stable.result == "NoData" and no_stable.message.startswith("stable GPU memory per pod: no data")
    zero = compare_gpu_memory("gpuMemoryVsStable", QueryResult.of(GIB), QueryResult.of(0.0), 20)
    assert zero.result == "NoData" and "no relative increase" in zero.message


class AnswerTable:
    def __init__(self, answers: dict[str, QueryResult]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        self.asked.append(promql)
        return self.answers[promql]


async def test_analyse_plans_both_checks_after_the_comparisons_and_before_custom_checks() -> None:
    canary, stable = promql.gpu_memory_bytes(CANARY, 60, CONFIG), promql.gpu_memory_bytes(STABLE, 60, CONFIG)
    custom = promql.render_custom("max(up{ {{selector}} })", CANARY, 60, CONFIG)
    answers = {
        promql.request_count(CANARY, 60, CONFIG): QueryResult.of(100.0),
        canary: QueryResult.of(12 * GIB),
        stable: QueryResult.of(10 * GIB),
        custom: QueryResult.of(1.0),
    }
    spec = {
        "successRate": {"enabled": False},
        "gpuMemory": {"maxBytes": "11Gi", "maxIncreasePercent": 50},
        "checks": [{"name": "up", "query": "max(up{ {{selector}} })", "min": 1}],
    }
    client = AnswerTable(answers)
    outcome = await analyse(
        client,
        Analysis.model_validate(spec),
        namespace="ml",
        name="resnet",
        model="resnet50",
        canary_revision="canary1",
        stable_revision="stable1",
        window_s=60,
        config=CONFIG,
        at=AT,
    )
    assert [(c.name, c.result, c.value) for c in outcome.checks] == [
        ("gpuMemory", "Fail", 12.0),
        ("gpuMemoryVsStable", "Pass", 20.0),
        ("up", "Pass", 1.0),
    ]
    assert outcome.verdict == "Fail"
    assert client.asked.count(canary) == 1  # both checks share the canary's query


async def test_without_a_stable_revision_the_increase_is_no_data() -> None:
    spec = Analysis.model_validate({"successRate": {"enabled": False}, "gpuMemory": {"maxIncreasePercent": 10}})
    client = AnswerTable({promql.request_count(CANARY, 60, CONFIG): QueryResult.of(100.0)})
    outcome = await analyse(
        client,
        spec,
        namespace="ml",
        name="resnet",
        model="resnet50",
        canary_revision="canary1",
        stable_revision=None,
        window_s=60,
        config=CONFIG,
        at=AT,
    )
    assert [(c.name, c.result, c.message) for c in outcome.checks] == [
        ("gpuMemoryVsStable", "NoData", "no stable revision to compare with")
    ]


# ---------------------------------------------------------------- the direct source


def test_parse_gpu_memory_sums_the_pods_gpus() -> None:
    assert parse_gpu_memory(triton_metrics_text([6 * GIB, 7 * GIB])) == 13 * GIB
    assert parse_gpu_memory(triton_metrics_text([])) is None  # Triton on CPU: counters only
    longer = 'nv_gpu_memory_used_bytes_peak{gpu_uuid="GPU-1"} 5\nnv_gpu_memory_used_bytes{gpu_uuid="GPU-1"} 3\n'
    assert parse_gpu_memory(longer) == 3.0
    for bad in ('nv_gpu_memory_used_bytes{gpu_uuid="GPU-1"} -1', 'nv_gpu_memory_used_bytes{gpu_uuid="GPU-1"} NaN'):
        with pytest.raises(MetricsTextError, match="gauge nv_gpu_memory_used_bytes is"):
            parse_gpu_memory(bad)


def test_each_sample_keeps_the_worst_pods_latest_level() -> None:
    tally = DirectTally("c", "s")
    zero = PodCounters()
    tally.observe({"a": zero, "b": zero}, {}, {"a": 3.0, "b": 5.0})
    tally.observe({"a": zero, "b": None}, {}, {"a": 4.0})  # b not reached: its 5.0 stands
    tally.observe({"a": zero, "b": zero}, {}, {"a": 4.0})  # b answered without a GPU gauge
    tally.observe({"a": zero}, {}, {"a": None})  # b gone, a without a gauge
    assert list(tally.canary.gpu_memory_bytes) == [5.0, 5.0, 4.0, None]
    assert list(tally.stable.gpu_memory_bytes) == [None] * 4  # one entry per sample on both sides


def gpu_tally(canary: list[float | None], stable: list[float | None] | None = None) -> DirectTally:
    """One sample a level: the canary's (and the stable's) only pod at these GPU memory levels."""
    tally = DirectTally("c", "s")
    for index, level in enumerate(canary):
        stable_level = stable[index] if stable else None
        tally.observe({"c-0": PodCounters()}, {"s-0": PodCounters()}, {"c-0": level}, {"s-0": stable_level})
    return tally


def gpu_spec(**gpu_memory: Any) -> Analysis:
    return Analysis.model_validate({"successRate": {"enabled": False}, "gpuMemory": gpu_memory})


def test_direct_fails_at_two_samples_in_a_row_over_max_bytes() -> None:
    spec = gpu_spec(maxBytes="10Gi")
    once = judge_direct(spec, gpu_tally([9 * GIB, 11 * GIB]))
    assert (once.verdict, once.conclusive_failure) == ("NoData", False)  # held: not promoted, not rolled back
    (check,) = once.checks
    assert check.message == (
        "canary GPU memory per pod 11GiB is above the maximum 10GiB at the latest sample; 2 samples in a row fail"
    )
    twice = judge_direct(spec, gpu_tally([9 * GIB, 11 * GIB, 12 * GIB]))
    assert twice.conclusive_failure
    (check,) = twice.checks
    assert (check.name, check.result, check.value, check.bound, check.source, check.evidence) == (
        "gpuMemory",
        "Fail",
        12.0,
        "<= 10GiB",
        "direct",
        None,
    )
    assert check.message == "canary GPU memory per pod 12GiB is above the maximum 10GiB, at 2 samples in a row"
    # A sample within the bound, or without a reading, ends the run.
    assert judge_direct(spec, gpu_tally([11 * GIB, 9 * GIB, 11 * GIB])).verdict == "NoData"
    assert judge_direct(spec, gpu_tally([11 * GIB, None, 11 * GIB])).verdict == "NoData"
    assert judge_direct(spec, gpu_tally([11 * GIB, 10 * GIB])).verdict == "Pass"


def test_direct_increase_over_the_stable() -> None:
    spec = gpu_spec(maxIncreasePercent=10)
    failed = judge_direct(spec, gpu_tally([12 * GIB, 12 * GIB], [10 * GIB, 10 * GIB]))
    assert failed.conclusive_failure
    assert failed.checks[0].message == (
        "canary GPU memory per pod 12GiB vs stable 10GiB: 20% more, more than the allowed 10%, at 2 samples in a row"
    )
    # The stable grew too: judged per sample, against the stable's level at that sample.
    assert judge_direct(spec, gpu_tally([12 * GIB, 12 * GIB], [10 * GIB, 11 * GIB])).verdict == "Pass"
    no_stable = judge_direct(spec, gpu_tally([12 * GIB, 12 * GIB]))
    assert no_stable.verdict == "NoData"
    assert no_stable.checks[0].message.startswith("stable GPU memory per pod: no data: no stable pod reported ")


def test_no_gpu_metric_from_the_canary_is_no_data() -> None:
    outcome = judge_direct(gpu_spec(maxBytes="10Gi"), gpu_tally([None, None]))
    assert outcome.verdict == "NoData"
    assert outcome.checks[0].message.startswith(
        "canary GPU memory per pod: no data: no canary pod reported nv_gpu_memory_used_bytes; Triton exports"
    )


def test_gpu_checks_are_judged_directly_outside_the_alpha_split() -> None:
    spec = Analysis.model_validate({"gpuMemory": {"maxBytes": "10Gi", "maxIncreasePercent": 5}})
    assert sequential_checks(spec) == ["successRate", "gpuMemory", "gpuMemoryVsStable"]
    assert prometheus_only(spec) is None
    rest = prometheus_only(
        spec.model_copy(
            update={"checks": Analysis.model_validate({"checks": [{"name": "up", "query": "up", "min": 1}]}).checks}
        )
    )
    assert rest is not None and rest.gpu_memory is None and len(rest.checks) == 1
    # successRate keeps the whole alpha: the level checks are not tests.
    evidence = judge_direct(spec, gpu_tally([GIB])).checks[0].evidence
    assert evidence is not None and evidence.threshold == 1 / spec.alpha
