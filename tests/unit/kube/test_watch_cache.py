"""The watch cache (tritonop/kube/cache.py) against a scripted API server (httpx MockTransport):
list then watch, projections, write-through ordering, relist on 410 Gone, absent and
unserved kinds, and which InferenceService each change wakes. The real API server drives it
in tests/integration/operator (test_reconcile.py: settled objects cost no request; a deleted
child is restored from its watch event)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tritonop import API_VERSION, KIND
from tritonop.kinds import DEPLOYMENT, HTTP_ROUTE, POD, SERVICE
from tritonop.kube.cache import (
    METADATA_LIST,
    ObjectCache,
    State,
    Watched,
    _Store,
    project_deployment,
    project_metadata,
    selector_matches,
)
from tritonop.kube.client import Connection, KubeClient

NS = "ml"
CONNECTION = Connection(server="http://kube.test", headers={}, verify=True, cert=None)


def owned(kind: str, name: str, rv: int, *, owner: str = "resnet", **extra: Any) -> dict[str, Any]:
    api_version = {"Deployment": "apps/v1", "Service": "v1", "Pod": "v1"}[kind]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}-{rv}",
            "resourceVersion": str(rv),
            "labels": {"serving.tritonop.dev/inferenceservice": owner},
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": KIND, "name": owner, "uid": "isvc-uid", "controller": True}
            ],
            "managedFields": [
                {"manager": "tritonop", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            ],
        },
        **extra,
    }


class Server:
    """Answers list and watch requests per resource path from scripted pages and event lists.
    A watch stream ends after its scripted events (as the server's timeoutSeconds would end it);
    after the last script, watches hang until the test is over."""

    def __init__(self) -> None:
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.later_lists: dict[str, list[dict[str, Any]]] = {}  # what the second list of a path finds
        self.list_status: dict[str, int] = {}
        self.watches: dict[str, list[list[dict[str, Any]] | int]] = {}
        self.requests: list[httpx.Request] = []
        self.idle = asyncio.Event()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.params.get("watch") != "1":
            status = self.list_status.get(path, 200 if path in self.lists else 404)
            if status != 200:
                return httpx.Response(status, json={"message": "no"})
            items = self.lists[path]
            if path in self.later_lists:
                self.lists[path] = self.later_lists.pop(path)
            return httpx.Response(200, json={"metadata": {"resourceVersion": "10"}, "items": items})
        scripts = self.watches.get(path) or []
        if not scripts:
            await asyncio.Event().wait()  # an open watch with nothing to say
        script = scripts.pop(0)
        if isinstance(script, int):
            return httpx.Response(script, json={"message": "gone"})
        body = "".join(json.dumps(e) + "\n" for e in script)
        return httpx.Response(200, content=body.encode())


DEPLOYMENTS = "/apis/apps/v1/namespaces/ml/deployments"
SERVICES = "/api/v1/namespaces/ml/services"


def cache_for(server: Server, woken: list[tuple[str, str]]) -> ObjectCache:
    http = httpx.AsyncClient(base_url="https://api", transport=server.transport())
    return ObjectCache(http, (NS,), on_change=lambda ns, name: woken.append((ns, name)))


async def until(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
def server() -> Server:
    s = Server()
    s.lists[DEPLOYMENTS] = [owned("Deployment", "resnet-a", 5, spec={"replicas": 2, "template": {"big": 1}})]
    s.lists[SERVICES] = [owned("Service", "resnet", 6)]
    s.lists["/api/v1/namespaces/ml/pods"] = []
    for plural in ("horizontalpodautoscalers", "poddisruptionbudgets", "networkpolicies", "ingresses"):
        group = {"horizontalpodautoscalers": "autoscaling/v2", "poddisruptionbudgets": "policy/v1"}.get(
            plural, "networking.k8s.io/v1"
        )
        s.lists[f"/apis/{group}/namespaces/ml/{plural}"] = []
    return s


async def test_lists_then_serves_projections_from_memory(server: Server) -> None:
    woken: list[tuple[str, str]] = []
    cache = cache_for(server, woken)
    cache.start()
    try:
        assert await cache.wait_synced(5)
        deployment = cache.lookup(DEPLOYMENT.key, NS, "resnet-a")
        assert deployment is not None and deployment["spec"] == {"replicas": 2}  # no pod template kept
        assert [e["manager"] for e in deployment["metadata"]["managedFields"]] == ["tritonop"]
        # Metadata-only kinds are listed as PartialObjectMetadata.
        service_lists = [r for r in server.requests if r.url.path == SERVICES and "watch" not in r.url.params]
        assert service_lists[0].headers["Accept"] == METADATA_LIST
        # Kinds the server does not serve (no CRD) are known to be empty; the state says so.
        assert cache.state(HTTP_ROUTE.key, NS) is State.ABSENT
        assert cache.select(HTTP_ROUTE.key, NS, "") == []
        # A namespace the cache does not watch is not served.
        assert cache.state(DEPLOYMENT.key, "other") is State.UNSERVED
        assert woken == [(NS, "resnet"), (NS, "resnet")]  # what the first list found
    finally:
        await cache.aclose()


async def test_watch_events_update_and_wake_the_owner(server: Server) -> None:
    server.watches[SERVICES] = [
        [
            {"type": "DELETED", "object": owned("Service", "resnet", 11)},
            {"type": "ADDED", "object": owned("Service", "other", 12, owner="bert")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "13"}}},
        ]
    ]
    woken: list[tuple[str, str]] = []
    cache = cache_for(server, woken)
    cache.start()
    try:
        assert await cache.wait_synced(5)
        await until(lambda: cache.lookup(SERVICE.key, NS, "other") is not None)
        assert cache.lookup(SERVICE.key, NS, "resnet") is None
        assert (NS, "bert") in woken and woken.count((NS, "resnet")) >= 2
        # The watch is resumed from the bookmark's version, not relisted.
        await until(lambda: len([r for r in server.requests if r.url.path == SERVICES]) >= 3)
        resumed = [r for r in server.requests if r.url.path == SERVICES][-1]
        assert resumed.url.params["watch"] == "1" and resumed.url.params["resourceVersion"] == "13"
    finally:
        await cache.aclose()


async def test_410_gone_relists_and_wakes_owners_of_what_changed_meanwhile(server: Server) -> None:
    server.watches[DEPLOYMENTS] = [410]
    server.later_lists[DEPLOYMENTS] = []  # deleted while the watch was gone
    woken: list[tuple[str, str]] = []
    cache = cache_for(server, woken)
    cache.start()
    try:
        assert await cache.wait_synced(5)
        await until(lambda: len([r for r in server.requests if r.url.path == DEPLOYMENTS]) >= 4)
        assert cache.lookup(DEPLOYMENT.key, NS, "resnet-a") is None
        lists = [r for r in server.requests if r.url.path == DEPLOYMENTS and "watch" not in r.url.params]
        assert len(lists) == 2  # listed again after 410 Gone, then watched from the new list
        # Woken when first listed, and again when the relist found it gone.
        assert woken.count((NS, "resnet")) == 3  # Deployment and Service at first, the Deployment gone
    finally:
        await cache.aclose()


async def test_writes_are_written_through_and_older_events_do_not_undo_them(server: Server) -> None:
    cache = cache_for(server, [])
    cache.start()
    try:
        assert await cache.wait_synced(5)
        cache.written(owned("Deployment", "resnet-a", 20, spec={"replicas": 3}))
        assert cache.lookup(DEPLOYMENT.key, NS, "resnet-a")["spec"] == {"replicas": 3}
        # A lagging watch event from before our write changes nothing.
        store = cache._store(DEPLOYMENT.key, NS)
        assert store is not None
        store.put(owned("Deployment", "resnet-a", 7, spec={"replicas": 1}))
        assert cache.lookup(DEPLOYMENT.key, NS, "resnet-a")["spec"] == {"replicas": 3}
        # The deletion of an earlier object of the same name does not remove the newer one.
        store.remove(NS, "resnet-a", owned("Deployment", "resnet-a", 8))
        assert cache.lookup(DEPLOYMENT.key, NS, "resnet-a") is not None
        cache.deleted(DEPLOYMENT.key, NS, "resnet-a")
        assert cache.lookup(DEPLOYMENT.key, NS, "resnet-a") is None
    finally:
        await cache.aclose()


async def test_client_reads_from_the_cache_and_asks_the_server_otherwise(server: Server) -> None:
    asked: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "PATCH":
            return httpx.Response(
                200,
                json={
                    **json.loads(request.content),
                    "metadata": {**json.loads(request.content)["metadata"], "resourceVersion": "30"},
                },
            )
        return httpx.Response(404, json={"message": "not found"})

    kube = KubeClient(CONNECTION, transport=httpx.MockTransport(api))
    cache = cache_for(server, [])
    kube.use_cache(cache)
    cache.start()
    try:
        # Before the cache synced, reads go to the server.
        assert await kube.get(*HTTP_ROUTE.key, NS, "resnet") is None
        assert asked == [f"GET /apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/resnet"]
        assert await cache.wait_synced(5)
        asked.clear()
        assert (await kube.get(*DEPLOYMENT.key, NS, "resnet-a"))["status"] == {}
        assert await kube.list(*DEPLOYMENT.key, NS, "serving.tritonop.dev/inferenceservice=resnet")
        # An uninstalled kind: pruning knows there is nothing; a create-to-be asks the server.
        assert await kube.get(*HTTP_ROUTE.key, NS, "resnet", looking=True) is None
        assert asked == []
        assert await kube.get(*HTTP_ROUTE.key, NS, "resnet") is None
        assert len(asked) == 1
        # A write's answer lands in the cache.
        applied = owned("Service", "resnet-b", 1)
        await kube.server_side_apply(applied)
        assert (await kube.get(*SERVICE.key, NS, "resnet-b"))["metadata"]["resourceVersion"] == "30"
        # Pods are read from the cache as well.
        assert await kube.list(*POD.key, NS, "serving.tritonop.dev/inferenceservice=resnet") == []
        assert len(asked) == 2  # the apply only
    finally:
        await cache.aclose()
        await kube.aclose()


def test_foreign_deployments_are_kept_as_metadata_only() -> None:
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": NS, "resourceVersion": "1", "uid": "u"},
        "spec": {"replicas": 1, "template": {}},
        "status": {"readyReplicas": 1},
    }
    assert set(project_deployment(foreign)) == {"apiVersion", "kind", "metadata"}


def test_selectors() -> None:
    labels = {"a": "1", "b": "2"}
    assert selector_matches("a=1,b=2", labels) and selector_matches("a", labels) and selector_matches("", labels)
    assert not selector_matches("a=2", labels) and not selector_matches("c", labels)


def test_the_per_inferenceservice_index_follows_puts_and_removals() -> None:
    store = _Store(Watched(SERVICE, project_metadata), NS)
    for name, owner in (("a-entry", "a"), ("a-rev", "a"), ("b-entry", "b")):
        store.put(owned("Service", name, 1, owner=owner))
    store.put(owned("Service", "a-rev", 2, owner="a"))  # an update is indexed once
    label = "serving.tritonop.dev/inferenceservice"
    assert sorted(o["metadata"]["name"] for o in store.matching(NS, f"{label}=a")) == ["a-entry", "a-rev"]
    assert store.by_isvc[(NS, "a")] == ("a-entry", "a-rev")
    store.remove(NS, "a-entry")
    assert [o["metadata"]["name"] for o in store.matching(NS, f"{label}=a")] == ["a-rev"]
    store.remove(NS, "a-rev")
    assert store.matching(NS, f"{label}=a") == [] and (NS, "a") not in store.by_isvc
    assert [o["metadata"]["name"] for o in store.matching(NS, f"{label}=b")] == ["b-entry"]
