"""A write the API server refuses is visible on the InferenceService: a 403 from RBAC (a
permission missing from the chart's) as reason Forbidden, naming the verb and resource; a child
or status the server finds invalid (422, 400) or an admission webhook denies as reason
Rejected, with the server's words. Ready=False and Stalled=True, one Warning Event; retried
with back-off, and cleared once the write goes through."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.controller_harness import NAMESPACE, Harness, model_spec
from tritonop.controller.refusals import Backoff, describe, reason
from tritonop.kube.client import KubeError

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
REFUSAL = (
    'PATCH /apis/apps/v1/namespaces/ml/deployments/x: deployments.apps "x" is forbidden: User '
    '"system:serviceaccount:tritonop-system:tritonop" cannot patch resource "deployments" in API group "apps" '
    'in the namespace "ml"'
)


def condition(h: Harness, type_: str) -> dict[str, Any]:
    return next(c for c in h.status().get("conditions") or [] if c["type"] == type_)


def refuse_deployment_applies(h: Harness, status: int = 403, refusal: str = REFUSAL) -> list[bool]:
    """RBAC without `patch` on deployments: every apply of a Deployment gets 403 (or ``status``
    with ``refusal``). Returns a switch."""
    refusing = [True]
    apply = h.kube.server_side_apply

    async def guarded(obj: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        if refusing[0] and obj["kind"] == "Deployment":
            name = obj["metadata"]["name"]
            raise KubeError(status, refusal.replace("/x:", f"/{name}:").replace('"x"', f'"{name}"'))
        return await apply(obj, **kwargs)

    h.kube.server_side_apply = guarded  # type: ignore[method-assign]
    return refusing


V2 = model_spec("s3://models/v2", traffic=GATEWAY)


async def serving_v1() -> tuple[Harness, str]:
    """An InferenceService Ready on its first revision, and that revision."""
    h = Harness(T0)
    h.apply(model_spec(traffic=GATEWAY))
    await h.reconcile()
    await h.tick()
    assert condition(h, "Ready")["status"] == "True"
    return h, h.status()["stableRevision"]


async def test_a_forbidden_child_write_is_a_condition_and_an_event_and_clears_when_granted() -> None:
    h, stable = await serving_v1()
    refusing = refuse_deployment_applies(h)
    h.apply(V2)  # a new revision: its Deployment must be applied
    with pytest.raises(KubeError):  # raised on, for kopf to retry
        await h.reconcile()
    ready, stalled = condition(h, "Ready"), condition(h, "Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    assert (stalled["status"], stalled["reason"]) == ("True", "Forbidden")
    assert f"tritonop cannot patch deployments.apps in namespace {NAMESPACE}" in ready["message"]
    assert "ClusterRole" in ready["message"]
    assert h.reasons().count("Forbidden") == 1
    assert h.status()["stableRevision"] == stable and not h.status().get("canaryRevision")  # state untouched

    # Retried with back-off: a tick within the first second asks the API server nothing.
    calls = len(h.kube.calls)
    await h.tick()
    assert len(h.kube.calls) == calls
    # Due again: the retry is refused again, the same report, no second Event; the wait doubles.
    h.advance(1)
    with pytest.raises(KubeError):
        await h.tick()
    assert condition(h, "Ready")["reason"] == "Forbidden"
    assert h.reasons().count("Forbidden") == 1
    h.advance(1)
    calls = len(h.kube.calls)
    await h.tick()
    assert len(h.kube.calls) == calls

    # Granted again: the next due tick reconciles, the canary starts, the report is gone.
    refusing[0] = False
    h.advance(2)
    await h.tick()
    assert h.status()["canaryRevision"]
    assert condition(h, "Ready")["reason"] != "Forbidden"
    assert condition(h, "Stalled")["status"] == "False"
    assert h.reasons().count("Forbidden") == 1


INVALID = (
    'PATCH /apis/apps/v1/namespaces/ml/deployments/x: Deployment.apps "x" is invalid: '
    'spec.template.spec.containers[0].resources.requests: Invalid value: "8": must be less than or equal to '
    "cpu limit of 4"
)
DENIED = (
    'PATCH /apis/apps/v1/namespaces/ml/deployments/x: admission webhook "validation.gatekeeper.sh" denied '
    "the request: [registry-allowlist] image tritonserver:test is not from an allowed registry"
)


@pytest.mark.parametrize(("status", "refusal", "said"), [(422, INVALID, "must be less than or equal to cpu limit of 4"),
                                                          (403, DENIED, "is not from an allowed registry")])  # fmt: skip
async def test_a_child_the_api_server_rejects_is_a_condition_and_an_event_and_clears_when_accepted(
    status: int, refusal: str, said: str
) -> None:
    h, stable = await serving_v1()
    refusing = refuse_deployment_applies(h, status, refusal)
    h.apply(V2)
    with pytest.raises(KubeError):
        await h.reconcile()
    ready, stalled = condition(h, "Ready"), condition(h, "Stalled")
    assert (ready["status"], ready["reason"], stalled["status"], stalled["reason"]) == (
        "False",
        "Rejected",
        "True",
        "Rejected",
    )
    assert ready["message"].startswith(
        f"rejected: the API server refused to patch deployments.apps in namespace {NAMESPACE}"
    )
    assert said in ready["message"] and "ClusterRole" not in ready["message"]
    assert h.reasons().count("Rejected") == 1 and "Forbidden" not in h.reasons()
    assert h.status()["stableRevision"] == stable and not h.status().get("canaryRevision")
    calls = len(h.kube.calls)
    await h.tick()  # within the back-off: nothing asked
    assert len(h.kube.calls) == calls
    refusing[0] = False  # the spec or the policy fixed
    h.advance(1)
    await h.tick()
    assert h.status()["canaryRevision"] and condition(h, "Stalled")["status"] == "False"


def test_other_api_errors_are_not_refusals() -> None:
    assert reason(KubeError(409, "conflict")) is None and reason(KubeError(500, "etcd")) is None
    assert reason(KubeError(404, "not found")) is None and reason(ValueError("x")) is None
    assert reason(KubeError(403, REFUSAL)) == "Forbidden" and reason(KubeError(400, "bad")) == "Rejected"
    policy = (  # a ValidatingAdmissionPolicy whose validation's reason is Forbidden
        'PATCH /apis/apps/v1/namespaces/ml/deployments/x: deployments.apps "x" is forbidden: '
        "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no"
    )
    assert reason(KubeError(403, policy)) == "Rejected"


def test_the_message_names_verb_resource_and_namespace() -> None:
    err = KubeError(403, REFUSAL)
    message = describe(err, "other")
    assert message.startswith("forbidden: tritonop cannot patch deployments.apps in namespace ml: grant it")
    assert message.endswith('cannot patch resource "deployments" in API group "apps" in the namespace "ml"')
    core = KubeError(403, 'GET /api/v1/namespaces/ml/services/cpu: services "cpu" is forbidden: User "u" '
                     'cannot get resource "services" in API group "" in the namespace "ml"')  # fmt: skip
    assert "tritonop cannot get services in namespace ml:" in describe(core, "ml")
    # Without the server's wording: from our client's request line.
    assert "cannot list services in namespace ml" in describe(
        KubeError(403, "GET /api/v1/namespaces/ml/services: no"), "ml"
    )
    assert "cannot create deployments.apps in namespace ml" in describe(
        KubeError(403, "POST /apis/apps/v1/namespaces/ml/deployments: no"), "ml"
    )


def test_backoff_doubles_up_to_a_minute() -> None:
    backoff = Backoff()
    assert backoff.due(T0)
    waits = []
    for _ in range(9):
        backoff.failed(T0)
        assert backoff.not_before is not None
        waits.append((backoff.not_before - T0).total_seconds())
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
