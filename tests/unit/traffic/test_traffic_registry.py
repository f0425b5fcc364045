"""provider_for and ALL_PROVIDERS: every provider behind one protocol."""

from __future__ import annotations

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.children import isvc_labels
from tritonop.traffic import ALL_PROVIDERS, provider_for
from tritonop.traffic.routing import Routing

TRAFFIC = {
    "gateway-api": {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}], "grpc": True}},
    "istio": {"provider": "istio"},
    "nginx": {"provider": "nginx", "nginx": {"host": "r.example.com"}},
    "service": {"provider": "service"},
}
SPLIT = [TrafficTarget(revision="aaaaaaaaaa", percent=60), TrafficTarget(revision="bbbbbbbbbb", percent=40)]


def test_every_provider_is_registered_once() -> None:
    assert sorted(p.name for p in ALL_PROVIDERS) == sorted(TRAFFIC)


@pytest.mark.parametrize("name", sorted(TRAFFIC))
def test_provider_for_picks_the_spec_provider(make_spec, name: str) -> None:
    assert provider_for(make_spec(traffic=TRAFFIC[name])).name == name


@pytest.mark.parametrize("name", sorted(TRAFFIC))
def test_built_objects_are_owned_labelled_and_of_managed_kinds(ref, make_spec, config, name: str) -> None:
    provider = provider_for(make_spec(traffic=TRAFFIC[name]))
    for obj in provider.build(ref, make_spec(traffic=TRAFFIC[name]), Routing(SPLIT), config):
        assert (obj["apiVersion"], obj["kind"]) in {k.key for k in provider.kinds}
        assert obj["metadata"]["labels"] == isvc_labels("resnet")
        assert obj["metadata"]["ownerReferences"] == [ref.owner_reference()]
        assert obj["metadata"]["namespace"] == "ml"


@pytest.mark.parametrize("name", ["gateway-api", "istio", "nginx"])
def test_weighted_routers_leave_canary_replicas_to_autoscaling(make_spec, name: str) -> None:
    assert provider_for(make_spec(traffic=TRAFFIC[name])).canary_replicas(3, 25) is None
