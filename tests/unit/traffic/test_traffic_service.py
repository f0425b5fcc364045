"""The `service` provider: no router objects; canary sized by replica ratio."""

from __future__ import annotations

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.traffic.routing import Routing
from tritonop.traffic.service import ServiceProvider, canary_replicas


def test_builds_nothing(ref, make_spec, config) -> None:
    targets = [TrafficTarget(revision="aaaaaaaaaa", percent=75), TrafficTarget(revision="bbbbbbbbbb", percent=25)]
    assert ServiceProvider().build(ref, make_spec(), Routing(targets), config) == []


@pytest.mark.parametrize(
    "stable, weight, expected",
    [
        (3, 25, 1),  # 1/4 of pods
        (3, 50, 3),
        (4, 20, 1),
        (2, 60, 3),  # 2*60/40 = 3 -> 3/5 of pods
        (1, 90, 9),
        (10, 10, 1),  # 1.11 -> 1
        (3, 75, 9),
        (1, 5, 1),  # at least one pod
        (0, 50, 1),
        (5, 0, 1),  # a 0% canary still needs a pod to become ready
        (1, 50, 1),
        (3, 20, 1),  # 0.75 rounds up to 1
        (5, 30, 2),  # 2.14 -> 2
        (7, 50, 7),
        (1, 60, 2),  # 1.5 rounds half up
    ],
)
def test_canary_replicas_follow_the_weight(stable: int, weight: int, expected: int) -> None:
    assert canary_replicas(stable, weight) == expected
    assert ServiceProvider().canary_replicas(stable, weight) == expected


@pytest.mark.parametrize("stable, weight", [(3, 100), (3, -1), (-1, 50)])
def test_canary_replicas_refuses_impossible_inputs(stable: int, weight: int) -> None:
    with pytest.raises(ValueError):
        canary_replicas(stable, weight)
