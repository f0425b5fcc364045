"""A/B/n in the real Controller (FakeKube, FakeTriton, FakePrometheus with per-revision answers):
a variant beyond B gets its own Deployment before any route names it, a three-way split once B
is weighted, figures and a comparison of its own; it is stopped alone when its checks fail,
picked by the promote annotation naming its revision, and goes with B otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.controller_harness import NAME, Harness, VariantAnswers, model_spec
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.children.variants import variant_specs
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
VARIANT = {"name": "int8", "weight": 30, "model": {"storageUri": "s3://models/int8"}}
ROLLOUT = {
    "strategy": "Experiment",
    "interval": "10s",
    "failureThreshold": 2,
    "experiment": {"weight": 20, "duration": "60s", "variants": [VARIANT]},
}
A_ANSWERS = VariantAnswers(requests=5000, success_rate=0.9995, latency_ms=10.0)
B_ANSWERS = VariantAnswers(requests=2000, success_rate=0.999, latency_ms=12.0)
C_ANSWERS = VariantAnswers(requests=3000, success_rate=0.98, latency_ms=8.0)


def spec_of(uri: str, **changes: Any) -> dict[str, Any]:
    return model_spec(uri, traffic=changes.get("traffic", GATEWAY), rollout=changes.get("rollout", ROLLOUT))


async def experiment_running(**changes: Any) -> tuple[Harness, str, str, str]:
    """v1 serving; v2 as B with variant int8 beside it, the gate opened."""
    h = Harness(T0)
    v1_spec, v2_spec = spec_of("s3://models/v1", **changes), spec_of("s3://models/v2", **changes)
    v1, v2 = (revision_of(InferenceServiceSpec.model_validate(s), h.config.triton_image) for s in (v1_spec, v2_spec))
    (c,) = (v.revision for v in variant_specs(InferenceServiceSpec.model_validate(v2_spec), h.config.triton_image))
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.prometheus.variants = {v1: A_ANSWERS, v2: B_ANSWERS, c: C_ANSWERS}
    h.apply(v2_spec)
    await h.reconcile()
    # The variant's revision exists from the canary's start, named in status, at no weight yet.
    assert f"{NAME}-{c}" in h.deployments()
    assert h.status()["canary"]["variants"] == [{"name": "int8", "revision": c, "weight": 0, "failedChecks": 0}]
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    await h.tick()  # the gate opens: B gets 20%, int8 30%
    return h, v1, v2, c


async def test_the_variant_runs_as_its_own_revision_in_a_three_way_split_with_its_own_figures() -> None:
    h, v1, v2, c = await experiment_running()
    assert h.route_weights() == {f"{NAME}-{v1}": 50, f"{NAME}-{v2}": 20, f"{NAME}-{c}": 30}
    deployment = h.deployments()[f"{NAME}-{c}"]
    assert "s3://models/int8" in str(deployment["spec"]["template"]["spec"]["containers"][0])
    assert [(t["revision"], t["percent"]) for t in h.status()["traffic"]] == [(v1, 50), (v2, 20), (c, 30)]

    h.advance(10)
    await h.tick()  # an analysis of B and of int8, and the figures
    experiment = h.status()["experiment"]
    assert [(v["name"], v["revision"], v["weight"], v.get("requests")) for v in experiment["variants"]] == [
        ("A", v1, 50, 5000),
        ("B", v2, 20, 2000),
        ("int8", c, 30, 3000),
    ]
    by_variant = {(x["variant"], x["metric"]): x for x in experiment["comparison"]}
    assert set(by_variant) == {
        ("B", "successRate"),
        ("B", "meanLatencyMs"),
        ("int8", "successRate"),
        ("int8", "meanLatencyMs"),
    }
    rate = by_variant[("int8", "successRate")]
    assert rate["statement"].startswith("int8's success rate is lower than A's by 1.96 points (97.5% CI")
    assert "Bonferroni for 2 variants" in rate["statement"]
    # 98% fails the default success-rate check (B's 99.9% passes): one failure of two.
    assert h.status()["canary"]["variants"][0]["failedChecks"] == 1
    assert h.status()["canary"]["failedChecks"] == 0
    assert any(e.reason == "AnalysisFailed" and "variant int8" in e.message for e in h.events)


async def test_a_variant_failing_its_checks_is_stopped_alone_and_removed() -> None:
    h, v1, v2, c = await experiment_running()
    h.prometheus.failing = {c}
    for _ in range(2):
        h.advance(10)
        await h.tick()
    (variant,) = h.status()["canary"]["variants"]
    assert variant["weight"] == 0 and variant["stopped"].startswith("stopped after 2 failed checks: successRate")
    assert "VariantStopped" in h.reasons()
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    assert f"{NAME}-{c}" not in h.deployments()  # gone once the status no longer naming it was stored
    assert h.status()["canaryRevision"] == v2  # B's experiment goes on
    h.advance(10)
    await h.tick()
    assert f"{NAME}-{c}" not in h.deployments()  # and not re-created


async def test_the_promote_annotation_naming_the_variant_picks_it() -> None:
    h, v1, v2, c = await experiment_running()
    h.advance(10)
    await h.tick()
    h.annotate({PROMOTE_ANNOTATION: c})
    await h.tick()
    status = h.status()
    assert (status["stableRevision"], status.get("canaryRevision"), status["failedRevision"]) == (c, None, v2)
    assert status["phase"] == "Ready"
    assert status["experiment"]["winner"] == "int8" and status["experiment"]["ended"]
    assert h.route_weights() == {f"{NAME}-{c}": 100}
    assert f"{NAME}-{v1}" not in h.deployments()  # A went once the variant served as the stable
    assert h.deployments()[f"{NAME}-{v2}"]["spec"]["replicas"] == 0  # B kept at 0 as failed
    # The spec still names B (failed): nothing starts again, and the picked stable stays.
    await h.reconcile()
    await h.tick()
    assert h.status()["stableRevision"] == c and h.status().get("canaryRevision") is None
    assert h.route_weights() == {f"{NAME}-{c}": 100}


async def test_a_variant_given_a_new_model_since_the_last_tick_is_picked_under_its_own_name() -> None:
    """The spec gives the variant another model; the annotation names its new revision before
    any tick: the experiment is decided for the variant (not for B), with its new revision."""
    h, _, v2, _ = await experiment_running()
    rollout = {
        **ROLLOUT,
        "experiment": {**ROLLOUT["experiment"], "variants": [{**VARIANT, "model": {"storageUri": "s3://models/int4"}}]},
    }
    h.apply(spec_of("s3://models/v2", rollout=rollout))
    await h.reconcile()
    (c,) = h.status()["canary"]["variants"]
    h.annotate({PROMOTE_ANNOTATION: c["revision"]})
    await h.tick()
    status = h.status()
    assert (status["stableRevision"], status["failedRevision"]) == (c["revision"], v2)
    assert status["experiment"]["winner"] == "int8"
    assert {"name": "int8", "revision": c["revision"]}.items() <= status["experiment"]["variants"][2].items()
    assert status["experiment"]["message"].startswith(f"experiment decided for int8: revision {c['revision']}")
    assert [e.message for e in h.events if e.reason == "Promoted"][-1] == status["experiment"]["message"]


async def test_aborting_b_takes_the_variant_with_it() -> None:
    h, v1, v2, c = await experiment_running()
    h.annotate({ABORT_ANNOTATION: v2})
    await h.tick()
    status = h.status()
    assert (status["stableRevision"], status.get("canaryRevision")) == (v1, None)
    assert status["experiment"]["winner"] == "A"
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert f"{NAME}-{c}" not in h.deployments()


async def test_the_service_provider_sizes_the_variant_by_its_weight() -> None:
    h = Harness(T0)
    v1_spec = model_spec("s3://models/v1", traffic={"provider": "service"}, rollout=ROLLOUT)
    v1_spec["autoscaling"] = {"minReplicas": 10, "maxReplicas": 10}
    v2_spec = {**v1_spec, "model": {"storageUri": "s3://models/v2"}}
    (c,) = (v.revision for v in variant_specs(InferenceServiceSpec.model_validate(v2_spec), h.config.triton_image))
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()
    # A's 50% on 10 pods: B's 20% on 4, int8's 30% on 6.
    assert {r: h.deployments()[f"{NAME}-{r}"]["spec"]["replicas"] for r in (c,)} == {c: 6}
    b = revision_of(InferenceServiceSpec.model_validate(v2_spec), h.config.triton_image)
    assert h.deployments()[f"{NAME}-{b}"]["spec"]["replicas"] == 4


async def test_a_variant_s_file_storage_is_held_to_the_operator_s_allowed_paths() -> None:
    """A variant's storageUri passes the operator's --allow-file-path policy as the spec's does:
    refused (Stalled) before any child of it exists."""
    h = Harness(T0)
    h.apply(spec_of("s3://models/v1"))
    await h.reconcile()
    await h.tick()
    variant = {"name": "local", "weight": 10, "model": {"storageUri": "file:///etc"}}
    rollout = {**ROLLOUT, "experiment": {**ROLLOUT["experiment"], "variants": [variant]}}  # type: ignore[dict-item]
    h.apply(spec_of("s3://models/v2", rollout=rollout))
    before = set(h.deployments())
    await h.reconcile()
    await h.tick()
    conditions = {c["type"]: c for c in h.status()["conditions"]}
    assert conditions["Stalled"]["reason"] == "FileStorageNotAllowed"
    assert conditions["Stalled"]["message"].startswith("rollout.experiment.variants[local].model.storageUri file://")
    assert set(h.deployments()) == before and h.route_weights() == {
        f"{NAME}-{next(iter(before))[len(NAME) + 1 :]}": 100
    }


async def test_a_variant_the_builders_refuse_stalls_the_object_and_a_fixed_spec_goes_on() -> None:
    """Admitted by the CRD, refused when its Deployment is built (a storage Secret on a pvc://
    variant): Stalled with the reason, the stable keeps serving; fixing the spec resumes."""
    h, v1, _, c = await experiment_running()
    broken = {"name": "int8", "weight": 30, "model": {"storageUri": "pvc://claim/models"}}
    rollout = {**ROLLOUT, "experiment": {**ROLLOUT["experiment"], "variants": [broken]}}  # type: ignore[dict-item]
    spec = spec_of("s3://models/v2", rollout=rollout)
    spec["model"]["storageSecretName"] = "s3-credentials"
    h.apply(spec)
    await h.reconcile()
    conditions = {c["type"]: c for c in h.status()["conditions"]}
    assert conditions["Stalled"]["reason"] == "UnsupportedStorageSecret", conditions
    assert h.route_weights()[f"{NAME}-{v1}"] > 0  # A still serves
    h.apply(spec_of("s3://models/v2"))
    await h.reconcile()
    await h.tick()
    conditions = {c["type"]: c for c in h.status()["conditions"]}
    assert conditions["Stalled"]["status"] == "False"
    assert f"{NAME}-{c}" in h.deployments()
