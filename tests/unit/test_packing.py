"""Packed JSON (tritonop.packing): what the operator keeps per object for the object's life
comes back exactly as it went in, fresh on each unpack, and smaller than plain deflate."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from tritonop import API_VERSION, KIND
from tritonop.packing import INFERENCE_SERVICES, Packer

SETTLED: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {
        "name": "resnet-0042",
        "namespace": "ml",
        "uid": "6a1e0c55-7777-4444-9999-0123456789ab",
        "resourceVersion": "183467",
        "generation": 1,
        "creationTimestamp": "2026-12-01T04:59:32Z",
    },
    "spec": {
        "model": {"name": "m", "storageUri": "s3://models/m"},
        "triton": {"gpus": 0},
        "traffic": {"provider": "service"},
        "rollout": {"steps": [20, 50], "interval": "10s", "failureThreshold": 2},
    },
    "status": {
        "observedGeneration": 1,
        "phase": "Ready",
        "message": "revision 98960b78df serves 100%",
        "url": "http://resnet-0042.ml.svc.cluster.local:8000",
        "replicas": 1,
        "readyReplicas": 1,
        "stableRevision": "98960b78df",
        "traffic": [{"revision": "98960b78df", "percent": 100}],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Serving", "message": "revision 98960b78df serves 100% "
             "(1/1 ready)", "lastTransitionTime": "2026-12-01T05:00:01Z", "observedGeneration": 1},
            {"type": "Reconciling", "status": "False", "reason": "Serving", "message": "",
             "lastTransitionTime": "2026-12-01T05:00:01Z", "observedGeneration": 1},
        ],
    },
}  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        SETTLED,
        SETTLED["status"],
        {},
        {"unicode": "modèle — 模型", "floats": [1.5, 1e-9, -0.0], "nested": [[{"a": None, "b": True}]]},
        {"large": "x" * 100_000},
    ],
)
def test_unpack_gives_back_what_was_packed(value: Any) -> None:
    assert INFERENCE_SERVICES.unpack(INFERENCE_SERVICES.pack(value)) == json.loads(json.dumps(value))


def test_each_unpack_is_a_fresh_copy() -> None:
    packed = INFERENCE_SERVICES.pack(SETTLED)
    first = INFERENCE_SERVICES.unpack(packed)
    first["status"]["conditions"].clear()
    assert INFERENCE_SERVICES.unpack(packed) == SETTLED


def test_the_dictionary_makes_a_settled_body_smaller_than_plain_deflate() -> None:
    raw = json.dumps(SETTLED, separators=(",", ":")).encode()
    plain = zlib.compress(raw, 6)
    packed = INFERENCE_SERVICES.pack(SETTLED)
    assert len(packed) < 0.8 * len(plain) and len(packed) < len(raw) / 3, (len(packed), len(plain), len(raw))


def test_the_dictionary_names_every_field_of_the_api() -> None:
    # Taken from the models, so a field added to the API is in it without editing it.
    for key in (b'"failureThreshold":', b'"lastAnalysis":', b'"storageUri":', b'"canaryRevision":'):
        assert key in INFERENCE_SERVICES.dictionary, key


def test_a_document_unpacks_only_with_its_own_dictionary() -> None:
    other = Packer(b'{"something":"else entirely"}')
    packed = INFERENCE_SERVICES.pack(SETTLED)
    with pytest.raises((zlib.error, ValueError)):
        assert other.unpack(packed) != SETTLED
