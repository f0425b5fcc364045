"""The real Controller in process (FakeKube, FakeTriton, FakePrometheus; see tests/support)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.controller_harness import NAME, NAMESPACE, Harness, model_spec
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.config import OperatorConfig
from tritonop.controller.orchestrator import DIRECT_SAMPLE_SECONDS
from tritonop.kube.client import KubeError

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}


def rev(spec: dict, h: Harness) -> str:
    return revision_of(InferenceServiceSpec.model_validate(spec), h.config.triton_image)


async def deployed(spec: dict) -> Harness:
    h = Harness(T0)
    h.apply(spec)
    await h.reconcile()
    await h.tick()
    return h


async def test_first_revision_becomes_ready_and_owned_children_exist() -> None:
    spec = model_spec(traffic=GATEWAY)
    h = await deployed(spec)
    v1 = rev(spec, h)
    assert h.status()["phase"] == "Ready"
    assert h.status()["stableRevision"] == v1
    assert set(h.deployments()) == {f"{NAME}-{v1}"}
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    for obj in h.kube.objects.values():
        if obj["kind"] != "InferenceService":
            assert obj["metadata"]["ownerReferences"][0]["uid"] == h.body()["metadata"]["uid"]
    assert "RevisionReady" in h.reasons()


async def test_a_settled_object_causes_no_writes() -> None:
    h = await deployed(model_spec(traffic=GATEWAY))
    before = len(h.kube.writes())
    for _ in range(5):
        h.advance(5)
        await h.tick()
    await h.reconcile()
    assert len(h.kube.writes()) == before


def unready_pod(revision: str) -> dict:
    labels = {"serving.tritonop.dev/inferenceservice": NAME, "serving.tritonop.dev/revision": revision}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pod-0", "namespace": NAMESPACE, "labels": labels},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "triton", "ready": False, "state": {"running": {}}}],
        },
    }


async def test_ticks_are_time_driven_only_while_something_is_timed() -> None:
    """Controller.tick says when time next drives the object (handlers.py sleeps until then, or
    until a change wakes it): never once settled or while a first revision waits for its pods to
    start, every tick while one of them runs unready or a canary runs, and every
    DIRECT_SAMPLE_SECONDS while a sequential canary has traffic."""
    spec = model_spec(traffic=GATEWAY)
    h = Harness(T0, config=OperatorConfig(triton_image="tritonserver:test", tick_seconds=5))
    h.apply(spec)
    await h.controller.reconcile(h.body())
    # Pending, its pods not started: pod events will tell when that changes.
    assert await h.controller.tick(h.body()) is None
    # A pod runs but is not ready: only Triton can say why (a model that fails to load): polled.
    revision = h.status()["stableRevision"]
    h.kube.put(unready_pod(revision))
    assert await h.controller.tick(h.body()) == 5
    del h.kube.objects[("v1", "Pod", NAMESPACE, "pod-0")]
    h.kube.settle()
    assert await h.controller.tick(h.body()) is None  # Ready, no canary: only a change wakes it
    sequential = model_spec("s3://models/v2", traffic=GATEWAY)
    h.apply(sequential)
    await h.reconcile()
    assert await h.controller.tick(h.body()) == DIRECT_SAMPLE_SECONDS  # the gate opened: traffic
    interval = model_spec("s3://models/v3", traffic=GATEWAY, rollout={"analysis": {"mode": "interval"}})
    h.apply(interval)
    await h.reconcile()
    h.kube.settle()
    assert await h.controller.tick(h.body()) == 5


async def test_healthy_canary_walks_its_steps_and_is_promoted() -> None:
    v1_spec, v2_spec = model_spec(traffic=GATEWAY), model_spec("s3://models/v2", traffic=GATEWAY)
    h = await deployed(v1_spec)
    v1, v2 = rev(v1_spec, h), rev(v2_spec, h)
    h.apply(v2_spec)
    await h.reconcile()
    assert h.status()["canaryRevision"] == v2
    assert h.route_weights() == {f"{NAME}-{v1}": 100}  # gated: no traffic before readiness
    await h.tick()  # gate opens: step 1
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    h.advance(10)
    await h.tick()  # analysis passes: step 2
    assert h.route_weights() == {f"{NAME}-{v1}": 50, f"{NAME}-{v2}": 50}
    h.advance(10)
    await h.tick()  # promoted
    assert h.status()["stableRevision"] == v2
    assert h.route_weights() == {f"{NAME}-{v2}": 100}
    assert "Promoted" in h.reasons()


async def test_failing_canary_is_rolled_back_to_the_untouched_stable() -> None:
    v1_spec, v2_spec = model_spec(traffic=GATEWAY), model_spec("s3://models/v2", traffic=GATEWAY)
    h = await deployed(v1_spec)
    v1, v2 = rev(v1_spec, h), rev(v2_spec, h)
    stable_before = h.deployments()[f"{NAME}-{v1}"]["metadata"]["resourceVersion"]
    h.apply(v2_spec)
    await h.reconcile()
    await h.tick()
    h.prometheus.mode = "fail"
    for _ in range(2):
        h.advance(10)
        await h.tick()
    assert h.status()["phase"] == "RolledBack"
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert h.deployments()[f"{NAME}-{v2}"]["spec"]["replicas"] == 0
    assert h.deployments()[f"{NAME}-{v1}"]["metadata"]["resourceVersion"] == stable_before
    assert h.reasons().count("AnalysisFailed") == 1 and "RolledBack" in h.reasons()


async def test_api_errors_propagate_for_kopf_to_retry_and_the_retry_converges() -> None:
    spec = model_spec(traffic=GATEWAY)
    h = Harness(T0)
    h.apply(spec)
    h.kube.fail_next(500)
    with pytest.raises(KubeError):
        await h.reconcile()
    await h.reconcile()
    await h.tick()
    assert h.status()["phase"] == "Ready"


async def test_provider_change_removes_the_old_providers_objects() -> None:
    h = await deployed(model_spec(traffic=GATEWAY))
    assert h.kube.of_kind("HTTPRoute")
    h.apply(model_spec(traffic={"provider": "istio"}))
    await h.reconcile()
    assert not h.kube.of_kind("HTTPRoute")
    assert set(h.kube.of_kind("VirtualService")) == {NAME}


async def test_unreadable_status_stops_with_a_condition_and_one_event() -> None:
    h = await deployed(model_spec(traffic=GATEWAY))
    body = h.body()
    body["status"]["canary"] = {"step": "not-a-number"}
    h.kube.put(body)
    await h.tick()
    await h.tick()
    ready = next(c for c in h.status()["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidStatus"
    assert h.reasons().count("InvalidStatus") == 1


async def test_network_policy_is_applied_with_the_routes_and_pruned_when_switched_off() -> None:
    spec = model_spec(traffic=GATEWAY)
    h = await deployed(spec)
    (policy,) = h.kube.of_kind("NetworkPolicy").values()
    assert policy["metadata"]["name"] == NAME
    assert policy["metadata"]["ownerReferences"][0]["uid"] == h.body()["metadata"]["uid"]
    h.apply({**spec, "networkPolicy": {"enabled": False}})
    await h.reconcile()
    assert not h.kube.of_kind("NetworkPolicy")
    assert h.route_weights()  # the routes stay
    h.apply(spec)
    await h.reconcile()
    assert set(h.kube.of_kind("NetworkPolicy")) == {NAME}


async def test_operator_default_off_creates_no_network_policy_unless_the_spec_asks() -> None:
    h = Harness(T0, config=OperatorConfig(triton_image="tritonserver:test", network_policy=False))
    spec = model_spec(traffic=GATEWAY)
    h.apply(spec)
    await h.reconcile()
    await h.tick()
    assert h.status()["phase"] == "Ready"
    assert not h.kube.of_kind("NetworkPolicy")
    h.apply({**spec, "networkPolicy": {"enabled": True}})
    await h.reconcile()
    assert set(h.kube.of_kind("NetworkPolicy")) == {NAME}


async def test_a_child_the_builders_refuse_stalls_the_object_with_its_reason() -> None:
    # Admitted by the CRD, refused by the builders: a container security context beyond
    # Pod Security "restricted" without --allow-unrestricted-security-context.
    spec = model_spec(triton={"securityContext": {"privileged": True, "allowPrivilegeEscalation": True}})
    h = Harness(T0)
    h.apply(spec)
    await h.reconcile()
    await h.tick()
    conditions = {c["type"]: c for c in h.status()["conditions"]}
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "SecurityContextNotRestricted", conditions
    assert "SecurityContextNotRestricted" in h.reasons()
    assert h.deployments() == {}


async def test_passes_of_one_object_never_interleave_and_a_settled_object_keeps_no_lock() -> None:
    import asyncio

    h = Harness(T0)
    h.apply(model_spec())
    await h.reconcile()
    inside, overlaps = 0, 0
    original = h.controller._tick

    async def slow_tick(body):  # type: ignore[no-untyped-def]
        nonlocal inside, overlaps
        inside += 1
        overlaps += inside > 1
        await asyncio.sleep(0.01)  # let the other pass try to enter
        try:
            await original(body)
        finally:
            inside -= 1

    h.controller._tick = slow_tick  # type: ignore[method-assign]
    await asyncio.gather(h.tick(), h.tick(), h.reconcile(), h.tick())
    assert overlaps == 0
    assert h.controller._locks == {}  # dropped once no pass holds or waits for it
