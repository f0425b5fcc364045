"""Shadow mirroring, header/cookie matches and sticky splits, per provider.

Each provider renders Routing(targets, mirror, matched) with spec.traffic.match and
spec.traffic.sessionAffinity into its own objects; what a provider cannot express is a
ValueError here (the API refuses those specs before they reach a provider).
"""

from __future__ import annotations

import re

import pytest

from tritonop.api.models import TrafficTarget
from tritonop.traffic import ALL_PROVIDERS, Mirror, Routing
from tritonop.traffic.exposure import GRPC_METHODS
from tritonop.traffic.gateway_api import GatewayApiProvider
from tritonop.traffic.istio import IstioProvider
from tritonop.traffic.nginx import NginxProvider
from tritonop.traffic.service import ServiceProvider
from tritonop.traffic.targets import cookie_regex

STABLE, CANARY = "aaaaaaaaaa", "bbbbbbbbbb"
SHADOW = Routing(
    [TrafficTarget(revision=STABLE, percent=100), TrafficTarget(revision=CANARY, percent=0)], Mirror(CANARY, 20)
)
SPLIT = [TrafficTarget(revision=STABLE, percent=80), TrafficTarget(revision=CANARY, percent=20)]
MATCHED = Routing(SPLIT, matched=CANARY)
HEADER = {"name": "x-canary", "value": "yes please"}
COOKIE = {"name": "beta", "value": "always"}
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}], "grpc": True}}
NGINX = {"provider": "nginx", "nginx": {"host": "resnet.example.com", "path": "/triton"}}
PREFIX = "nginx.ingress.kubernetes.io/"


def svc(revision: str) -> str:
    return f"resnet-{revision}"


def host(revision: str) -> str:
    return f"resnet-{revision}.ml.svc.cluster.local"


# ---------------------------------------------------------------- the cookie expression


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ("beta=always", True),
        ("session=1; beta=always", True),
        ("session=1;beta=always; other=2", True),
        ("beta=always2", False),
        ("xbeta=always", False),
        ("beta=never", False),
        ("other=beta=always", False),
        ("", False),
    ],
)
def test_the_cookie_expression_matches_exactly_that_cookie(header: str, matches: bool) -> None:
    # Envoy (Istio, Envoy Gateway) matches RE2 against the whole value: fullmatch as here.
    assert bool(re.fullmatch(cookie_regex("beta", "always"), header)) is matches


def test_cookie_names_and_values_are_literal_in_the_expression() -> None:
    pattern = cookie_regex("a-b", "1.5")
    assert re.fullmatch(pattern, "a-b=1.5") and not re.fullmatch(pattern, "a-b=105")


# ---------------------------------------------------------------- gateway-api


def test_gateway_api_mirrors_the_shadow_share_from_every_weighted_rule(ref, make_spec, config) -> None:
    http, grpc = GatewayApiProvider().build(ref, make_spec(traffic=GATEWAY), SHADOW, config)
    assert http["spec"]["rules"][0]["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"kind": "Service", "name": svc(CANARY), "port": 8000}, "percent": 20},
        }
    ]
    # Mirrored, not weighted: the 0% canary gets no backend (I1), only the copy.
    assert [b["name"] for b in http["spec"]["rules"][0]["backendRefs"]] == [svc(STABLE)]
    assert len(http["spec"]["rules"]) == 1
    for rule in grpc["spec"]["rules"]:
        (mirror,) = rule["filters"]
        assert mirror["requestMirror"] == {
            "backendRef": {"kind": "Service", "name": svc(CANARY), "port": 8001},
            "percent": 20,
        }


def test_gateway_api_without_a_mirror_has_no_filters(ref, make_spec, config) -> None:
    http, grpc = GatewayApiProvider().build(ref, make_spec(traffic=GATEWAY), Routing(SPLIT), config)
    assert all("filters" not in rule for route in (http, grpc) for rule in route["spec"]["rules"])


