"""Children.route's Routing: mirror and match reach the canary only as the rollout allows,
and never a revision without ready pods (I1, docs/rollout.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.controller.revisions import routing, serving_split
from tritonop.rollout import RolloutState, traffic
from tritonop.traffic import Mirror, Routing

STABLE, CANARY = "aaaaaaaaaa", "bbbbbbbbbb"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
SHADOW = {"shadow": {"percent": 30, "duration": "5m"}}
MATCH = {**GATEWAY, "match": {"header": {"name": "x-canary", "value": "1"}}}

GATED = RolloutState(stable=STABLE, canary=CANARY)
SHADOWING = RolloutState(stable=STABLE, canary=CANARY, started_at=T0, shadow_started_at=T0)
STEPPING = RolloutState(stable=STABLE, canary=CANARY, step=0, weight=10, started_at=T0, step_started_at=T0)
BOTH_READY = {STABLE: 2, CANARY: 1}


def route_for(make_spec, state: RolloutState, ready: dict[str, int], **sections) -> Routing:
    spec = make_spec(**sections)
    targets = serving_split(traffic(state), ready)
    assert targets is not None
    return routing(spec, state, targets, ready)


def test_a_shadowing_canary_with_ready_pods_is_mirrored_its_share(make_spec) -> None:
    routed = route_for(make_spec, SHADOWING, BOTH_READY, rollout=SHADOW, traffic=GATEWAY)
    assert routed.mirror == Mirror(CANARY, 30)
    assert routed.targets == [TrafficTarget(revision=STABLE, percent=100), TrafficTarget(revision=CANARY, percent=0)]
    assert routed.matched is None


@pytest.mark.parametrize(
    ("state", "ready"),
    [
        (SHADOWING, {STABLE: 2, CANARY: 0}),  # its pods went unready: nothing points at it (I1)
        (SHADOWING, {STABLE: 2}),
        (GATED, BOTH_READY),  # not past the gate yet
        (STEPPING, BOTH_READY),  # past the shadow phase: weighted now
        (RolloutState(stable=STABLE), {STABLE: 2}),
    ],
    ids=["unready", "no-deployment", "gated", "stepping", "no-canary"],
)
def test_no_mirror_outside_a_shadow_phase_with_ready_pods(make_spec, state, ready) -> None:
    assert route_for(make_spec, state, ready, rollout=SHADOW, traffic=GATEWAY).mirror is None


def test_no_mirror_when_the_spec_dropped_rollout_shadow_mid_phase(make_spec) -> None:
    assert route_for(make_spec, SHADOWING, BOTH_READY, traffic=GATEWAY).mirror is None


def test_matched_requests_go_to_a_stepping_canary_with_ready_pods(make_spec) -> None:
    routed = route_for(make_spec, STEPPING, BOTH_READY, traffic=MATCH)
    assert routed.matched == CANARY and routed.mirror is None
    assert routed.targets == [TrafficTarget(revision=STABLE, percent=90), TrafficTarget(revision=CANARY, percent=10)]


@pytest.mark.parametrize(
    ("state", "ready", "sections"),
    [
        (STEPPING, {STABLE: 2, CANARY: 0}, {"traffic": MATCH}),  # unready canary: its weight moved to the stable too
        (GATED, BOTH_READY, {"traffic": MATCH}),
        (SHADOWING, BOTH_READY, {"traffic": MATCH, "rollout": SHADOW}),  # shadow: mirrored only
        (STEPPING, BOTH_READY, {"traffic": GATEWAY}),  # no traffic.match
    ],
    ids=["unready", "gated", "shadowing", "no-match"],
)
def test_nothing_is_matched_before_the_steps_or_without_ready_pods(make_spec, state, ready, sections) -> None:
    routed = route_for(make_spec, state, ready, **sections)
    assert routed.matched is None
    assert all(t.percent == 0 or ready.get(t.revision, 0) > 0 for t in routed.targets)
