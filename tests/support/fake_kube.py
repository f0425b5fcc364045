"""An in-memory stand-in for tritonop's KubeClient, for in-process Controller tests.

Emulated (no API server runs in a unit test): objects by (apiVersion, kind, namespace,
name); resourceVersion and uid bookkeeping; label selectors of the `a=b,c=d` form the
operator uses; JSON merge patch; server-side apply as a whole-object replace (tritonop
is the only field manager of its children); and a kubelet stand-in (`settle`) that
writes Deployment status from spec.replicas and which revisions are schedulable.

Faults are injected per call: `fail_next(n, status)` fails the n-th next write, and
`crash_at` raises `Crash` (a stand-in for SIGKILL) at a chosen call number, so a test can
stop the controller between any two API calls and continue with a fresh one.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tritonop.kube.cache import selector_matches
from tritonop.kube.client import KubeError, NotFound

Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
WRITES = ("create", "apply", "merge_patch", "delete", "evict")


class Crash(BaseException):
    """The operator process died at this API call (BaseException: no handler catches it)."""


@dataclass
class Call:
    verb: str
    api_version: str
    kind: str
    namespace: str
    name: str
    body: Any = None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class FakeKube:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # Revision-name prefixes whose pods never become ready (no GPU free, image does not pull).
    unschedulable: set[str] = field(default_factory=set)
    crash_at: int | None = None  # raise Crash when len(calls) reaches this
    _failures: list[tuple[str | None, int]] = field(default_factory=list)  # (verb or None, status)
    _rv: itertools.count = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ fault injection

    def fail_next(self, status: int = 500, verb: str | None = None) -> None:
        """The next write (of ``verb``, or any) fails with ``status`` and changes nothing."""
        self._failures.append((verb, status))

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if self.crash_at is not None and len(self.calls) >= self.crash_at:
            self.crash_at = None
            raise Crash(f"crashed at call {len(self.calls)}: {call.verb} {call.kind} {call.name}")
        if call.verb in WRITES:
            for i, (verb, status) in enumerate(self._failures):
                if verb is None or verb == call.verb:
                    del self._failures[i]
                    raise KubeError(status, f"injected {status} on {call.verb} {call.kind}/{call.name}")

    # ------------------------------------------------------------------ KubeClient surface

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str, *, fresh: bool = False, looking: bool = False
    ) -> dict[str, Any] | None:
        """Always the whole object, as an uncached KubeClient reads it (the cache has its own tests)."""
        self._record(Call("get", api_version, kind, namespace, name))
        obj = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self._record(Call("list", api_version, kind, namespace, label_selector))
        return [
            copy.deepcopy(o)
            for (a, k, ns, _), o in sorted(self.objects.items())
            if (a, k, ns) == (api_version, kind, namespace)
            and selector_matches(label_selector, o["metadata"].get("labels") or {})
        ]

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        key = _key(obj)
        self._record(Call("create", *key, body=obj))
        if key in self.objects:
            raise KubeError(409, f"{key[1]} {key[3]} already exists")
        return self._store(key, copy.deepcopy(dict(obj)), None)

    async def server_side_apply(
        self, obj: Mapping[str, Any], *, field_manager: str = "tritonop", force: bool = True
    ) -> dict[str, Any]:
        key = _key(obj)
        self._record(Call("apply", *key, body=obj))
        live = self.objects.get(key)
        new = copy.deepcopy(dict(obj))
        if live is not None and "status" in live:
            new["status"] = live["status"]
        return self._store(key, new, live)

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        key = (api_version, kind, namespace, name)
        self._record(Call("merge_patch", *key, body={"subresource": subresource, "patch": patch}))
        live = self.objects.get(key)
        if live is None:
            raise NotFound(404, f"{kind} {name} not found")
        expected_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if expected_rv is not None and expected_rv != live["metadata"]["resourceVersion"]:
            raise KubeError(409, f"Operation cannot be fulfilled on {kind} {name}: the object has been modified")
        if subresource == "status":
            new = copy.deepcopy(live)
            new["status"] = merge_patch(live.get("status") or {}, patch.get("status") or {})
        else:
            new = merge_patch(live, {k: v for k, v in patch.items() if k != "status"})
            if "status" in live:
                new["status"] = live["status"]
        return self._store(key, new, live)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        key = (api_version, kind, namespace, name)
        self._record(Call("delete", *key))
        return self.objects.pop(key, None) is not None

    async def evict(self, namespace: str, name: str) -> bool:
        """The pod goes at once (its grace period and PodDisruptionBudget are not emulated)."""
        key = ("v1", "Pod", namespace, name)
        self._record(Call("evict", *key))
        return self.objects.pop(key, None) is not None

    async def aclose(self) -> None:
        pass

    # ------------------------------------------------------------------ test-side helpers

    def _store(self, key: Key, new: dict[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
        meta = new.setdefault("metadata", {})
        meta.setdefault("namespace", key[2])
        meta["uid"] = live["metadata"]["uid"] if live else meta.get("uid") or str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._rv))
        if live is not None and "generation" in live["metadata"]:
            spec_changed = new.get("spec") != live.get("spec")
            meta["generation"] = live["metadata"]["generation"] + (1 if spec_changed else 0)
        else:
            meta.setdefault("generation", 1)
        self.objects[key] = new
        return copy.deepcopy(new)

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace as a user or another controller would (no call recorded)."""
        key = _key(obj)
        return self._store(key, copy.deepcopy(dict(obj)), self.objects.get(key))

    def body(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """What a watch would deliver now."""
        return copy.deepcopy(self.objects[(api_version, kind, namespace, name)])

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k[3]: o for k, o in self.objects.items() if k[1] == kind}

    def collect_garbage(self, owner_uid: str) -> None:
        """kube-controller-manager's garbage collector: dependents of a deleted owner go."""
        for key, obj in list(self.objects.items()):
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in refs):
                del self.objects[key]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.verb in WRITES]

    def settle(self) -> None:
        """The kubelet and Deployment controller: pods come up unless unschedulable."""
        for (_, kind, _, name), obj in self.objects.items():
            if kind != "Deployment":
                continue
            replicas = (obj.get("spec") or {}).get("replicas")
            replicas = 1 if replicas is None else int(replicas)
            ready = 0 if any(name.startswith(p) for p in self.unschedulable) else replicas
            available = ready >= 1 and replicas > 0
            obj["status"] = {
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if available else "False",
                        "message": f"{ready}/{replicas} pods ready",
                    }
                ],
            }


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
