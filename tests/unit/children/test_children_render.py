"""render() and parse_spec(): children of a raw object, and one-line BuildErrors for bad specs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tritonop.children import BuildError, parse_spec, revision_of
from tritonop.children.refs import PLACEHOLDER_UID
from tritonop.config import OperatorConfig
from tritonop.render import render

ISVC: dict[str, Any] = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "resnet"},
    "spec": {
        "model": {"storageUri": "s3://models/repository"},
        "traffic": {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}},
    },
}


def with_spec(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ISVC)
    obj["spec"].update(changes)
    return obj


def test_render_builds_revision_entry_service_and_routes_at_100_percent() -> None:
    config = OperatorConfig()
    children = render(ISVC, config)
    revision = revision_of(parse_spec(ISVC), config.triton_image)
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("Deployment", f"resnet-{revision}"),
        ("Service", f"resnet-{revision}"),
        ("NetworkPolicy", "resnet"),
        ("Service", "resnet"),
        ("HTTPRoute", "resnet"),
    ]
    for child in children:
        assert child["metadata"]["namespace"] == "default"
        assert child["metadata"]["ownerReferences"][0]["uid"] == PLACEHOLDER_UID
    route = children[-1]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"kind": "Service", "name": f"resnet-{revision}", "port": 8000, "weight": 100}
    ]


def test_render_leaves_out_a_disabled_network_policy() -> None:
    def kinds(obj: dict[str, Any], config: OperatorConfig) -> list[str]:
        return [c["kind"] for c in render(obj, config)]

    assert "NetworkPolicy" not in kinds(with_spec(networkPolicy={"enabled": False}), OperatorConfig())
    assert "NetworkPolicy" not in kinds(ISVC, OperatorConfig(network_policy=False))
    assert "NetworkPolicy" in kinds(with_spec(networkPolicy={"enabled": True}), OperatorConfig(network_policy=False))


def test_render_keeps_a_given_namespace_and_uid() -> None:
    obj = copy.deepcopy(ISVC)
    obj["metadata"] |= {"namespace": "ml", "uid": "1234"}
    for child in render(obj, OperatorConfig()):
        assert child["metadata"]["namespace"] == "ml"
        assert child["metadata"]["ownerReferences"][0]["uid"] == "1234"


@pytest.mark.parametrize(
    "obj, reason, message",
    [
        (with_spec(rollout={"steps": [50, 10]}), "InvalidSpec", "spec.rollout.steps: must be strictly increasing"),
        (
            with_spec(rollout={"steps": [0, 10]}),
            "InvalidSpec",
            "spec.rollout.steps[0]: must be greater than or equal to 1",
        ),
        (with_spec(traffic={"provider": "linkerd"}), "InvalidSpec", "spec.traffic.provider: must be 'gateway-api', "),
        (with_spec(triton={"gpuz": 1}), "InvalidSpec", "spec.triton.gpuz: unknown field"),
        (with_spec(model={}), "InvalidSpec", "spec.model.storageUri: required"),
        (
            with_spec(autoscaling={"minReplicas": 3}),
            "InvalidSpec",
            "spec.autoscaling: minReplicas (3) must not exceed maxReplicas (1)",
        ),
        (
            with_spec(rollout={"analysis": {"checks": [{"name": "x", "query": "up"}]}}),
            "InvalidSpec",
            "spec.rollout.analysis.checks[0]: check 'x' needs min or max",
        ),
        (
            with_spec(traffic={"provider": "gateway-api"}),
            "InvalidSpec",
            "spec.traffic: traffic.provider gateway-api needs traffic.gateway.parentRefs",
        ),
        ({**ISVC, "spec": None}, "InvalidSpec", "spec: required"),
        ({**ISVC, "metadata": {}}, "InvalidObject", "metadata.name is required"),
        ({**ISVC, "kind": "Deployment"}, "InvalidObject", "expected apiVersion serving.tritonop.dev/v1alpha1"),
        (
            with_spec(model={"storageUri": "https://example.com/repo"}),
            "UnsupportedStorageUri",
            "http(s) storageUri must point to a .tar.gz, .tgz or .zip archive",
        ),
    ],
)
def test_bad_objects_raise_a_one_line_build_error(obj: dict[str, Any], reason: str, message: str) -> None:
    with pytest.raises(BuildError) as raised:
        render(obj, OperatorConfig())
    assert raised.value.reason == reason
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_many_errors_are_summarised_on_one_line() -> None:
    obj = with_spec(triton={"a": 1, "b": 2, "c": 3, "d": 4})
    with pytest.raises(BuildError) as raised:
        parse_spec(obj)
    assert str(raised.value) == (
        "spec.triton.a: unknown field; spec.triton.b: unknown field; spec.triton.c: unknown field; and 1 more"
    )
