"""Status is written in one place: here. Reading it tells our own stale writes from others'.

Rollout progress lives in status, so a watch event that lags our own last write must not
be taken for the truth (decisions would be made twice), while a status someone else wrote
is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tritonop.api.models import InferenceServiceStatus
from tritonop.kinds import INFERENCE_SERVICE
from tritonop.kube.apply import replacing_merge_patch
from tritonop.kube.client import KubeClient
from tritonop.packing import INFERENCE_SERVICES
from tritonop.rollout import RolloutState

STATUS_HISTORY = 8
Key = tuple[str, str]


class UnreadableStatus(Exception):
    """The stored status does not parse (edited by hand, or by a tool that does not know it)."""


@dataclass(slots=True)
class _Ours:
    """What the store keeps of one object's status: kept for every object, so packed
    (docs/benchmarks.md, "Memory at 10,000")."""

    # Digests (DIGEST_SIZE bytes each, oldest first) of the status we first saw and of each we
    # wrote since, the last STATUS_HISTORY: a body showing one of them but the newest is stale
    # (the watch lags our own writes). A status none of them matches was written by someone
    # else and is taken as it is.
    history: bytes
    newest: bytes = b""  # our newest write, packed
    version: str | None = None  # resourceVersion our newest write produced; None: none yet

    def wrote(self, status: Mapping[str, Any], version: str) -> None:
        self.history = (self.history + digest(status))[-STATUS_HISTORY * DIGEST_SIZE :]
        self.newest = INFERENCE_SERVICES.pack(status)
        self.version = version

    def shows_earlier_write(self, status: Mapping[str, Any]) -> bool:
        """``status`` is one of our writes before the newest: the watch lags behind us."""
        if self.version is None:
            return False
        shown = digest(status)
        earlier = (self.history[i : i + DIGEST_SIZE] for i in range(0, len(self.history) - DIGEST_SIZE, DIGEST_SIZE))
        return shown != self.history[-DIGEST_SIZE:] and shown in earlier


class StatusStore:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._ours: dict[Key, _Ours] = {}

    def read(self, body: Mapping[str, Any]) -> InferenceServiceStatus:
        raw = dict(body.get("status") or {})
        ours = self._ours.get(object_key(body))
        if ours is not None and ours.shows_earlier_write(raw):
            raw = INFERENCE_SERVICES.unpack(ours.newest)
        try:
            return InferenceServiceStatus.model_validate(raw)
        except ValidationError as err:
            raise UnreadableStatus(_one_line(err)) from err

    async def write(self, body: Mapping[str, Any], old: InferenceServiceStatus, new: InferenceServiceStatus) -> None:
        """Patch status from ``old`` (what we read) to ``new``; nothing when they are equal.

        Conditional on the resourceVersion the decision was made on: when anyone wrote the
        object since, the API server answers 409 (KubeError), nothing is written, and the
        caller's retry re-reads and re-decides. Two operators can never both act on one state.
        """
        key = object_key(body)
        old_raw, new_raw = old.dump(), new.dump()
        ours = self._ours.get(key)
        if ours is None:
            ours = self._ours[key] = _Ours(digest(body.get("status") or {}))
        version = ours.version if ours.shows_earlier_write(body.get("status") or {}) else _version(body)
        if new_raw == old_raw:
            return
        patch: dict[str, Any] = {"status": replacing_merge_patch(old_raw, new_raw)}
        if version is not None:
            patch["metadata"] = {"resourceVersion": version}
        written = await self._patch(body, patch)
        ours.wrote(new_raw, _version(written) or "")

    async def write_conditions(self, body: Mapping[str, Any], conditions: list[dict[str, Any]]) -> None:
        """Overwrite conditions only (the rest of an unreadable status is left for the user)."""
        await self._patch(body, {"status": {"conditions": conditions}})
        self.forget(body)

    def is_our_write(self, body: Mapping[str, Any]) -> bool:
        """The body is the object as our newest status write left it (its watch echo)."""
        ours = self._ours.get(object_key(body))
        return ours is not None and ours.version is not None and ours.version == _version(body)

    def forget(self, body: Mapping[str, Any]) -> None:
        self._ours.pop(object_key(body), None)

    async def _patch(self, body: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        return await self.kube.merge_patch(
            *INFERENCE_SERVICE.key, meta["namespace"], meta["name"], patch, subresource="status"
        )


def rollout_state(status: InferenceServiceStatus) -> RolloutState:
    try:
        return RolloutState.from_status(status)
    except ValueError as err:
        raise UnreadableStatus(str(err)) from err


def object_key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


DIGEST_SIZE = 16


def digest(status: Mapping[str, Any]) -> bytes:
    """A status's fingerprint: equal for statuses that compare equal as parsed JSON. Floats that
    are whole numbers count as the integers they equal (the API server writes 1.0 back as 1)."""
    canonical = json.dumps(_whole_floats_as_ints(status), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=DIGEST_SIZE).digest()


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"status.{where}: {first['msg']}"


def _version(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None
