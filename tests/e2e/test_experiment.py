"""End to end, locally: an A/B experiment (rollout.strategy Experiment) through the real operator.

v1 serves (A); the "slow" variant (B, 120 ms per request on one model instance) gets a fixed
share from the router by the HTTPRoute's weights for 20 s. At 20% (~6 requests/s, within this
test's latency bound) it is judged as a canary and passes, yet is not promoted: the experiment
concludes with the split held and status.experiment reporting both variants' real figures from
the real Prometheus scraping the real Triton pods, the comparison saying B is slower; the
promote annotation then picks B. At 50% (~15 requests/s, more than one instance serves at
120 ms each) its requests queue past the SLO and it is rolled back before the end.
"""

from __future__ import annotations

import pytest

from e2e.local.harness import NAME, NAMESPACE, LocalStack
from e2e.local.stages import deploy
from tritonop.rollout import PROMOTE_ANNOTATION

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]

SLOW_MS = 120.0  # e2e/scenario.py's "slow" variant
INFERENCES = "sum(increase(nv_inference_count{ {{selector}} }[{{interval}}]))"


async def start_experiment(stack: LocalStack, weight: int, latency_max_ms: float) -> str:
    """v1 Ready, then the slow variant as B of a 20 s experiment at ``weight``; returns A's revision."""
    a = (await deploy(stack, "v1"))["stableRevision"]
    isvc = stack.inference_service("slow")
    rollout = isvc["spec"]["rollout"]
    del rollout["steps"]  # refused with strategy Experiment: its one split is experiment.weight
    rollout["strategy"] = "Experiment"
    rollout["experiment"] = {
        "weight": weight,
        "duration": "20s",
        "metrics": [{"name": "inferences", "query": INFERENCES}],
    }
    rollout["analysis"]["latency"] = {"maxMs": latency_max_ms}
    await stack.apply(isvc)
    return a


async def test_an_experiment_reports_both_variants_real_figures_holds_its_split_and_the_annotation_picks_b(
    stack: LocalStack,
) -> None:
    a = await start_experiment(stack, 20, latency_max_ms=20 * SLOW_MS)

    def concluded() -> dict | None:
        experiment = stack.status().get("experiment") or {}
        done = experiment.get("concluded") and experiment.get("resultsAt") == experiment.get("endsAt")
        return stack.status() if done else None

    status = await stack.wait_until(concluded, 120, "the experiment concluded with its final figures")
    b = status["canaryRevision"]
    assert b != a and status["phase"] == "Progressing"
    # Held at its split after the end: not promoted by the passing analyses.
    assert status["traffic"] == [{"revision": a, "percent": 80}, {"revision": b, "percent": 20}]
    reasons = stack.event_reasons()
    assert "ExperimentStarted" in reasons and "ExperimentConcluded" in reasons and "Promoted" not in reasons

    experiment = status["experiment"]
    variants = {v["name"]: v for v in experiment["variants"]}
    assert (variants["A"]["revision"], variants["B"]["revision"]) == (a, b)
    sent = {side: stack.router.traffic(NAMESPACE, NAME, variants[side]["revision"]).requests for side in "AB"}
    for side, weight in (("A", 80), ("B", 20)):
        figures = variants[side]
        assert figures["weight"] == weight and figures["successRate"] == 1.0
        # Prometheus' window holds most of what the router sent the variant (A served before too).
        assert 20 <= figures["requests"] <= sent[side] + 5, (side, figures, sent)
        assert figures["metrics"]["inferences"] == pytest.approx(figures["requests"], rel=0.05)
    assert variants["A"]["meanLatencyMs"] < SLOW_MS <= variants["B"]["meanLatencyMs"]
    comparisons = {c["metric"]: c for c in experiment["comparison"]}
    assert not comparisons["successRate"]["significant"]  # both served every request
    latency = comparisons["meanLatencyMs"]
    assert latency["significant"] and latency["low"] > SLOW_MS / 2
    assert latency["statement"].startswith("B's mean latency is higher than A's by ")
    concluded_event = next(e for e in stack.events() if e.get("reason") == "ExperimentConcluded")
    assert "B's mean latency is higher than A's" in concluded_event["message"]

    await stack.cluster.annotate(NAMESPACE, NAME, {PROMOTE_ANNOTATION: b})
    status = await stack.wait_until(
        lambda: (s := stack.status()).get("stableRevision") == b and "canaryRevision" not in s and s,
        60,
        "B promoted by the annotation",
    )
    assert status["phase"] == "Ready" and status["traffic"] == [{"revision": b, "percent": 100}]
    assert (status["experiment"]["winner"], status["experiment"]["ended"]) == ("B", True)
    assert status["message"] == f"experiment decided for B: revision {b} promoted by annotation"


