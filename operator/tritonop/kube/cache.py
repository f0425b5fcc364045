"""Watch-fed caches of the objects tritonop reads, so a settled InferenceService costs no request.

One informer per watched kind and namespace scope: a paginated LIST, then a WATCH from the
list's resourceVersion (bookmarks on), relisted when the server answers 410 Gone or the
stream breaks (with back-off). Every reconcile, tick and gate reads from memory; the API
server is asked only for writes. What is kept per kind (``WATCHED``):

- Deployments: every Deployment of the scope (controller-runtime caches them the same way),
  ours with spec.replicas, status and tritonop's own managedFields entry, everyone else's
  as metadata only: enough to see that a name is taken by an object we do not own.
- Pods: only those carrying the InferenceService label, projected to the fields the gate's
  "why not ready" reads (phase, podIP, container waiting reasons).
- Every other child kind (Services, autoscalers, PDBs, NetworkPolicies, routes): metadata
  only (PartialObjectMetadata watches): owner, labels and the applied-hash annotation are
  all apply and prune compare.

Each object is kept as a projection of just those fields, packed (tritonop/packing.py): a
read unpacks a fresh copy, so a reader may change what it gets.

A kind the API server does not serve (a provider's CRD not installed) is known to have no
objects: list and prune answer from that knowledge, while a create still asks the server
(the CRD may have been installed since; it is listed again every ``ABSENT_RELIST_S``). A kind
the operator may not list or watch (an older chart's RBAC) is read directly, as before,
with one warning. Until a scope has synced, reads go to the API server too.

Writes are written through: the object a write returns replaces the cached one unless the
cache already holds a newer resourceVersion, so a tick right after a write sees it even
when the watch lags. resourceVersions are compared as integers, which every etcd-backed
API server issues; one that does not parse is taken as newer.

Each change to an object an InferenceService owns (its controller ownerReference, or for
pods its label) calls ``on_change(namespace, name)`` of that InferenceService: a deleted
child wakes its owner, which puts it back (tests/integration/operator/test_reconcile.py,
`test_deleted_child_is_restored_from_its_watch_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tritonop import API_VERSION, GROUP, KIND
from tritonop.children.labels import APP_NAME, ISVC_LABEL, MANAGED_BY, OPERATOR_NAME, PART_OF, REVISION_LABEL
from tritonop.kinds import (
    DEPLOYMENT,
    GRPC_ROUTE,
    HPA,
    HTTP_ROUTE,
    INGRESS,
    NETWORK_POLICY,
    PDB,
    POD,
    SCALED_OBJECT,
    SERVICE,
    VIRTUAL_SERVICE,
    Kind,
)
from tritonop.packing import Packer

log = logging.getLogger("tritonop")

PAGE_SIZE = 500
WATCH_TIMEOUT_S = 300  # the server ends each watch after this; it is then resumed, not relisted
ABSENT_RELIST_S = 30.0
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
APPLY_MANAGER = "tritonop"

Key = tuple[str, str]  # apiVersion, kind
Project = Callable[[Mapping[str, Any]], dict[str, Any]]


def _metadata(obj: Mapping[str, Any], *, managed_fields: bool = False) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    kept = {
        k: meta[k]
        for k in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "labels",
            "annotations",
            "ownerReferences",
            "deletionTimestamp",
        )
        if k in meta
    }
    if managed_fields:
        # Of tritonop's own entries, only whether they own spec.replicas (kube/apply.py hands the
        # count over to the HPA when an apply stops setting it); the rest is large and unread.
        ours = []
        for entry in meta.get("managedFields") or []:
            if entry.get("manager") == APPLY_MANAGER:
                spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
                owned: dict[str, Any] = {"f:spec": {"f:replicas": {}}} if "f:replicas" in spec else {}
                ours.append({"manager": APPLY_MANAGER, "operation": entry.get("operation"), "fieldsV1": owned})
        if ours:
            kept["managedFields"] = ours
    return kept


def project_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": _metadata(obj)}


def owned_by_isvc(obj: Mapping[str, Any]) -> str | None:
    """The name of the InferenceService that controls ``obj`` (its controller ownerReference)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
            return str(ref.get("name"))
    return None


