"""A Kubernetes API for tests: kmock's emulator, extended with the behaviour tritonop relies on.

There is no kube-apiserver on these machines (no etcd, kind or Docker), so the control
plane is emulated. kmock's `KubernetesEmulator` is a real HTTP server with stateful
objects, LIST, WATCH, PATCH and DELETE; it lacks some API-server bookkeeping, added here:

- resourceVersion preconditions: a patch naming another resourceVersion gets 409 Conflict;
- metadata.uid, resourceVersion, creationTimestamp on create; generation bumped only
  when spec changes (status writes never bump it), like the real API server;
- label selectors on LIST (equality, inequality and existence forms);
- ownerReference garbage collection (background: dependents of a deleted owner go);
- a Deployment controller stand-in that reports pods ready (or never, per name);
- fault injection: the next N writes to a resource fail with a given HTTP status;
- typed LIST responses (kind, apiVersion, resourceVersion), so kubectl works against it;
- every request recorded (kmock does this) for write counting and RBAC checks.

Server-side apply replaces the applied fields as the sole field manager would (no
managedFields bookkeeping): enough for an operator that owns every field it writes. An
apply to an absent object creates it, as on a real API server (apply-on-create); the
request stays recorded as a PATCH with the create action, and the real server authorizes it
as both `patch` and `create`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import yaml

from tritonop.api.crd import generate_crd
from tritonop.kinds import ALL_KINDS, DEPLOYMENT, SECRET

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# (group/version/plural, kind, namespaced, subresources): every kind tritonop touches (its
# registry), plus what kopf and the tests need.
RESOURCES: list[tuple[str, str, bool, tuple[str, ...]]] = [
    *(
        (f"{k.api_version}/{k.plural}", k.kind, True, ("status", "scale") if k == DEPLOYMENT else ("status",))
        for k in ALL_KINDS
        if k != SECRET
    ),
    ("v1/secrets", "Secret", True, ()),
    ("v1/namespaces", "Namespace", False, ()),
    ("v1/events", "Event", True, ()),
    ("events.k8s.io/v1/events", "Event", True, ()),
    ("apiextensions.k8s.io/v1/customresourcedefinitions", "CustomResourceDefinition", False, ("status",)),
    ("kopf.dev/v1/clusterkopfpeerings", "ClusterKopfPeering", False, ()),
    ("kopf.dev/v1/kopfpeerings", "KopfPeering", True, ()),
]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for the forms the operator and kubectl use."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class Emulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.rv = itertools.count(1)
        self.failures: dict[tuple[str, str], list[int]] = {}  # (method, plural) -> statuses to return
        for path, kind, namespaced, subresources in RESOURCES:
            self.resources[path] = kmock.ResourceInfo(
                kind=kind,
                namespaced=namespaced,
                verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
                subresources=set(subresources),
            )
        crd = generate_crd()
        self.resources["serving.tritonop.dev/v1alpha1/inferenceservices"].shortnames.add("tis")
        self.objects[kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None,
                     crd["metadata"]["name"]] = crd

    # -------------------------------------------------------------- fault injection

    def fail_next(self, method: str, plural: str, status: int = 500, times: int = 1) -> None:
        self.failures.setdefault((method.upper(), plural), []).extend([status] * times)

    # -------------------------------------------------------------- bookkeeping

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None:
            method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
            pending = self.failures.get((method, request.resource.plural or ""))
            if pending:
                status = pending.pop(0)
                raise kmock.KubernetesError(status=status, reason="Injected", message=f"injected {status} for test")
            self._apply_on_create(request)
            data = request.data if isinstance(request.data, dict) else None
            if request.action == kmock.action.CREATE and data is not None:
                meta = data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                meta.setdefault("namespace", request.namespace)
                meta["uid"] = str(uuid.uuid4())
                meta["resourceVersion"] = str(next(self.rv))
                meta["creationTimestamp"] = _now()
                meta["generation"] = 1
            elif request.action == kmock.action.UPDATE and data is not None and request.name:
                key = (request.resource, request.namespace, request.name)
                live = self.objects[key] if key in self.objects else None  # noqa: SIM401 (kmock store: no .get)
                meta = data.setdefault("metadata", {})
                if live is not None and not live.deleted:
                    live_meta = dict(live.get("metadata") or {})
                    expected = meta.get("resourceVersion")
                    if expected is not None and str(expected) != str(live_meta.get("resourceVersion")):
                        # A resourceVersion in the patch is a precondition, as on a real API server.
                        raise kmock.KubernetesError(
                            status=409, reason="Conflict", message="the object has been modified; reload it"
                        )
                    generation = int(live_meta.get("generation") or 1)
                    if request.subresource != "status" and "spec" in data and data["spec"] != live.get("spec"):
                        merged = _merge(dict(live.get("spec") or {}), data["spec"])
                        if merged != live.get("spec"):
                            generation += 1
                    meta["generation"] = generation
                    meta["resourceVersion"] = str(next(self.rv))
                    # Identity fields never change through a patch.
                    for field in ("uid", "creationTimestamp", "name", "namespace"):
                        if field in live_meta:
                            meta[field] = live_meta[field]
                    if "apply-patch" in request.headers.get("Content-Type", ""):
                        # Server-side apply by the sole field manager: fields the applied object no
                        # longer has are removed (a plain merge would keep them).
                        current = json.loads(json.dumps(live.raw))
                        for field in [k for k in data if k not in ("metadata", "status")]:
                            if isinstance(data[field], dict) and isinstance(current.get(field), dict):
                                data[field] = _replacing_patch(current[field], data[field])
                        for field in [k for k in current if k not in data and k not in ("metadata", "status")]:
                            data[field] = None
                if request.subresource == "status":
                    # The status subresource ignores everything but status (and our bookkeeping).
                    for field in [k for k in data if k not in ("status", "metadata")]:
                        del data[field]
        return await super()._handle(request)

    def _apply_on_create(self, request: kmock.Request) -> None:
        """A server-side apply (PATCH, application/apply-patch+yaml) of an absent object creates
        it, as the real API server does: it is served as a create of the applied object.

        kmock matches a request to its handler by identity with the recorded request, so the
        recorded request itself becomes a create (its `action`) and its method stays PATCH:
        the real server authorizes such a request as `patch` and as `create`, and RBAC tests
        read both from it.
        """
        if (
            request.action != kmock.action.UPDATE
            or not request.name
            or request.subresource
            or "apply-patch" not in request.headers.get("Content-Type", "")
            or not isinstance(request.data, dict)
        ):
            return
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return
        meta = request.data.setdefault("metadata", {})
        if meta.get("name", request.name) != request.name:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="the name of the object does not match the name on the URL"
            )
        meta["name"] = request.name
        if request.namespace:
            meta["namespace"] = request.namespace
        request.data.pop("status", None)  # a create ignores status, as the real server does
        object.__setattr__(request, "action", kmock.action.CREATE)  # kmock's Request is a frozen attrs class

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [
                o for o in result["items"] if selector_matches(selector, (o.get("metadata") or {}).get("labels") or {})
            ]
        # Typed lists with a usable resourceVersion, as the API server returns them: kubectl's
        # informers (`kubectl wait`) decode nothing else.
        resource = request.resource
        group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        info = self.resources.get(f"{group_version}/{resource.plural}")
        result["apiVersion"] = group_version
        result["kind"] = f"{getattr(info, 'kind', None) or 'Unknown'}List"
        result["metadata"] = {"resourceVersion": str(next(self.rv))}
        return result

    # -------------------------------------------------------------- views for tests

    @property
    def all_requests(self) -> list[kmock.Request]:
        """Every request served so far, in order."""
        return list(self._requests)

    def live(self, plural_path: str) -> list[dict[str, Any]]:
        """Live objects of a resource like 'apps/v1/deployments'."""
        res = _resource(plural_path)
        return [obj.raw for (r, _, _), obj in list(self.objects.items()) if r == res and not obj.deleted]

    def get(self, plural_path: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (_resource(plural_path), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def writes(self, since: int = 0, exclude: tuple[str, ...] = ("events",)) -> list[kmock.Request]:
        """Write requests (POST/PUT/PATCH/DELETE) since request number `since`."""
        return [
            r
            for r in self.all_requests[since:]
            if str(getattr(r.method, "value", r.method)).upper() in WRITE_METHODS
            and (r.resource is None or r.resource.plural not in exclude)
        ]


def _resource(plural_path: str) -> kmock.resource:
    parts = plural_path.split("/")
    if len(parts) == 2:
        return kmock.resource("", parts[0], parts[1])
    return kmock.resource(parts[0], parts[1], parts[2])


def _replacing_patch(live: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `live` into exactly `new` (nulls for keys `new` lacks)."""
    patch: dict[str, Any] = {k: None for k in live if k not in new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(live.get(key), dict):
            patch[key] = _replacing_patch(live[key], value)
        else:
            patch[key] = value
    return patch


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class Cluster:
    """A running emulator plus an HTTP client to it, the stand-in controllers, and a kubeconfig."""

    def __init__(self, emulator: Emulator, url: str, workdir: Path) -> None:
        self.emulator = emulator
        self.url = url.rstrip("/")
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
                    "users": [{"name": "test", "user": {"token": "test"}}],
                    "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
                    "current-context": "kmock",
                }
            )
        )
        self.http = aiohttp.ClientSession(base_url=self.url)
        # Deployments whose pods never become ready (name prefixes).
        self.never_ready: set[str] = set()
        self.deployment_controller = True

    async def close(self) -> None:
        await self.http.close()

    async def request(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        async with self.http.request(method, path, json=body, headers=headers) as resp:
            payload = await resp.json(content_type=None)
            if resp.status >= 400:
                raise AssertionError(f"{method} {path}: {resp.status} {payload}")
            return payload

    async def apply_isvc(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or merge-patch the spec of, an InferenceService (what `kubectl apply` does here)."""
        ns, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]
        obj["metadata"]["namespace"] = ns
        path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{ns}/inferenceservices"
        if self.emulator.get("serving.tritonop.dev/v1alpha1/inferenceservices", ns, name) is None:
            return await self.request("POST", path, obj)
        patch = {"spec": obj["spec"], "metadata": {"annotations": obj["metadata"].get("annotations")}}
        return await self.request("PATCH", f"{path}/{name}", patch, "application/merge-patch+json")

    async def replace_spec(self, ns: str, name: str, spec: dict[str, Any]) -> None:
        """Swap the whole spec (a JSON merge patch that nulls keys the new spec lacks)."""
        live = self.isvc(ns, name) or {}
        patch = _replacing_patch(live.get("spec") or {}, spec)
        path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{ns}/inferenceservices/{name}"
        await self.request("PATCH", path, {"spec": patch}, "application/merge-patch+json")

    async def annotate(self, ns: str, name: str, annotations: dict[str, str]) -> None:
        path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{ns}/inferenceservices/{name}"
        await self.request("PATCH", path, {"metadata": {"annotations": annotations}}, "application/merge-patch+json")

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)

    def isvc(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.emulator.get("serving.tritonop.dev/v1alpha1/inferenceservices", ns, name)

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return (self.isvc(ns, name) or {}).get("status") or {}

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        events = self.emulator.live("v1/events")
        return [e for e in events if name is None or (e.get("involvedObject") or {}).get("name") == name]

    async def run_controllers(self, stop: asyncio.Event, period: float = 0.2) -> None:
        """Stand-ins for kube-controller-manager: Deployment status and ownerReference GC."""
        while not stop.is_set():
            if self.deployment_controller:
                await self._deployments()
            await self._garbage_collect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    async def _deployments(self) -> None:
        for dep in self.emulator.live("apps/v1/deployments"):
            meta, spec = dep["metadata"], dep.get("spec") or {}
            replicas = int(spec.get("replicas", 1))
            ready = 0 if any(meta["name"].startswith(p) for p in self.never_ready) else replicas
            status = {
                "observedGeneration": meta.get("generation", 1),
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "updatedReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready >= min(1, replicas) and replicas > 0 else "False",
                        "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                        "message": f"{ready}/{replicas} pods ready",
                    }
                ],
            }
            if dep.get("status") != status:
                path = f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}/status"
                await self.request("PATCH", path, {"status": status}, "application/merge-patch+json")

    async def _garbage_collect(self) -> None:
        uids = {
            (o.get("metadata") or {}).get("uid")
            for (_, _, _), obj in list(self.emulator.objects.items())
            if not obj.deleted
            for o in [obj.raw]
        }
        for (res, ns, name), obj in list(self.emulator.objects.items()):
            if obj.deleted:
                continue
            owners = (obj.raw.get("metadata") or {}).get("ownerReferences") or []
            if owners and not any(o.get("uid") in uids for o in owners):
                prefix = "/api" if res.group == "" else f"/apis/{res.group}"
                path = f"{prefix}/{res.version}/namespaces/{ns}/{res.plural}/{name}"
                with contextlib.suppress(AssertionError):
                    await self.delete(path)


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    """An emulated cluster with its controllers running."""
    with tempfile.TemporaryDirectory(prefix="tritonop-kmock-") as tmp:
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            c = Cluster(emulator, str(server.url), Path(tmp))
            stop = asyncio.Event()
            task = asyncio.create_task(c.run_controllers(stop))
            try:
                yield c
            finally:
                stop.set()
                await task
                await c.close()


class OperatorProcess:
    """The real operator (`python -m tritonop run`) as a subprocess pointed at a kubeconfig."""

    def __init__(self, kubeconfig: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None):
        self.kubeconfig = kubeconfig
        self.args = list(args)
        self.env = env or {}
        self.log_path = log or Path(tempfile.mkstemp(prefix="tritonop-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open for the process's life; closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tritonop", "run", *self.args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    async def astop(self, timeout: float = 15) -> int | None:
        """stop() from async code: waiting in a thread keeps the event loop (and with it an
        emulated API server on that loop) serving the operator while it shuts down."""
        return await asyncio.to_thread(self.stop, timeout)

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a crash or node loss would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (KeyError, IndexError, TypeError, AssertionError) as err:
            last_error = err
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last_error!r}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def operator(kubeconfig: Path, *args: str, **kwargs: Any) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, *args, **kwargs).start()
    try:
        yield proc
    finally:
        proc.stop()


# ------------------------------------------------------------------ waiting on observed state
#
# A test never sleeps and then asserts that something did (or did not) happen: it waits for
# the operator to be seen doing the work, bounded, and fails saying what it saw instead.


def _event_line(event: dict[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return (
        f"{involved.get('namespace')}/{involved.get('name')} {event.get('type')} {event.get('reason')}: "
        f"{event.get('message')}"
    )


async def wait_for_event(
    kube: Cluster,
    namespace: str,
    name: str,
    reason: str,
    *,
    type: str | None = None,
    message: str | None = None,
    timeout: float = 30,
    interval: float = 0.1,
) -> dict[str, Any]:
    """The first Event about object `name` in `namespace` with `reason` (and `type`, and `message`
    as a substring, when given), once it exists.

    The operator posts Events with kopf.event(), which only queues them: one can land after the
    status write it goes with, so reading Events right after a status change races. This waits,
    at most `timeout` seconds, and fails listing every Event about the object it did see.
    """

    def matching() -> list[dict[str, Any]]:
        return [
            e
            for e in kube.events(name)
            if (e.get("involvedObject") or {}).get("namespace") in (namespace, None)
            and e.get("reason") == reason
            and (type is None or e.get("type") == type)
            and (message is None or message in (e.get("message") or ""))
        ]

    deadline = time.monotonic() + timeout
    while True:
        found = matching()
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            seen = [_event_line(e) for e in kube.events(name)] or ["(none)"]
            wanted = " ".join(f"{k}={v!r}" for k, v in (("type", type), ("message~", message)) if v is not None)
            raise AssertionError(
                f"timed out after {timeout}s waiting for Event {reason} {wanted} about {namespace}/{name}; "
                "Events seen:\n  " + "\n  ".join(seen)
            )
        await asyncio.sleep(interval)


def operator_requests(
    kube: Cluster,
    *,
    since: int = 0,
    method: str | None = None,
    plural_path: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> list[kmock.Request]:
    """Requests made by the operator's own client (User-Agent tritonop/…) since request number
    `since`, filtered by method, resource ('apps/v1/deployments'), namespace and name. kopf's
    requests (kopf/…) and the tests' own are left out."""
    resource = _resource(plural_path) if plural_path else None
    return [
        r
        for r in kube.emulator.all_requests[since:]
        if r.headers.get("User-Agent", "").startswith("tritonop/")
        and (method is None or str(getattr(r.method, "value", r.method)).upper() == method.upper())
        and (resource is None or r.resource == resource)
        and (namespace is None or r.namespace == namespace)
        and (name is None or r.name == name)
    ]


async def wait_for_operator_reads(
    kube: Cluster,
    plural_path: str,
    namespace: str,
    name: str,
    count: int,
    *,
    since: int,
    timeout: float = 30,
    interval: float = 0.05,
) -> int:
    """Wait until the operator has read (GET) one object `count` times since request number
    `since`; return how many requests were recorded by then (a mark for later checks).

    A read that every pass of the operator makes (each reconcile and each timer tick reads the
    entry Service, for one) counts the passes it has actually run, where a sleep would only
    assume them. Fails after `timeout` seconds, saying how many reads it saw.
    """
    deadline = time.monotonic() + timeout
    while True:
        mark = len(kube.emulator.all_requests)
        seen = len(operator_requests(kube, since=since, method="GET", plural_path=plural_path,
                                     namespace=namespace, name=name))
        if seen >= count:
            return mark
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for the operator to read {plural_path} {namespace}/{name} "
                f"{count} times since request {since}: it read it {seen} times"
            )
        await asyncio.sleep(interval)
