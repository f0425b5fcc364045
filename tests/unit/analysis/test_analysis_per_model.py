"""Several models (model.models): each judged on its own, the worst decides and is named (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from tritonop.analysis import promql
from tritonop.analysis.checks import analyse
from tritonop.analysis.direct import judge_direct
from tritonop.analysis.per_model import analyse_models, judge_direct_models, worst_per_check
from tritonop.analysis.promql import RevisionSeries
from tritonop.analysis.result import QueryResult
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.api.models import Analysis, CheckResult
from tritonop.config import OperatorConfig

CONFIG = OperatorConfig()
WINDOW_S = 60.0
AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def result(name: str, verdict: str, value: float | None, bound: str, message: str = "") -> CheckResult:
    return CheckResult.model_validate({"name": name, "result": verdict, "value": value, "bound": bound,
                                       "message": message or f"{name} {value}"})  # fmt: skip


# ---------------------------------------------------------------- worst per check


def test_the_worst_model_decides_each_check_and_names_it() -> None:
    worst = worst_per_check(
        {
            "pre": [result("successRate", "Pass", 0.999, ">= 0.99"), result("latency", "Fail", 120, "<= 100ms")],
            "post": [result("successRate", "Fail", 0.5, ">= 0.99"), result("latency", "Pass", 20, "<= 100ms")],
            "pipeline": [result("successRate", "NoData", None, ">= 0.99"), result("latency", "Pass", 90, "<= 100ms")],
        }
    )
    assert [(r.name, r.result, r.value) for r in worst] == [
        ("successRate[post]", "Fail", 0.5),
        ("latency[pre]", "Fail", 120),
    ]
    assert worst[0].message == "successRate 0.5 (worst of 3 models)"


def test_among_passing_models_the_one_nearest_its_bound_is_shown() -> None:
    worst = worst_per_check(
        {
            "a": [result("successRate", "Pass", 0.999, ">= 0.99"), result("latency", "Pass", 20, "<= 100ms")],
            "b": [result("successRate", "Pass", 0.995, ">= 0.99"), result("latency", "Pass", 90, "<= 100ms")],
        }
    )
    assert [(r.name, r.value) for r in worst] == [("successRate[b]", 0.995), ("latency[b]", 90)]


def test_no_data_outranks_pass_and_error_outranks_no_data() -> None:
    (worst,) = worst_per_check(
        {
            "a": [result("successRate", "Pass", 1.0, ">= 0.99")],
            "b": [result("successRate", "NoData", None, ">= 0.99", "3 requests < minRequests 20")],
        }
    )
    assert (worst.name, worst.result) == ("successRate[b]", "NoData")
    assert worst.message == "3 requests < minRequests 20 (worst of 2 models)"
    (worst,) = worst_per_check(
        {"a": [result("c", "NoData", None, "<= 1")], "b": [result("c", "Error", None, "<= 1", "query failed")]}
    )
    assert (worst.name, worst.result, worst.message) == ("c[b]", "Error", "query failed (worst of 2 models)")


def test_a_result_the_same_for_every_model_is_shown_as_it_is() -> None:
    gpu = result("gpuMemory", "Pass", 3.5, "<= 8GiB", "the canary's worst pod uses 3.5GiB")
    worst = worst_per_check({"a": [gpu], "b": [gpu.model_copy()]})
    assert worst == [gpu]


def test_one_model_is_passed_through() -> None:
    only = [result("successRate", "Fail", 0.5, ">= 0.99")]
    assert worst_per_check({"resnet": only}) == only


# ---------------------------------------------------------------- direct (sequential)


def tally(canary_failures: int, *, requests: int = 100, stable_requests: int = 1000) -> DirectTally:
    """A canary and a stable sampled twice: a baseline, then what they served."""
    t = DirectTally("c", "s")
    t.observe({"c": PodCounters()}, {"s": PodCounters()})
    ok = requests - canary_failures
    t.observe(
        {"c": PodCounters(success=ok, failure=canary_failures, count=ok, duration_us=ok * 10_000)},
        {"s": PodCounters(success=stable_requests, count=stable_requests, duration_us=stable_requests * 10_000)},
    )
    return t


def test_direct_one_model_is_exactly_the_one_model_judgement() -> None:
    spec = Analysis()
    assert judge_direct_models(spec, {"resnet": tally(50)}) == judge_direct(spec, tally(50))


def test_direct_worst_model_fails_the_canary_and_alpha_is_split_over_models() -> None:
    spec = Analysis()
    outcome = judge_direct_models(spec, {"pre": tally(0), "post": tally(50), "pipeline": tally(0)})
    assert outcome.verdict == "Fail" and outcome.conclusive_failure
    (check,) = outcome.checks
    assert check.name == "successRate[post]"
    assert check.message.startswith("50 of 100 canary requests failed (50%)")
    assert check.message.endswith("(worst of 3 models)")
    # alpha 0.001 over one check and three models: each test needs evidence 1/(0.001/3).
    assert check.evidence is not None and check.evidence.threshold == 3000
    assert judge_direct(spec, tally(50)).checks[0].evidence.threshold == 1000  # type: ignore[union-attr]


def test_direct_an_idle_model_is_not_judged_unless_every_model_is() -> None:
    spec = Analysis()
    idle = tally(0, requests=0, stable_requests=0)
    outcome = judge_direct_models(spec, {"pre": tally(0), "unused": idle})
    assert outcome.verdict == "Pass", outcome.checks
    (check,) = outcome.checks
    assert check.name == "successRate[pre]" and check.message.endswith("(worst of 1 model; idle: unused)")
    # Some stable traffic but none on the canary yet: not idle, so it holds the canary.
    held = judge_direct_models(spec, {"pre": tally(0), "rare": tally(0, requests=0, stable_requests=10)})
    assert (held.verdict, held.checks[0].name) == ("NoData", "successRate[rare]")
    everything_idle = judge_direct_models(spec, {"a": idle, "b": idle})
    assert everything_idle.verdict == "NoData"


def test_direct_without_any_model_is_no_data() -> None:
    outcome = judge_direct_models(Analysis(), {})
    assert outcome.verdict == "NoData"
    assert [(c.name, c.result, c.source) for c in outcome.checks] == [("successRate", "NoData", "direct")]


# ---------------------------------------------------------------- Prometheus (per interval)


class Answers:
    """Prometheus as a table: each model's canary success rate and request count, and its stable count."""

    def __init__(self, rates: dict[str, float], counts: dict[str, float], stable_counts: dict[str, float]) -> None:
        self.table: dict[str, QueryResult] = {}
        for model, rate in rates.items():
            canary = RevisionSeries("ml", "chain", "canary1", model)
            stable = RevisionSeries("ml", "chain", "stable1", model)
            self.table[promql.success_rate(canary, WINDOW_S, CONFIG)] = QueryResult.of(rate)
            self.table[promql.request_count(canary, WINDOW_S, CONFIG)] = QueryResult.of(counts[model])
            self.table[promql.request_count(stable, WINDOW_S, CONFIG)] = QueryResult.of(stable_counts[model])
        self.asked: list[str] = []

    async def query(self, text: str, at: datetime | None = None) -> QueryResult:
        assert at == AT
        self.asked.append(text)
        return self.table[text]


