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

    def read(self, body: Mapping[str, Any]) -> InferenceServiceStatus:
        raw = dict(body.get("status") or {})
        ours = self._written.get(object_key(body))
        if ours and raw != ours[-1] and raw in ours:
            raw = ours[-1]
        try:
            return InferenceServiceStatus.model_validate(raw)
        except ValidationError as err:
            raise UnreadableStatus(_one_line(err)) from err

    async def write(self, body: Mapping[str, Any], old: InferenceServiceStatus, new: InferenceServiceStatus) -> None:
        """Patch status from ``old`` (what we read) to ``new``; nothing when they are equal."""
        old_raw, new_raw = old.dump(), new.dump()
        history = self._written.setdefault(object_key(body), deque([old_raw], maxlen=STATUS_HISTORY))
        if new_raw == old_raw:
            return
        await self._patch(body, replacing_merge_patch(old_raw, new_raw))
        history.append(new_raw)

    async def write_conditions(self, body: Mapping[str, Any], conditions: list[dict[str, Any]]) -> None:
        """Overwrite conditions only (the rest of an unreadable status is left for the user)."""
        await self._patch(body, {"conditions": conditions})
        self._written.pop(object_key(body), None)

    def forget(self, body: Mapping[str, Any]) -> None:
        self._written.pop(object_key(body), None)

    async def _patch(self, body: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        await self.kube.merge_patch(
            *INFERENCE_SERVICE.key, meta["namespace"], meta["name"], {"status": patch}, subresource="status"
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