def test_gateway_api_sends_header_and_cookie_matches_to_the_matched_revision(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**GATEWAY, "match": {"header": HEADER, "cookie": COOKIE}})
    http, grpc = GatewayApiProvider().build(ref, spec, MATCHED, config)
    weighted, matched = http["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in weighted["backendRefs"]] == [(svc(STABLE), 80), (svc(CANARY), 20)]
    assert matched["backendRefs"] == [{"kind": "Service", "name": svc(CANARY), "port": 8000}]
    header = {"type": "Exact", "name": "x-canary", "value": "yes please"}
    cookie = {"type": "RegularExpression", "name": "cookie", "value": cookie_regex("beta", "always")}
    # Every exposed path once per condition (alternatives), never anything else.
    assert [(m["path"]["value"], m["headers"]) for m in matched["matches"]] == [
        (path, [condition]) for condition in (header, cookie) for path in ("/v2/models", "/v2/health", "/v2")
    ]
    # gRPC: the header alone, the methods as in the split, at most 8 matches per rule.
    grpc_rules = grpc["spec"]["rules"]
    to_canary = [r for r in grpc_rules if r["backendRefs"] == [{"kind": "Service", "name": svc(CANARY), "port": 8001}]]
    methods = [m["method"]["method"] for rule in to_canary for m in rule["matches"]]
    assert methods == list(GRPC_METHODS)
    assert all(m["headers"] == [header] for rule in to_canary for m in rule["matches"])
    assert all(len(rule["matches"]) <= 8 for rule in grpc_rules)


def test_gateway_api_match_without_a_matched_revision_adds_nothing(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**GATEWAY, "match": {"header": HEADER}})
    http, grpc = GatewayApiProvider().build(ref, spec, Routing(SPLIT), config)
    assert len(http["spec"]["rules"]) == 1 and len(grpc["spec"]["rules"]) == 2


def test_gateway_api_sticky_canary_sets_and_matches_its_cookie(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**GATEWAY, "sessionAffinity": {"cookieName": "canary-session", "maxAge": "1h"}})
    http, grpc = GatewayApiProvider().build(ref, spec, Routing(SPLIT), config)
    weighted, sticky = http["spec"]["rules"]
    stable_backend, canary_backend = weighted["backendRefs"]
    assert "filters" not in stable_backend  # stable clients still move over as the weight grows
    assert canary_backend["filters"] == [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {
                "add": [{"name": "set-cookie", "value": f"canary-session={CANARY}; Max-Age=3600; Path=/; HttpOnly"}]
            },
        }
    ]
    assert sticky["backendRefs"] == [{"kind": "Service", "name": svc(CANARY), "port": 8000}]
    assert {m["headers"][0]["value"] for m in sticky["matches"]} == {cookie_regex("canary-session", CANARY)}
    assert len(sticky["matches"]) == 3
    # gRPC clients keep no cookies: the GRPCRoute is the plain split.
    assert all(len(rule["backendRefs"]) == 2 and "filters" not in rule for rule in grpc["spec"]["rules"])


def test_gateway_api_sticky_rule_only_while_the_canary_has_weight(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**GATEWAY, "sessionAffinity": {}})
    (http, _) = GatewayApiProvider().build(ref, spec, SHADOW, config)
    assert len(http["spec"]["rules"]) == 1
    assert all("filters" not in b for b in http["spec"]["rules"][0]["backendRefs"])


# ---------------------------------------------------------------- istio


def routes(vs):
    return {route["name"]: route for route in vs["spec"]["http"]}


def test_istio_mirrors_the_shadow_share_on_both_ports(ref, make_spec, config) -> None:
    (vs,) = IstioProvider().build(ref, make_spec(traffic={"provider": "istio"}), SHADOW, config)
    by_name = routes(vs)
    assert by_name["http"]["mirror"] == {"host": host(CANARY), "port": {"number": 8000}}
    assert by_name["grpc"]["mirror"] == {"host": host(CANARY), "port": {"number": 8001}}
    assert by_name["http"]["mirrorPercentage"] == by_name["grpc"]["mirrorPercentage"] == {"value": 20.0}
    assert [d["destination"]["host"] for d in by_name["http"]["route"]] == [host(STABLE)]


