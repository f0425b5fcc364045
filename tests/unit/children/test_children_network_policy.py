"""The NetworkPolicy of an InferenceService, its switch, and the operator's metrics selectors."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tritonop.children import isvc_labels
from tritonop.children.network_policy import build_network_policy, network_policy_enabled
from tritonop.config import OperatorConfig
from tritonop.selectors import parse_selector

TCP = "TCP"


def rules_by_port(policy) -> dict[int, list[dict]]:
    """port -> the `from` peers of the rule that opens it (each port in exactly one rule)."""
    found: dict[int, list[dict]] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            assert port["protocol"] == TCP
            assert port["port"] not in found, f"port {port['port']} opened twice"
            found[port["port"]] = rule["from"]
    return found


def test_policy_fences_every_revisions_pods_ingress_only(ref, config) -> None:
    policy = build_network_policy(ref, config)
    assert (policy["apiVersion"], policy["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
    assert policy["metadata"]["name"] == "resnet" and policy["metadata"]["namespace"] == "ml"
    assert policy["metadata"]["labels"] == isvc_labels("resnet")
    assert policy["metadata"]["ownerReferences"] == [ref.owner_reference()]
    # Every revision's pods: the InferenceService label only, never the revision's.
    assert policy["spec"]["podSelector"] == {"matchLabels": {"serving.tritonop.dev/inferenceservice": "resnet"}}
    # Ingress only: egress stays open for model downloads.
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "egress" not in policy["spec"]
    kubernetes_validate.validate(policy, "1.30.0", strict=True)


def test_inference_ports_are_open_to_the_cluster_metrics_only_to_monitoring(ref, config) -> None:
    ports = rules_by_port(build_network_policy(ref, config))
    assert set(ports) == {8000, 8001, 8002}
    # Every pod of every namespace: the router, a Gateway, mesh clients and the operator's gates.
    assert ports[8000] == ports[8001] == [{"namespaceSelector": {}}]
    assert ports[8002] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


@pytest.mark.parametrize(
    ("namespaces", "pods", "peer"),
    [
        ("", "", {"namespaceSelector": {}}),
        (
            "team=obs",
            "app.kubernetes.io/name=prometheus",
            {
                "namespaceSelector": {"matchLabels": {"team": "obs"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            },
        ),
        ("", "app=prometheus", {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prometheus"}}}),
    ],
)
def test_metrics_peer_follows_the_operator_selectors(ref, namespaces, pods, peer) -> None:
    config = OperatorConfig(metrics_namespace_selector=namespaces, metrics_pod_selector=pods)
    policy = build_network_policy(ref, config)
    assert rules_by_port(policy)[8002] == [peer]
    kubernetes_validate.validate(policy, "1.30.0", strict=True)


def test_the_operators_own_pods_may_read_the_metrics_port_when_it_knows_them(ref) -> None:
    """Sequential analysis reads Triton's counters from the pods: the chart tells the operator
    where it runs (--operator-namespace, --operator-pod-selector)."""
    config = OperatorConfig(
        operator_namespace="tritonop-system", operator_pod_selector="app.kubernetes.io/name=tritonop"
    )
    policy = build_network_policy(ref, config)
    assert rules_by_port(policy)[8002] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tritonop-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "tritonop"}},
        },
    ]
    kubernetes_validate.validate(policy, "1.30.0", strict=True)
    with pytest.raises(ValueError):
        OperatorConfig(operator_namespace="x", operator_pod_selector="not a selector")


@pytest.mark.parametrize(
    ("spec_enabled", "operator_default", "expected"),
    [(None, True, True), (None, False, False), (False, True, False), (True, False, True)],
)
def test_the_spec_overrides_the_operator_default(make_spec, spec_enabled, operator_default, expected) -> None:
    spec = make_spec() if spec_enabled is None else make_spec(networkPolicy={"enabled": spec_enabled})
    assert network_policy_enabled(spec, OperatorConfig(network_policy=operator_default)) is expected


def test_the_switch_is_no_revision(make_spec) -> None:
    from tritonop.children import revision_of

    assert revision_of(make_spec()) == revision_of(make_spec(networkPolicy={"enabled": False}))


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("", {}),
        ("  ", {}),
        ("kubernetes.io/metadata.name=monitoring", {"kubernetes.io/metadata.name": "monitoring"}),
        ("a=1, b=", {"a": "1", "b": ""}),
    ],
)
def test_selectors_parse_to_match_labels(text, labels) -> None:
    assert parse_selector(text) == labels


@pytest.mark.parametrize("text", ["monitoring", "a==b", "a=b,", "a=b,a=c", "a!=b", "a in (b)", "-a=b", "a=b c"])
def test_malformed_selectors_are_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_selector(text)


def test_operator_settings_fail_at_start_on_a_malformed_selector() -> None:
    with pytest.raises(ValueError):
        OperatorConfig(metrics_pod_selector="prometheus")
    with pytest.raises(ValueError):
        OperatorConfig.from_env({"TRITONOP_METRICS_NAMESPACE_SELECTOR": "name in (monitoring)"})


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("0", False), ("True", True), ("on", True)])
def test_network_policy_default_from_the_environment(raw, expected) -> None:
    assert OperatorConfig.from_env({"TRITONOP_NETWORK_POLICY": raw}).network_policy is expected


def test_a_non_boolean_environment_value_is_refused() -> None:
    with pytest.raises(ValueError):
        OperatorConfig.from_env({"TRITONOP_NETWORK_POLICY": "maybe"})
