"""JSON the operator keeps for every object while it lives, packed: compact JSON deflated
against a preset dictionary of what such documents repeat (their keys and common values).

At 10,000 InferenceServices each byte kept per object is 10 KB of memory; packed, a child's
cached projection is ~130-300 bytes and a settled InferenceService's body ~200, against
1-2 KB as JSON and several KB as parsed dicts (docs/benchmarks.md, "Memory at 10,000"). Unpacking
costs tens of microseconds, paid once per read by a pass, never by a sleeping object.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from tritonop import API_VERSION, KIND
from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus, Phase

_WBITS = -15  # raw deflate: no header or checksum to keep per document
_LEVEL = 6


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Packer:
    """Packs and unpacks JSON documents against one preset dictionary (zlib's ``zdict``).

    The dictionary is part of the format: a document packed with one dictionary unpacks only
    with the same one. Nothing packed is ever persisted, so changing it needs no migration."""

    def __init__(self, dictionary: bytes) -> None:
        self.dictionary = dictionary[-32768:]  # deflate's window: only the last 32 KB are reachable

    def pack(self, value: Any) -> bytes:
        deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=self.dictionary)
        return deflate.compress(_dumps(value)) + deflate.flush()

    def unpack(self, packed: bytes) -> Any:
        """A fresh copy of what was packed: the caller's to change."""
        inflate = zlib.decompressobj(_WBITS, zdict=self.dictionary)
        return json.loads(inflate.decompress(packed) + inflate.flush())


def _keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterable[str]:
    """The wire names of ``model``'s fields and of every model nested in them."""
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        yield field.alias or name
        for nested in _models_in(field.annotation):
            yield from _keys(nested, seen)


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)


def _isvc_dictionary() -> bytes:
    seen: set[type[BaseModel]] = set()
    keys = dict.fromkeys([*_keys(InferenceServiceSpec, seen), *_keys(InferenceServiceStatus, seen)])
    rare = b",".join(b'"%s":' % key.encode() for key in keys)
    # Most used last: deflate reaches the end of its dictionary with the shortest distances.
    condition = {
        "type": "",
        "status": "False",
        "reason": "",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    typical = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": ""},
            "creationTimestamp": "",
            "generation": 1,
            "name": "",
            "namespace": "",
            "resourceVersion": "",
            "uid": "",
        },
        "spec": {
            "model": {"name": "", "storageUri": "s3://"},
            "triton": {"gpus": 0},
            "traffic": {"provider": "service"},
        },
        "status": {
            "observedGeneration": 1,
            "phase": Phase.ready.value,
            "message": "revision  serves 100%",
            "url": "http://.svc.cluster.local:8000",
            "replicas": 1,
            "readyReplicas": 1,
            "stableRevision": "",
            "traffic": [{"revision": "", "percent": 100}],
            "conditions": [
                {**condition, "type": "Ready", "status": "True", "reason": "Serving", "observedGeneration": 1},
                {**condition, "type": "Reconciling", "reason": "Serving"},
                {**condition, "type": "Stalled", "reason": "Serving"},
            ],
        },
    }
    return rare + _dumps(typical)


INFERENCE_SERVICES = Packer(_isvc_dictionary())