def project_deployment(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Ours: what readiness (status.py `DeploymentReadiness`) and apply read; anyone else's:
    metadata. Conditions keep their type and status, and their message while not True."""
    if owned_by_isvc(obj) is None:
        return project_metadata(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kept: dict[str, Any] = {k: status[k] for k in ("replicas", "readyReplicas") if k in status}
    if "conditions" in status:
        kept["conditions"] = [
            {k: c[k] for k in ("type", "status", "message") if k in c and (k != "message" or c.get("status") != "True")}
            for c in status["conditions"] or []
        ]
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": _metadata(obj, managed_fields=True),
        "spec": {"replicas": spec["replicas"]} if "replicas" in spec else {},
        "status": kept,
    }


def project_pod(obj: Mapping[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    containers = [
        {"name": c.get("name"), "ready": c.get("ready"), "state": c.get("state") or {}}
        for c in status.get("containerStatuses") or []
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(obj),
        "status": {
            k: v
            for k, v in {
                "phase": status.get("phase"),
                "podIP": status.get("podIP"),
                "containerStatuses": containers,
            }.items()
            if v is not None
        },
    }


# What every projection repeats, for zlib to refer back to: a child's packed projection is then
# ~130 bytes (a Service) to ~300 (a Deployment), against 1-2 KB as dicts (docs/benchmarks.md).
_ZDICT = json.dumps(
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "labels": {MANAGED_BY: OPERATOR_NAME, PART_OF: "", ISVC_LABEL: "", REVISION_LABEL: "", APP_NAME: ""},
            "annotations": {f"{GROUP}/applied-hash": ""},
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": KIND, "name": "", "uid": "", "controller": True},
                {"blockOwnerDeletion": True},
            ],
            "managedFields": [
                {"manager": APPLY_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ],
        },
        "spec": {"replicas": 1},
        "status": {
            "phase": "Running",
            "podIP": "",
            "containerStatuses": [{"name": "triton", "ready": True, "state": {"running": {"startedAt": ""}}}],
            "replicas": 1,
            "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}],
        },
    },
    separators=(",", ":"),
).encode()


CHILDREN = Packer(_ZDICT)


@dataclass(frozen=True)
class Watched:
    kind: Kind
    project: Project
    metadata_only: bool = True
    label_selector: str = ""


WATCHED: tuple[Watched, ...] = (
    Watched(DEPLOYMENT, project_deployment, metadata_only=False),
    Watched(POD, project_pod, metadata_only=False, label_selector=ISVC_LABEL),
    *(
        Watched(kind, project_metadata)
        for kind in (SERVICE, HPA, SCALED_OBJECT, PDB, NETWORK_POLICY, HTTP_ROUTE, GRPC_ROUTE, VIRTUAL_SERVICE, INGRESS)
    ),
)
_WATCHED_BY_KEY = {w.kind.key: w for w in WATCHED}


class State(enum.Enum):
    SYNCING = "syncing"  # not listed yet: read from the API server
    SYNCED = "synced"  # memory is the truth, as of the watch
    ABSENT = "absent"  # the server does not serve the kind: no such objects exist
    UNSERVED = "unserved"  # we may not list/watch it: read from the API server


def _version(obj: Mapping[str, Any]) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


def _newer(new: int | None, old: int | None) -> bool:
    """Whether version ``new`` is a later state than ``old`` (the same version is not)."""
    return new is None or old is None or new > old


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Equality terms ``a=b,c=d`` (what the operator lists by); a bare key means it exists."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, eq, value = term.partition("=")
        if (labels.get(key) != value) if eq else (key not in labels):
            return False
    return True


# What the cache holds of one object: its resourceVersion (None: not an integer), its
# InferenceService label (for the index) and its packed projection (``pack``).
Held = tuple[int | None, str | None, bytes]


class _Store:
    """One kind's objects in one scope, by namespace and name, indexed by InferenceService label
    (the operator lists by it: a list costs the object's own children, not the namespace's)."""

    def __init__(self, watched: Watched, namespace: str | None) -> None:
        self.watched = watched
        self.namespace = namespace  # None: every namespace
        self.state = State.SYNCING
        self.objects: dict[str, dict[str, Held]] = {}
        # (namespace, ISVC label) -> names; a tuple, not a set: an object has 1-3 children of a
        # kind, and a set costs 4x a tuple that small, for every object (docs/benchmarks.md).
        self.by_isvc: dict[tuple[str, str], tuple[str, ...]] = {}
        self.synced = asyncio.Event()

    def put(self, obj: Mapping[str, Any]) -> bool:
        """Keep ``obj`` unless a later version of it is held; whether it was kept."""
        meta = obj.get("metadata") or {}
        # Interned: the buckets' and the index's keys are then one string per name.
        namespace, name = sys.intern(meta.get("namespace") or ""), sys.intern(meta.get("name") or "")
        bucket = self.objects.setdefault(namespace, {})
        held = bucket.get(name)
        version = _version(obj)
        if held is not None and not _newer(version, held[0]):
            return False
        if held is not None:
            self._unindex(namespace, name, held)
        projected = self.watched.project(obj)
        label = ((projected.get("metadata") or {}).get("labels") or {}).get(ISVC_LABEL)
        label = sys.intern(label) if isinstance(label, str) else None
        bucket[name] = (version, label, CHILDREN.pack(projected))
        if label is not None:
            names = self.by_isvc.get((namespace, label), ())
            if name not in names:
                self.by_isvc[(namespace, label)] = (*names, name)
        return True

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        held = (self.objects.get(namespace) or {}).get(name)
        return CHILDREN.unpack(held[2]) if held is not None else None

    def remove(self, namespace: str, name: str, version_of_deletion: Mapping[str, Any] | None = None) -> None:
        bucket = self.objects.get(namespace) or {}
        held = bucket.get(name)
        if held is None:
            return
        if version_of_deletion is not None and not _newer(_version(version_of_deletion), held[0]):
            return  # the deletion of an earlier object of that name (ours has been written since)
        del bucket[name]
        self._unindex(namespace, name, held)

    def _unindex(self, namespace: str, name: str, held: Held) -> None:
        label = held[1]
        if label is not None:
            left = tuple(n for n in self.by_isvc.get((namespace, label), ()) if n != name)
            if left:
                self.by_isvc[(namespace, label)] = left
            else:
                self.by_isvc.pop((namespace, label), None)

    def replace(self, objs: Iterable[Mapping[str, Any]]) -> None:
        self.objects = {}
        self.by_isvc = {}
        for obj in objs:
            self.put(obj)

    def matching(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        bucket = self.objects.get(namespace) or {}
        isvc = _term(label_selector, ISVC_LABEL)
        names = self.by_isvc.get((namespace, isvc), ()) if isvc is not None else tuple(bucket)
        candidates = (CHILDREN.unpack(bucket[n][2]) for n in names if n in bucket)
        return [
            o for o in candidates if selector_matches(label_selector, (o.get("metadata") or {}).get("labels") or {})
        ]

    def items(self) -> Iterable[tuple[str, str, dict[str, Any]]]:
        """(namespace, name, projection) of every object held."""
        for namespace, bucket in self.objects.items():
            for name, held in bucket.items():
                yield namespace, name, CHILDREN.unpack(held[2])


def _term(selector: str, key: str) -> str | None:
    """The value an equality term of ``selector`` requires of label ``key``, if it has one."""
    for term in selector.split(","):
        name, eq, value = term.strip().partition("=")
        if eq and name == key:
            return value
    return None


class ObjectCache:
    """Informers for ``WATCHED`` over the operator's namespaces (None: all of them)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        namespaces: Iterable[str] | None,
        *,
        on_change: Callable[[str, str], None] = lambda namespace, name: None,
    ) -> None:
        self._http = http
        self.on_change = on_change
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        self._stores: dict[tuple[Key, str | None], _Store] = {
            (w.kind.key, ns): _Store(w, ns) for w in WATCHED for ns in scopes
        }
        self._scoped = scopes != [None]
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for store in self._stores.values():
            self._tasks.append(asyncio.create_task(self._run(store), name=f"informer {store.watched.kind.plural}"))

    async def wait_synced(self, timeout_s: float) -> bool:
        """Whether every scope listed (or found its kind absent or unserved) within ``timeout_s``."""
        waits = [s.synced.wait() for s in self._stores.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._http.aclose()

    # ------------------------------------------------------------------ reads

    def _store(self, key: Key, namespace: str) -> _Store | None:
        return self._stores.get((key, namespace if self._scoped else None))

    def state(self, key: Key, namespace: str) -> State:
        store = self._store(key, namespace)
        return store.state if store is not None else State.UNSERVED

    def lookup(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached projection (a fresh copy: the caller may change it)."""
        store = self._store(key, namespace)
        assert store is not None and store.state in (State.SYNCED, State.ABSENT)
        return store.get(namespace, name)

    def select(self, key: Key, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The cached projections the selector matches (fresh copies)."""
        store = self._store(key, namespace)
        assert store is not None and store.state in (State.SYNCED, State.ABSENT)
        return store.matching(namespace, label_selector)

    # ------------------------------------------------------------------ write-through

    def written(self, obj: Mapping[str, Any]) -> None:
        """An object a write of ours returned (create, apply, patch)."""
        meta = obj.get("metadata") or {}
        store = self._store((obj.get("apiVersion") or "", obj.get("kind") or ""), meta.get("namespace") or "")
        if store is not None and store.state is not State.UNSERVED and meta.get("name"):
            store.put(obj)

    def deleted(self, key: Key, namespace: str, name: str) -> None:
        store = self._store(key, namespace)
        if store is not None:
            store.remove(namespace, name)

    # ------------------------------------------------------------------ informer

    def _path(self, store: _Store) -> str:
        kind = store.watched.kind
        prefix = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
        return f"{prefix}/namespaces/{store.namespace}/{kind.plural}" if store.namespace else f"{prefix}/{kind.plural}"

    async def _run(self, store: _Store) -> None:
        failures = 0
        while True:
            try:
                version = await self._list(store)
                if version is None:  # absent or unserved: look again later
                    await asyncio.sleep(ABSENT_RELIST_S)
                    continue
                failures = 0
                while version is not None:  # resumed from the last version seen until 410 Gone
                    version = await self._watch(store, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken stream or a refused request: back off and relist
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)] * (0.5 + random.random())
                failures += 1
                log.warning(
                    "watch of %s failed (%s: %s); relisting in %.1f s",
                    store.watched.kind.plural,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _list(self, store: _Store) -> str | None:
        watched = store.watched
        headers = {"Accept": METADATA_LIST} if watched.metadata_only else {}
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        if watched.label_selector:
            params["labelSelector"] = watched.label_selector
        items: list[dict[str, Any]] = []
        while True:
            response = await self._http.get(self._path(store), params=params, headers=headers)
            if response.status_code in (403, 404):
                if response.status_code == 403 and store.state is not State.UNSERVED:
                    log.warning(
                        "may not list and watch %s: reading them from the API server, a request each "
                        "(grant list and watch, as the chart's ClusterRole does)",
                        watched.kind.plural,
                    )
                self._settle(store, State.ABSENT if response.status_code == 404 else State.UNSERVED, [])
                return None
            response.raise_for_status()
            page = response.json()
            for item in page.get("items") or []:
                # List items of a typed list carry no kind; the projection wants them named.
                item.setdefault("apiVersion", watched.kind.api_version)
                item.setdefault("kind", watched.kind.kind)
                items.append(item)
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                self._settle(store, State.SYNCED, items)
                return str(metadata.get("resourceVersion") or "")
            params["continue"] = metadata["continue"]

    def _settle(self, store: _Store, state: State, items: list[dict[str, Any]]) -> None:
        before = self._owners(store)
        store.replace(items)
        store.state = state
        store.synced.set()
        after = self._owners(store)
        # Changed while the watch was down (gone, new or different): wake their owners.
        for key in before.keys() | after.keys():
            old, new = before.get(key), after.get(key)
            if old is not None and (new is None or new[1] != old[1]):
                self.on_change(key[0], old[0])
            if new is not None and (old is None or new[1] != old[1]):
                self.on_change(key[0], new[0])

    def _owners(self, store: _Store) -> dict[tuple[str, str], tuple[str, str]]:
        """(namespace, name) -> (owner, resourceVersion) for the objects an InferenceService owns."""
        found = {}
        for namespace, name, obj in store.items():
            owner = self._owner(store, obj)
            if owner:
                found[(namespace, name)] = (owner, str((obj.get("metadata") or {}).get("resourceVersion")))
        return found

    async def _watch(self, store: _Store, version: str) -> str | None:
        """Follow the watch from ``version``; the version to resume from, or None to relist."""
        watched = store.watched
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_S),
        }
        if watched.label_selector:
            params["labelSelector"] = watched.label_selector
        headers = {"Accept": METADATA_WATCH} if watched.metadata_only else {}
        async with self._http.stream("GET", self._path(store), params=params, headers=headers) as response:
            if response.status_code == 410:
                return None
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", watched.kind.api_version)
                obj.setdefault("kind", watched.kind.kind)
                meta = obj.get("metadata") or {}
                namespace, name = meta.get("namespace") or "", meta.get("name") or ""
                if kind == "DELETED":
                    store.remove(namespace, name, obj)
                elif not store.put(obj):
                    continue  # the echo of our own write (already written through), or older
                self._notify(store, namespace, obj)
        return version

    @staticmethod
    def _owner(store: _Store, obj: Mapping[str, Any]) -> str | None:
        if store.watched.kind == POD:
            return ((obj.get("metadata") or {}).get("labels") or {}).get(ISVC_LABEL)
        return owned_by_isvc(obj)

    def _notify(self, store: _Store, namespace: str, obj: Mapping[str, Any]) -> None:
        owner = self._owner(store, obj)
        if owner:
            self.on_change(namespace, owner)
