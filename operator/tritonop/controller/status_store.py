"""Status is written in one place: here. Reading it tells our own stale writes from others'.

Rollout progress lives in status, so a watch event that lags our own last write must not
be taken for the truth (decisions would be made twice), while a status someone else wrote
is taken as it is.
"""

from __future__ import annotations

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
        # Per object, the statuses we wrote (newest last), after the one we first saw: a body
        # showing one of them but the newest is stale (the watch lags our own writes). A status
        # none of them matches was written by someone else and is taken as it is.
        self._written: dict[Key, deque[dict[str, Any]]] = {}
        self._written_version: dict[Key, str] = {}  # resourceVersion our newest write produced

    def read(self, body: Mapping[str, Any]) -> InferenceServiceStatus:
        raw = dict(body.get("status") or {})
        if self._lags_our_write(body):
            raw = self._written[object_key(body)][-1]
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
        history = self._written.setdefault(key, deque([dict(body.get("status") or {})], maxlen=STATUS_HISTORY))
        if new_raw == old_raw:
            return
        patch: dict[str, Any] = {"status": replacing_merge_patch(old_raw, new_raw)}
        if version is not None:
            patch["metadata"] = {"resourceVersion": version}
        written = await self._patch(body, patch)
        history.append(new_raw)
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
        self._written_version.pop(object_key(body), None)

    def _lags_our_write(self, body: Mapping[str, Any]) -> bool:
        """The body shows one of our earlier writes, not our newest: the watch lags behind us."""
        raw = dict(body.get("status") or {})
        ours = self._written.get(object_key(body))
        return ours is not None and raw != ours[-1] and raw in ours and object_key(body) in self._written_version

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


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"status.{where}: {first['msg']}"


def _version(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None
