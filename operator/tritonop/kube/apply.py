"""Idempotent apply: write a child only when its desired content changed.

Each child carries the hash of the manifest we last applied. A reconcile compares the
live object's hash with the desired one and writes nothing when they match, so a
level-based reconcile costs no writes, and with the watch cache (kube/cache.py) no reads. When they
differ, or the object is absent, it is server-side applied with field manager `tritonop`
(force): creation is an apply too, which the API server turns into a create. So every
field of a child is owned by `tritonop` with operation Apply from its first write, and a
later apply that no longer names a field removes it. A POST would leave the fields it
created owned by an `Update` manager, which a later apply never removes (kubernetes#99003).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tritonop import FIELD_MANAGER, GROUP
from tritonop.kube.client import KubeClient

HASH_ANNOTATION = f"{GROUP}/applied-hash"


def manifest_hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_hash(obj: Mapping[str, Any]) -> dict[str, Any]:
    stamped = copy.deepcopy(dict(obj))
    stamped["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = manifest_hash(obj)
    return stamped


def replacing_merge_patch(live: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) that turns `live` into exactly `new`.

    Merge patches merge nested objects, so every key `new` lacks, at any depth, must be
    sent as null or it outlives the state that cleared it. Lists are replaced whole.
    """
    patch: dict[str, Any] = {key: None for key in live if key not in new}
    for key, value in new.items():
        old = live.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = replacing_merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif value != old:
            patch[key] = value
    return patch


class ChildConflict(Exception):
    """A child's name is taken by an object this InferenceService does not own."""

    def __init__(self, kind: str, name: str, namespace: str) -> None:
        super().__init__(
            f"{kind} {namespace}/{name} exists and is not owned by this InferenceService; "
            "tritonop touches only objects it created: rename or delete that object"
        )
        self.kind = kind
        self.name = name


def owner_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller ownerReference."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    name: str
    action: str  # created | updated | unchanged


async def apply(client: KubeClient, obj: Mapping[str, Any], *, force: bool = False) -> ApplyResult:
    meta = obj["metadata"]
    desired = with_hash(obj)
    live = await client.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
    if live is None:
        await client.server_side_apply(desired)  # apply-on-create: every field owned by Apply
        return ApplyResult(obj["kind"], meta["name"], "created")
    if owner_uid(live) != owner_uid(obj):
        raise ChildConflict(obj["kind"], meta["name"], meta["namespace"])
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if live_hash == desired["metadata"]["annotations"][HASH_ANNOTATION] and not force:
        return ApplyResult(obj["kind"], meta["name"], "unchanged")
    await _hand_over_replicas(client, live, desired)
    await client.server_side_apply(desired)
    return ApplyResult(obj["kind"], meta["name"], "updated")


# The field manager that keeps a Deployment's replicas when tritonop stops setting them.
REPLICAS_HANDOVER_MANAGER = "tritonop-handover"


async def _hand_over_replicas(client: KubeClient, live: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
    """Keep the live replica count when an apply stops setting it (pinned -> autoscaled).

    An apply that drops a field it owned removes it, and a Deployment without replicas is
    defaulted to 1: going from 3 pinned replicas to an HPA would cut capacity to 1 until the
    HPA catches up. So the count is first applied, unchanged, under another manager
    (Kubernetes' documented hand-over): it then shares the field, keeps it when tritonop lets
    go, and the HPA takes it from there. (A plain patch of an unchanged value is a no-op and
    records no owner, so it has to be an apply.)
    """
    if desired["kind"] != "Deployment" or "replicas" in (desired.get("spec") or {}):
        return
    replicas = (live.get("spec") or {}).get("replicas")
    if replicas is None or not _applies_replicas(live):
        return
    meta = desired["metadata"]
    handover = {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": replicas},
    }
    await client.server_side_apply(handover, field_manager=REPLICAS_HANDOVER_MANAGER, force=False)


def _applies_replicas(live: Mapping[str, Any]) -> bool:
    """tritonop's apply owns spec.replicas (managedFields; absent on servers without them)."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    return False


async def apply_all(client: KubeClient, objs: Iterable[Mapping[str, Any]], *, force: bool = False) -> list[ApplyResult]:
    return [await apply(client, obj, force=force) for obj in objs]


async def ensure_absent(
    client: KubeClient, api_version: str, kind: str, namespace: str, name: str, *, owner: str
) -> bool:
    """Delete when present and owned by ``owner`` (a uid); a read first, so the common case
    (absent) writes nothing. An object someone else owns is left alone."""
    live = await client.get(api_version, kind, namespace, name, looking=True)
    if live is None or owner_uid(live) != owner:
        return False
    return await client.delete(api_version, kind, namespace, name)
