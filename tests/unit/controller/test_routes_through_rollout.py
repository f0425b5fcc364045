"""The routes the real Controller writes as a canary goes through its shadow phase and steps:
mirrored with no weight, then weighted with traffic.match's requests and sticky clients sent to
it, then nothing of it once it is promoted (FakeKube, FakeTriton, FakePrometheus)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.controller_harness import NAME, Harness, model_spec
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.traffic.targets import cookie_regex

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TRAFFIC = {
    "provider": "gateway-api",
    "gateway": {"parentRefs": [{"name": "gw"}]},
    "match": {"header": {"name": "x-canary", "value": "1"}},
    "sessionAffinity": {"cookieName": "session"},
}
SHADOW = {"steps": [20, 50], "interval": "10s", "failureThreshold": 2, "shadow": {"percent": 30, "duration": "10s"}}


def rules(h: Harness) -> list[dict[str, Any]]:
    return list(h.kube.of_kind("HTTPRoute")[NAME]["spec"]["rules"])


def to_one(rule: dict[str, Any]) -> str | None:
    """The Service of a rule that sends everything it matches to one revision."""
    backends = rule["backendRefs"]
    return backends[0]["name"] if len(backends) == 1 and "weight" not in backends[0] else None


async def test_shadow_mirrors_then_steps_match_and_stick_then_promotion_clears_them() -> None:
    v1_spec = model_spec(traffic=TRAFFIC, rollout=SHADOW)
    v2_spec = model_spec("s3://models/v2", traffic=TRAFFIC, rollout=SHADOW)
    h = Harness(T0)
    v1, v2 = (revision_of(InferenceServiceSpec.model_validate(s), h.config.triton_image) for s in (v1_spec, v2_spec))
    h.apply(v1_spec)
    await h.reconcile()
    await h.tick()
    assert len(rules(h)) == 1 and "filters" not in rules(h)[0]  # no canary: the plain split

    h.apply(v2_spec)
    await h.reconcile()
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    assert "filters" not in rules(h)[0]  # gated: nothing reaches the canary, not even a copy

    await h.tick()  # the gate opens: the shadow phase
    assert h.status()["canary"].get("shadowStartedAt")
    assert h.route_weights() == {f"{NAME}-{v1}": 100}
    (weighted,) = rules(h)  # no match, no sticky rule: the canary has no weight yet
    assert weighted["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"kind": "Service", "name": f"{NAME}-{v2}", "port": 8000}, "percent": 30},
        }
    ]

    h.advance(10)
    await h.tick()  # the shadow period passes: step 1
    assert h.route_weights() == {f"{NAME}-{v1}": 80, f"{NAME}-{v2}": 20}
    weighted, matched, sticky = rules(h)
    assert "filters" not in weighted
    assert to_one(matched) == to_one(sticky) == f"{NAME}-{v2}"
    assert {m["headers"][0]["name"] for m in matched["matches"]} == {"x-canary"}
    assert {m["headers"][0]["value"] for m in sticky["matches"]} == {cookie_regex("session", v2)}

    for _ in range(3):
        h.advance(10)
        await h.tick()
    assert h.status()["stableRevision"] == v2 and h.status().get("canaryRevision") is None
    (only,) = rules(h)
    assert h.route_weights() == {f"{NAME}-{v2}": 100} and "filters" not in only
    assert all("filters" not in b for b in only["backendRefs"])