async def test_an_experiment_whose_b_breaks_the_slo_is_rolled_back_before_its_end(stack: LocalStack) -> None:
    a = await start_experiment(stack, 50, latency_max_ms=3 * SLOW_MS)
    status = await stack.wait_until(
        lambda: (s := stack.status()).get("phase") == "RolledBack" and s, 120, "B rolled back by its latency check"
    )
    b = status["failedRevision"]
    assert status["stableRevision"] == a and status["traffic"] == [{"revision": a, "percent": 100}]
    assert status["message"].startswith(f"rolled back revision {b}: latency ")
    experiment = status["experiment"]
    assert experiment["ended"] and not experiment["concluded"] and "winner" not in experiment
    assert experiment["message"].startswith(f"ended without a decision: rolled back revision {b}: latency ")
    assert "RolledBack" in stack.event_reasons() and "ExperimentConcluded" not in stack.event_reasons()


async def test_an_a_b_n_experiment_stops_a_failing_variant_alone_and_the_annotation_picks_another(
    stack: LocalStack,
) -> None:
    """A/B/n: v1 serves (A); v2 is B at 20%, "slow" (120 ms per request) and "flaky" (30% of
    requests fail) run beside it as variants beyond B at 15% each, every one a real tritonserver
    pod behind the router's HTTPRoute weights. flaky fails its success-rate check twice and is
    stopped alone (its share back to A, its pods gone) while the experiment goes on; status
    reports every variant's real figures; the promote annotation naming slow's revision makes it
    the stable, with B kept as failed."""
    a = (await deploy(stack, "v1"))["stableRevision"]
    isvc = stack.inference_service("v2")
    rollout = isvc["spec"]["rollout"]
    del rollout["steps"]
    rollout["strategy"] = "Experiment"
    root = stack.models_root
    rollout["experiment"] = {
        "weight": 20,
        "duration": "30s",
        "variants": [
            {"name": "slow", "weight": 15, "model": {"storageUri": f"file://{root / 'slow'}"}},
            {"name": "flaky", "weight": 15, "model": {"storageUri": f"file://{root / 'v3'}"}},
        ],
    }
    rollout["analysis"]["latency"] = {"maxMs": 20 * SLOW_MS}
    await stack.apply(isvc)

    def flaky_stopped() -> dict | None:
        variants = ((stack.status().get("canary") or {}).get("variants")) or []
        return stack.status() if any(v["name"] == "flaky" and v.get("stopped") for v in variants) else None

    status = await stack.wait_until(flaky_stopped, 120, "the flaky variant stopped by its checks")
    b = status["canaryRevision"]
    slow, flaky = ({v["name"]: v for v in status["canary"]["variants"]}[n] for n in ("slow", "flaky"))
    assert flaky["stopped"].startswith("stopped after 2 failed checks: successRate")
    assert status["phase"] == "Progressing"  # the experiment goes on
    assert status["traffic"] == [
        {"revision": a, "percent": 65},
        {"revision": b, "percent": 20},
        {"revision": slow["revision"], "percent": 15},
    ]
    await stack.wait_until(lambda: "VariantStopped" in stack.event_reasons() or None, 30, "a VariantStopped Event")
    await stack.wait_until(
        lambda: stack.deployment(f"{NAME}-{flaky['revision']}") is None or None,
        60,
        "the stopped variant's Deployment removed",
    )
    # Every variant was served through the router by its own revision.
    for revision in (a, b, slow["revision"], flaky["revision"]):
        assert stack.router.traffic(NAMESPACE, NAME, revision).requests > 0, revision

    def concluded() -> dict | None:
        experiment = stack.status().get("experiment") or {}
        done = experiment.get("concluded") and experiment.get("resultsAt") == experiment.get("endsAt")
        return stack.status() if done else None

    status = await stack.wait_until(concluded, 120, "the experiment concluded with its final figures")
    variants = {v["name"]: v for v in status["experiment"]["variants"]}
    assert list(variants) == ["A", "B", "slow", "flaky"]
    assert variants["flaky"]["weight"] == 0 and variants["flaky"]["successRate"] < 0.9
    for name in ("A", "B", "slow"):
        assert variants[name]["requests"] >= 10 and variants[name]["successRate"] == 1.0, variants[name]
    assert variants["A"]["meanLatencyMs"] < SLOW_MS <= variants["slow"]["meanLatencyMs"]
    comparisons = {(c["variant"], c["metric"]): c for c in status["experiment"]["comparison"]}
    slower = comparisons[("slow", "meanLatencyMs")]
    assert slower["significant"] and "Bonferroni for 3 variants" in slower["statement"]
    assert comparisons[("flaky", "successRate")]["significant"]

    await stack.cluster.annotate(NAMESPACE, NAME, {PROMOTE_ANNOTATION: slow["revision"]})
    status = await stack.wait_until(
        lambda: (s := stack.status()).get("stableRevision") == slow["revision"] and "canaryRevision" not in s and s,
        60,
        "the slow variant picked by the annotation",
    )
    assert status["phase"] == "Ready" and status["failedRevision"] == b
    assert status["traffic"] == [{"revision": slow["revision"], "percent": 100}]
    assert (status["experiment"]["winner"], status["experiment"]["ended"]) == ("slow", True)
