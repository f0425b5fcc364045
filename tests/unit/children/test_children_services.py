"""Revision Services and the entry Service: ports and selectors."""

from __future__ import annotations

import pytest

from tritonop.children import build_entry_service, build_revision, isvc_labels

ISVC = {"serving.tritonop.dev/inferenceservice": "resnet"}
PORTS = [
    {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"},
    {"name": "grpc", "port": 8001, "targetPort": "grpc", "protocol": "TCP"},
    {"name": "metrics", "port": 8002, "targetPort": "metrics", "protocol": "TCP"},
]


def test_revision_service_selects_only_that_revisions_pods(ref, make_spec, config) -> None:
    (service,) = [c for c in build_revision(ref, make_spec(), "aaaaaaaaaa", config) if c["kind"] == "Service"]
    assert service["metadata"]["name"] == "resnet-aaaaaaaaaa"
    assert service["spec"]["selector"] == {**ISVC, "serving.tritonop.dev/revision": "aaaaaaaaaa"}
    assert service["spec"]["ports"] == PORTS
    assert service["metadata"]["labels"]["serving.tritonop.dev/revision"] == "aaaaaaaaaa"


def test_entry_service_with_one_revision_selects_it(ref, make_spec, config) -> None:
    service = build_entry_service(ref, make_spec(), config, revisions=["aaaaaaaaaa"])
    assert service["metadata"]["name"] == "resnet"
    assert service["metadata"]["labels"] == isvc_labels("resnet")
    assert service["metadata"]["ownerReferences"] == [ref.owner_reference()]
    assert service["spec"]["selector"] == {**ISVC, "serving.tritonop.dev/revision": "aaaaaaaaaa"}
    assert service["spec"]["ports"] == PORTS


def test_entry_service_with_several_revisions_selects_all_pods_of_the_isvc(ref, make_spec, config) -> None:
    service = build_entry_service(ref, make_spec(), config, revisions=["aaaaaaaaaa", "bbbbbbbbbb"])
    assert service["spec"]["selector"] == ISVC


def test_entry_service_needs_a_revision(ref, make_spec, config) -> None:
    with pytest.raises(ValueError):
        build_entry_service(ref, make_spec(), config, revisions=[])