async def judged(client: Answers, models: list[str]):  # type: ignore[no-untyped-def]
    return await analyse_models(
        client,
        Analysis(),
        namespace="ml",
        name="chain",
        models=models,
        canary_revision="canary1",
        stable_revision="stable1",
        window_s=WINDOW_S,
        config=CONFIG,
        at=AT,
    )


async def test_prometheus_one_model_asks_and_judges_as_before() -> None:
    client = Answers({"resnet": 0.5}, {"resnet": 200}, {"resnet": 900})
    alone = await judged(client, ["resnet"])
    reference = await analyse(
        Answers({"resnet": 0.5}, {"resnet": 200}, {"resnet": 900}),
        Analysis(),
        namespace="ml",
        name="chain",
        model="resnet",
        canary_revision="canary1",
        stable_revision="stable1",
        window_s=WINDOW_S,
        config=CONFIG,
        at=AT,
    )
    assert alone == reference
    assert len(client.asked) == 2  # the request count and the success rate: no stable count


async def test_prometheus_each_model_is_queried_and_the_worst_named() -> None:
    client = Answers(
        {"pre": 1.0, "post": 0.9, "pipeline": 0.95},
        {"pre": 300, "post": 300, "pipeline": 300},
        {"pre": 900, "post": 900, "pipeline": 900},
    )
    outcome = await judged(client, ["pre", "post", "pipeline"])
    assert outcome.verdict == "Fail" and outcome.canary_requests == 900
    (check,) = outcome.checks
    assert (check.name, check.result, check.value) == ("successRate[post]", "Fail", 0.9)
    assert check.message == "success rate 0.9 is below the minimum 0.99 (worst of 3 models)"
    for model in ("pre", "post", "pipeline"):
        assert any(f'model="{model}"' in q for q in client.asked)


async def test_prometheus_a_model_idle_on_both_revisions_is_left_out() -> None:
    client = Answers({"pre": 1.0, "unused": float("nan")}, {"pre": 300, "unused": 0}, {"pre": 900, "unused": 0})
    outcome = await judged(client, ["pre", "unused"])
    assert outcome.verdict == "Pass", outcome.checks
    assert outcome.checks[0].name == "successRate[pre]"
    assert outcome.checks[0].message == "success rate 1 satisfies >= 0.99 (worst of 1 model; idle: unused)"


async def test_prometheus_without_the_models_every_check_is_an_error() -> None:
    client = Answers({}, {}, {})
    outcome = await judged(client, [])
    assert outcome.verdict == "Error" and client.asked == []
    (check,) = outcome.checks
    assert (check.name, check.result, check.bound) == ("successRate", "Error", ">= 0.99")
    assert "cannot tell which models the canary serves" in check.message
