"""Triton's control API closed by default: the derived key, its Secret, and a Deployment that never holds it."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import yaml

from tritonop.children import IsvcRef, build_revision
from tritonop.children.triton_key import (
    KEY_ENV,
    KEY_HEADER,
    RESTRICTED_APIS,
    build_key_secret,
    derive_key,
    key_secret_name,
)
from tritonop.config import OperatorConfig

SECRET = b"operator-secret-for-tests-0123456789abcdef"


def test_the_key_is_stable_per_uid_and_differs_across_uids_and_secrets() -> None:
    key = derive_key(SECRET, "uid-1")
    assert key == derive_key(SECRET, "uid-1")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert derive_key(SECRET, "uid-2") != key
    assert derive_key(SECRET + b"x", "uid-1") != key


def test_the_deployment_holds_no_key_only_a_reference_to_the_secret(ref, make_spec) -> None:
    key = derive_key(SECRET, ref.uid)
    children = build_revision(ref, make_spec(triton={"env": [{"name": "LOG", "value": "1"}]}), "rev1", OperatorConfig())
    text = yaml.safe_dump_all(children) + json.dumps(children)
    assert key not in text
    assert base64.b64encode(key.encode()).decode() not in text
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["env"][-1] == {
        "name": KEY_ENV,
        "valueFrom": {"secretKeyRef": {"name": "resnet-triton-key", "key": "key"}},
    }
    restriction = f"{','.join(RESTRICTED_APIS)}:{KEY_HEADER}=$({KEY_ENV})"
    assert f"--http-restricted-api={restriction}" in container["args"]
    assert f"--grpc-restricted-protocol={restriction}" in container["args"]


def test_the_restriction_leaves_inference_health_metadata_and_statistics_open() -> None:
    assert set(RESTRICTED_APIS) == {"model-repository", "model-config", "shared-memory", "trace", "logging"}


def test_the_key_secret_is_an_owned_child_holding_the_key(ref) -> None:
    key = derive_key(SECRET, ref.uid)
    secret = build_key_secret(ref, key)
    assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret" and secret["type"] == "Opaque"
    meta = secret["metadata"]
    assert meta["name"] == key_secret_name(ref) == "resnet-triton-key"
    assert meta["namespace"] == "ml"
    assert meta["ownerReferences"] == [ref.owner_reference()]
    assert meta["ownerReferences"][0]["uid"] == ref.uid and meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "tritonop",
        "app.kubernetes.io/part-of": "resnet",
        "serving.tritonop.dev/inferenceservice": "resnet",
    }
    assert base64.b64decode(secret["data"]["key"]).decode() == key


def test_the_secret_name_fits_for_the_longest_allowed_name(ref) -> None:
    longest = dataclasses.replace(ref, name="a" * 52)
    assert len(key_secret_name(longest)) <= 63
    assert key_secret_name(IsvcRef(name="m", namespace="ns", uid="u")) == "m-triton-key"
