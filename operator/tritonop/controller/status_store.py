"""Status is written in one place: here. Reading it tells our own stale writes from others'.

Rollout progress lives in status, so a watch event that lags our own last write must not
be taken for the truth (decisions would be made twice), while a status someone else wrote
is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tritonop.api.models import InferenceServiceStatus
from tritonop.kinds import INFERENCE_SERVICE
from tritonop.kube.apply import replacing_merge_patch
from tritonop.kube.client import KubeClient
from tritonop.rollout import RolloutState

STATUS_HISTORY = 8
Key = tuple[str, str]


class UnreadableStatus(Exception):
    """The stored status does not parse (edited by hand, or by a tool that does not know it)."""


class StatusStore:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        # Per object, the statuses we wrote (newest last), after the one we first saw, each as
        # its digest: a body showing one of them but the newest is stale (the watch lags our own
        # writes). A status none of them matches was written by someone else and is taken as it
        # is. Digests, and the newest alone as JSON, because this is kept for every object:
        # the statuses themselves cost ~5 KB per object at 10,000 (docs/benchmarks.md).
        self._written: dict[Key, deque[bytes]] = {}
        self._newest: dict[Key, bytes] = {}  # our newest write, as JSON
        self._written_version: dict[Key, str] = {}  # resourceVersion our newest write produced

    def read(self, body: Mapping[str, Any]) -> InferenceServiceStatus:
        raw = dict(body.get("status") or {})
        if self._lags_our_write(body):
            raw = json.loads(self._newest[object_key(body)])
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
        version = self._written_version[key] if self._lags_our_write(body) else _version(body)
        history = self._written.setdefault(key, deque([digest(body.get("status") or {})], maxlen=STATUS_HISTORY))
        if new_raw == old_raw:
            return
        patch: dict[str, Any] = {"status": replacing_merge_patch(old_raw, new_raw)}
        if version is not None:
            patch["metadata"] = {"resourceVersion": version}
        written = await self._patch(body, patch)
        history.append(digest(new_raw))
        self._newest[key] = json.dumps(new_raw, separators=(",", ":")).encode()
        self._written_version[key] = _version(written) or ""

    async def write_conditions(self, body: Mapping[str, Any], conditions: list[dict[str, Any]]) -> None:
        """Overwrite conditions only (the rest of an unreadable status is left for the user)."""
        await self._patch(body, {"status": {"conditions": conditions}})
        self.forget(body)

    def is_our_write(self, body: Mapping[str, Any]) -> bool:
        """The body is the object as our newest status write left it (its watch echo)."""
        version = self._written_version.get(object_key(body))
        return version is not None and version == _version(body)

    def forget(self, body: Mapping[str, Any]) -> None:
        self._written.pop(object_key(body), None)
        self._newest.pop(object_key(body), None)
        self._written_version.pop(object_key(body), None)

    def _lags_our_write(self, body: Mapping[str, Any]) -> bool:
        """The body shows one of our earlier writes, not our newest: the watch lags behind us."""
        ours = self._written.get(object_key(body))
        if ours is None or object_key(body) not in self._written_version:
            return False
        shown = digest(body.get("status") or {})
        return shown != ours[-1] and shown in ours

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


def digest(status: Mapping[str, Any]) -> bytes:
    """A status's fingerprint: equal for statuses that compare equal as parsed JSON. Floats that
    are whole numbers count as the integers they equal (the API server writes 1.0 back as 1)."""
    canonical = json.dumps(_whole_floats_as_ints(status), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


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