def test_istio_matched_routes_come_first(ref, make_spec, config) -> None:
    spec = make_spec(traffic={"provider": "istio", "match": {"header": HEADER, "cookie": COOKIE}})
    (vs,) = IstioProvider().build(ref, spec, MATCHED, config)
    assert [r["name"] for r in vs["spec"]["http"]] == ["grpc-match", "http-match", "grpc", "http"]
    by_name = routes(vs)
    assert by_name["http-match"]["route"] == [{"destination": {"host": host(CANARY), "port": {"number": 8000}}}]
    assert by_name["grpc-match"]["route"] == [{"destination": {"host": host(CANARY), "port": {"number": 8001}}}]
    header = {"x-canary": {"exact": "yes please"}}
    cookie = {"cookie": {"regex": cookie_regex("beta", "always")}}
    assert [(m["uri"], m["headers"]) for m in by_name["http-match"]["match"]] == [
        (uri, condition)
        for condition in (header, cookie)
        for uri in ({"prefix": "/v2/models/"}, {"prefix": "/v2/health/"}, {"exact": "/v2"})
    ]
    assert all(m["headers"] == header and m["port"] == 8001 for m in by_name["grpc-match"]["match"])
    assert len(by_name["grpc-match"]["match"]) == len(GRPC_METHODS)


def test_istio_cookie_only_match_leaves_grpc_to_the_split(ref, make_spec, config) -> None:
    spec = make_spec(traffic={"provider": "istio", "match": {"cookie": COOKIE}})
    (vs,) = IstioProvider().build(ref, spec, MATCHED, config)
    assert [r["name"] for r in vs["spec"]["http"]] == ["http-match", "grpc", "http"]


def test_istio_sticky_canary_sets_and_matches_its_cookie(ref, make_spec, config) -> None:
    spec = make_spec(traffic={"provider": "istio", "sessionAffinity": {"maxAge": "90s"}})
    (vs,) = IstioProvider().build(ref, spec, Routing(SPLIT), config)
    assert [r["name"] for r in vs["spec"]["http"]] == [f"http-sticky-{CANARY}", "grpc", "http"]
    by_name = routes(vs)
    stable, canary = by_name["http"]["route"]
    assert "headers" not in stable
    assert canary["headers"] == {
        "response": {"add": {"set-cookie": f"tritonop-canary={CANARY}; Max-Age=90; Path=/; HttpOnly"}}
    }
    sticky = by_name[f"http-sticky-{CANARY}"]
    assert {m["headers"]["cookie"]["regex"] for m in sticky["match"]} == {cookie_regex("tritonop-canary", CANARY)}
    assert sticky["route"] == [{"destination": {"host": host(CANARY), "port": {"number": 8000}}}]
    assert all("headers" not in d for d in by_name["grpc"]["route"])


# ---------------------------------------------------------------- nginx


def test_nginx_mirrors_every_request_from_the_stable_ingress(ref, make_spec, config) -> None:
    (stable,) = NginxProvider().build(ref, make_spec(traffic=NGINX), SHADOW, config)
    assert stable["metadata"]["annotations"] == {
        f"{PREFIX}mirror-target": f"http://{host(CANARY)}:8000$request_uri",
    }


def test_nginx_match_becomes_canary_by_header_and_cookie(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**NGINX, "match": {"header": HEADER, "cookie": {"name": "beta"}}})
    stable, canary = NginxProvider().build(ref, spec, MATCHED, config)
    assert "annotations" not in stable["metadata"]
    assert canary["metadata"]["annotations"] == {
        f"{PREFIX}canary": "true",
        f"{PREFIX}canary-weight": "20",
        f"{PREFIX}canary-by-header": "x-canary",
        f"{PREFIX}canary-by-header-value": "yes please",
        f"{PREFIX}canary-by-cookie": "beta",
    }


def test_nginx_matched_revision_without_weight_gets_a_zero_weight_canary_ingress(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**NGINX, "match": {"header": HEADER}})
    targets = [TrafficTarget(revision=STABLE, percent=100), TrafficTarget(revision=CANARY, percent=0)]
    _, canary = NginxProvider().build(ref, spec, Routing(targets, matched=CANARY), config)
    assert canary["metadata"]["annotations"][f"{PREFIX}canary-weight"] == "0"
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == svc(CANARY)


def test_nginx_cannot_match_to_a_revision_other_than_its_canary(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**NGINX, "match": {"header": HEADER}})
    with pytest.raises(ValueError, match="one canary Ingress"):
        NginxProvider().build(ref, spec, Routing(SPLIT, matched="cccccccccc"), config)


