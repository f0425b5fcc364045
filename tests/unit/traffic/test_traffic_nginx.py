"""ingress-nginx provider: a stable Ingress and a weighted canary Ingress."""

from __future__ import annotations

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.children import isvc_labels
from tritonop.traffic.nginx import NginxProvider
from tritonop.traffic.routing import Routing

NGINX = {"provider": "nginx", "nginx": {"host": "resnet.example.com", "ingressClassName": "nginx-public"}}


def backend_service(ingress) -> str:
    return ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]


def test_stable_only_is_one_ingress(ref, make_spec, config) -> None:
    (ingress,) = NginxProvider().build(
        ref, make_spec(traffic=NGINX), Routing([TrafficTarget(revision="aaaaaaaaaa", percent=100)]), config
    )
    assert (ingress["apiVersion"], ingress["kind"]) == ("networking.k8s.io/v1", "Ingress")
    assert ingress["metadata"]["name"] == "resnet"
    assert "annotations" not in ingress["metadata"]
    assert ingress["metadata"]["labels"] == isvc_labels("resnet")
    assert ingress["metadata"]["ownerReferences"] == [ref.owner_reference()]
    backend = {"service": {"name": "resnet-aaaaaaaaaa", "port": {"number": 8000}}}
    assert ingress["spec"] == {
        "ingressClassName": "nginx-public",
        "rules": [
            {
                "host": "resnet.example.com",
                "http": {
                    "paths": [
                        {"path": "/v2/models", "pathType": "Prefix", "backend": backend},
                        {"path": "/v2/health", "pathType": "Prefix", "backend": backend},
                        {"path": "/v2", "pathType": "Exact", "backend": backend},
                    ]
                },
            }
        ],
    }


@pytest.mark.parametrize("path", ["/triton", "/triton/"])
def test_exposed_paths_are_under_the_configured_path(ref, make_spec, config, path) -> None:
    traffic = {"provider": "nginx", "nginx": {"host": "resnet.example.com", "path": path}}
    targets = [TrafficTarget(revision="aaaaaaaaaa", percent=70), TrafficTarget(revision="bbbbbbbbbb", percent=30)]
    for ingress in NginxProvider().build(ref, make_spec(traffic=traffic), Routing(targets), config):
        paths = ingress["spec"]["rules"][0]["http"]["paths"]
        assert [(p["path"], p["pathType"]) for p in paths] == [
            ("/triton/v2/models", "Prefix"),
            ("/triton/v2/health", "Prefix"),
            ("/triton/v2", "Exact"),
        ]


def test_canary_ingress_carries_the_canary_weight(ref, make_spec, config) -> None:
    targets = [TrafficTarget(revision="aaaaaaaaaa", percent=70), TrafficTarget(revision="bbbbbbbbbb", percent=30)]
    stable, canary = NginxProvider().build(ref, make_spec(traffic=NGINX), Routing(targets), config)
    assert backend_service(stable) == "resnet-aaaaaaaaaa"
    assert canary["metadata"]["name"] == "resnet-canary"
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "30",
    }
    assert backend_service(canary) == "resnet-bbbbbbbbbb"
    assert canary["spec"]["rules"][0]["host"] == stable["spec"]["rules"][0]["host"]


def test_a_zero_percent_canary_has_no_canary_ingress(ref, make_spec, config) -> None:
    targets = [TrafficTarget(revision="aaaaaaaaaa", percent=100), TrafficTarget(revision="bbbbbbbbbb", percent=0)]
    built = NginxProvider().build(ref, make_spec(traffic=NGINX), Routing(targets), config)
    assert [i["metadata"]["name"] for i in built] == ["resnet"]


def test_more_than_two_revisions_cannot_be_split(ref, make_spec, config) -> None:
    targets = [TrafficTarget(revision=r * 10, percent=p) for r, p in (("a", 50), ("b", 25), ("c", 25))]
    with pytest.raises(ValueError):
        NginxProvider().build(ref, make_spec(traffic=NGINX), Routing(targets), config)
