"""The sequences that once lost serving capacity (issue: rollout safety), each replayed on the real Controller."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.controller_harness import NAME, NAMESPACE, Harness, model_spec
from tests.support.fake_kube import Crash
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.kube.client import KubeError
from tritonop.rollout import PROMOTE_ANNOTATION

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
V1, V2, V3 = (model_spec(f"s3://models/v{i}", traffic=GATEWAY) for i in (1, 2, 3))


def rev(spec: dict, h: Harness) -> str:
    return revision_of(InferenceServiceSpec.model_validate(spec), h.config.triton_image)


def backend(h: Harness, spec: dict) -> str:
    return f"{NAME}-{rev(spec, h)}"


async def canary_at_last_step(h: Harness) -> None:
    h.apply(V1)
    await h.reconcile()
    await h.tick()
    h.apply(V2)
    await h.reconcile()
    await h.tick()  # gate: 20%
    h.advance(10)
    await h.tick()  # 50%
    h.advance(10)


def assert_serving(h: Harness) -> None:
    weights = h.route_weights()
    assert sum(weights.values()) == 100
    for name, weight in weights.items():
        if weight:
            assert (h.deployments()[name].get("status") or {}).get("readyReplicas"), f"{weight}% to {name}"


async def test_1_lost_status_write_after_promotion_keeps_the_old_stable() -> None:
    h = Harness(T0)
    await canary_at_last_step(h)
    h.kube.fail_next(500, "merge_patch")  # the promoting status write
    with pytest.raises(KubeError):
        await h.tick()
    assert backend(h, V1) in h.deployments(), "old stable deleted before the promotion was stored"
    assert_serving(h)
    h.prometheus.mode = "fail"  # a later failed check must not "roll back" to a deleted revision
    for _ in range(3):
        h.advance(10)
        await h.tick()
        assert_serving(h)
    assert set(h.route_weights()) <= {backend(h, V1), backend(h, V2)}


async def test_1b_crash_after_promotion_resumes_with_both_revisions_or_the_promoted_one() -> None:
    crashes = 0
    for crash_after in range(1, 40):
        probe = Harness(T0)
        await canary_at_last_step(probe)
        probe.kube.crash_at = len(probe.kube.calls) + crash_after
        try:
            await probe.tick()
        except Crash:
            crashes += 1
        else:
            break  # the pass has fewer calls than that: every crash point was tried
        probe.kube.settle()
        assert_serving(probe)
        probe.controller = probe.new_controller()
        await probe.reconcile(force=True)
        await probe.tick()
        assert_serving(probe)
    assert crashes >= 5  # every API call of the promoting pass was a crash point


async def status_cleared_then_resumed(h: Harness) -> None:
    """`kubectl patch --subresource=status -p '{"status": null}'`, then an operator restart."""
    body = h.body()
    del body["status"]
    h.kube.put(body)
    h.controller = h.new_controller()
    await h.reconcile(force=True)


async def test_2_cleared_status_mid_canary_recovers_the_stable_from_the_cluster() -> None:
    h = Harness(T0)
    h.apply(V1)
    await h.reconcile()
    await h.tick()
    h.kube.unschedulable.add(backend(h, V2))
    h.apply(V2)
    await h.reconcile()
    await status_cleared_then_resumed(h)
    assert h.status()["stableRevision"] == rev(V1, h)
    assert h.status()["canaryRevision"] == rev(V2, h)
    assert h.route_weights() == {backend(h, V1): 100}
    assert "StatusRecovered" in h.reasons()


async def test_2b_cleared_status_with_a_weighted_canary_recovers_the_stable_not_the_canary() -> None:
    """A gateway canary with weight: the entry Service selects both revisions and both have the
    same ready pods, so only the stable the entry Service was written with tells them apart.
    (Before, the tie went to the higher revision name: the canary, made stable unjudged.)"""
    probe = Harness(T0)
    # A pair whose canary's revision sorts above the stable's: the old tie-break's pick.
    stable_spec, canary_spec = next((a, b) for a in (V1, V2, V3) for b in (V1, V2, V3) if rev(b, probe) > rev(a, probe))
    h = Harness(T0)
    h.apply(stable_spec)
    await h.reconcile()
    await h.tick()
    h.apply(canary_spec)
    await h.reconcile()
    await h.tick()  # gate: 20%
    assert h.route_weights()[backend(h, canary_spec)] > 0
    await status_cleared_then_resumed(h)
    assert h.status()["stableRevision"] == rev(stable_spec, h)
    assert h.status()["canaryRevision"] == rev(canary_spec, h)
    assert "StatusRecovered" in h.reasons()
    assert_serving(h)


async def test_3_stale_promote_annotation_does_not_promote_a_canary_without_ready_pods() -> None:
    h = Harness(T0)
    await canary_at_last_step(h)
    await h.tick()  # v2 promoted
    h.annotate({PROMOTE_ANNOTATION: rev(V1, h)})  # stale: names a revision that may come back
    h.kube.unschedulable.add(backend(h, V1))
    h.kube.objects.pop(("apps/v1", "Deployment", NAMESPACE, backend(h, V1)), None)
    h.apply(V1)  # Git revert back to v1
    await h.reconcile()
    await h.tick()
    assert h.status()["stableRevision"] == rev(V2, h)
    assert h.route_weights() == {backend(h, V2): 100}
    assert backend(h, V2) in h.deployments()


async def test_3b_stale_promote_annotation_is_ignored_and_reported_until_set_again() -> None:
    h = Harness(T0)
    await canary_at_last_step(h)
    await h.tick()  # v2 promoted; v1 removed
    h.annotate({PROMOTE_ANNOTATION: rev(V1, h)})  # left over: it once meant the v1 canary
    h.apply(V1)  # Git revert: v1 becomes a canary again, pods come up
    await h.reconcile()
    assert "AnnotationIgnored" in h.reasons()
    assert h.status()["canary"]["ignoredAnnotations"] == ["promote"]
    await h.tick()  # gate opens: step 1, not a promotion
    assert h.status()["stableRevision"] == rev(V2, h)
    assert h.route_weights() == {backend(h, V2): 80, backend(h, V1): 20}
    h.annotate({PROMOTE_ANNOTATION: None})
    await h.tick()
    assert h.status()["canary"].get("ignoredAnnotations", []) == []
    h.annotate({PROMOTE_ANNOTATION: rev(V1, h)})  # set again, for this canary: it acts
    await h.tick()
    assert h.status()["stableRevision"] == rev(V1, h)
    assert "Promoted" in h.reasons()


async def test_4_first_revision_serving_from_some_pods_is_kept() -> None:
    h = Harness(T0)
    spec = model_spec("s3://models/v1", traffic=GATEWAY, autoscaling={"minReplicas": 3, "maxReplicas": 3})
    h.apply(spec)
    await h.reconcile()
    name = backend(h, spec)
    deployment = h.kube.objects[("apps/v1", "Deployment", NAMESPACE, name)]
    h.kube.settle()
    deployment["status"].update(readyReplicas=2, conditions=[{"type": "Available", "status": "False"}])
    await h.controller.tick(h.body())
    assert h.status()["phase"] == "Ready"
    h.apply(model_spec("s3://models/v2", traffic=GATEWAY, autoscaling={"minReplicas": 3, "maxReplicas": 3}))
    await h.controller.reconcile(h.body())
    assert name in h.deployments(), "the serving first revision was deleted by the next edit"
    assert h.status()["stableRevision"] == rev(spec, h)


async def test_5_service_provider_promotion_restores_the_spec_replicas_and_autoscaler() -> None:
    service = {"provider": "service"}
    autoscaling = {"minReplicas": 2, "maxReplicas": 4}
    v1 = model_spec("s3://models/v1", traffic=service, autoscaling=autoscaling)
    v2 = model_spec("s3://models/v2", traffic=service, autoscaling=autoscaling)
    h = Harness(T0)
    h.apply(v1)
    await h.reconcile()
    await h.tick()
    h.apply(v2)
    await h.reconcile()
    await h.tick()
    assert h.deployments()[backend(h, v2)]["spec"]["replicas"] == 1  # pinned to its 20%
    for _ in range(3):
        h.advance(10)
        await h.tick()
    assert h.status()["stableRevision"] == rev(v2, h)
    assert "replicas" not in h.deployments()[backend(h, v2)]["spec"]
    assert backend(h, v2) in h.kube.of_kind("HorizontalPodAutoscaler")


async def test_6_a_second_operator_on_a_stale_body_changes_nothing() -> None:
    h = Harness(T0)
    await canary_at_last_step(h)
    stale = h.body()
    h.prometheus.mode = "fail"
    for _ in range(2):
        await h.tick()
        h.advance(10)
    assert h.status()["phase"] == "RolledBack"
    before = h.status()
    h.prometheus.mode = "pass"
    other = h.new_controller()
    with pytest.raises(KubeError) as conflict:
        await other.tick(stale)  # would promote v2 from the stale 50% step
    assert conflict.value.status == 409
    h.kube.settle()
    assert h.status() == before
    assert_serving(h)
    assert h.route_weights() == {backend(h, V1): 100}


async def test_8_foreign_objects_are_never_touched() -> None:
    h = Harness(T0)
    foreign_service = h.kube.put(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": {}}
    )
    foreign_vs = h.kube.put(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": f"{NAME}", "namespace": NAMESPACE},
            "spec": {},
        }
    )
    h.apply(V1)
    await h.reconcile()
    assert h.kube.objects[("v1", "Service", NAMESPACE, NAME)] == foreign_service
    assert h.kube.objects[("networking.istio.io/v1", "VirtualService", NAMESPACE, NAME)] == foreign_vs
    ready = next(c for c in h.status()["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ChildConflict"
    assert "ChildConflict" in h.reasons()