def test_nginx_sticky_canary_uses_cookie_affinity_on_both_ingresses(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**NGINX, "sessionAffinity": {"cookieName": "s", "maxAge": "2h"}})
    stable, canary = NginxProvider().build(ref, spec, Routing(SPLIT), config)
    affinity = {
        f"{PREFIX}affinity": "cookie",
        f"{PREFIX}affinity-canary-behavior": "sticky",
        f"{PREFIX}session-cookie-name": "s",
        f"{PREFIX}session-cookie-max-age": "7200",
        f"{PREFIX}session-cookie-path": "/triton",
    }
    assert stable["metadata"]["annotations"] == affinity
    assert canary["metadata"]["annotations"] == {f"{PREFIX}canary": "true", f"{PREFIX}canary-weight": "20", **affinity}
    # No canary, no affinity: stable pods are balanced per request again.
    (alone,) = NginxProvider().build(ref, spec, Routing([TrafficTarget(revision=STABLE, percent=100)]), config)
    assert "annotations" not in alone["metadata"]


# ---------------------------------------------------------------- service, and every provider


@pytest.mark.parametrize("routing", [SHADOW, MATCHED], ids=["mirror", "matched"])
def test_the_service_provider_refuses_what_it_cannot_route(ref, make_spec, config, routing) -> None:
    with pytest.raises(ValueError, match="no router"):
        ServiceProvider().build(ref, make_spec(), routing, config)


TRAFFIC = {"gateway-api": GATEWAY, "istio": {"provider": "istio"}, "nginx": NGINX}


@pytest.mark.parametrize("name", sorted(TRAFFIC))
def test_no_provider_points_at_a_revision_the_routing_does_not_name(ref, make_spec, config, name) -> None:
    """Mirror and match never add a revision of their own: with a stable-only routing and
    every feature on, only the stable's Service is referenced (I1 holds at the providers)."""
    traffic = {**TRAFFIC[name], "match": {"header": HEADER}, "sessionAffinity": {}}
    provider = next(p for p in ALL_PROVIDERS if p.name == name)
    objs = provider.build(
        ref, make_spec(traffic=traffic), Routing([TrafficTarget(revision=STABLE, percent=100)]), config
    )
    text = repr(objs)
    assert svc(STABLE) in text and "resnet-b" not in text and "cookie" not in text.lower()


# ---------------------------------------------------------------- A/B/n


VARIANT = "cccccccccc"
THREE_WAY = [
    TrafficTarget(revision=STABLE, percent=50),
    TrafficTarget(revision=CANARY, percent=20),
    TrafficTarget(revision=VARIANT, percent=30),
]


def test_gateway_api_splits_an_a_b_n_experiment_and_keeps_clients_on_each_variant(ref, make_spec, config) -> None:
    spec = make_spec(traffic={**GATEWAY, "sessionAffinity": {}})
    http, grpc = GatewayApiProvider().build(ref, spec, Routing(THREE_WAY), config)
    weighted, *sticky = http["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in weighted["backendRefs"]] == [
        (svc(STABLE), 50),
        (svc(CANARY), 20),
        (svc(VARIANT), 30),
    ]
    assert [rule["backendRefs"][0]["name"] for rule in sticky] == [svc(CANARY), svc(VARIANT)]
    assert {m["headers"][0]["value"] for m in sticky[1]["matches"]} == {cookie_regex("tritonop-canary", VARIANT)}
    assert all([b["weight"] for b in rule["backendRefs"]] == [50, 20, 30] for rule in grpc["spec"]["rules"])


def test_istio_splits_an_a_b_n_experiment_and_keeps_clients_on_each_variant(ref, make_spec, config) -> None:
    spec = make_spec(traffic={"provider": "istio", "sessionAffinity": {}})
    (vs,) = IstioProvider().build(ref, spec, Routing(THREE_WAY), config)
    by_name = routes(vs)
    assert [(d["destination"]["host"], d["weight"]) for d in by_name["http"]["route"]] == [
        (host(STABLE), 50),
        (host(CANARY), 20),
        (host(VARIANT), 30),
    ]
    assert {f"http-sticky-{CANARY}", f"http-sticky-{VARIANT}"} <= set(by_name)
