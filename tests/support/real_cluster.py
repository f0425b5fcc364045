"""A real Kubernetes control plane for operator tests, with what they read and inject.

``RealCluster`` is a real kube-apiserver with the real Deployment, ReplicaSet, EndpointSlice,
HPA and garbage-collector controllers and the scheduler (tests/support/control_plane.py), and
one Node played by tests/support/node_standin.py (the only emulated part: no container
runs). It offers ``kubeconfig``, ``request``, ``apply_isvc``, ``replace_spec``,
``annotate``, ``delete``, ``isvc``, ``status``, ``events``, ``never_ready`` and an ``api``
view with ``get``, ``live``, ``all_requests``, ``writes`` and ``fail_next``.

The operator reaches the server through the fault proxy (tests/support/fault_proxy.py),
which records each request it makes (``api.all_requests``: method, resource, namespace,
name, subresource, headers, the status it got) and injects faults (``api.fail_next``).
Tests read and write the server directly, so their own requests are not in that log. The
operator authenticates with the token of a ServiceAccount bound to ``cluster-admin``
(``chart_kubeconfig`` gives the chart's own ServiceAccount instead).

    async with real_cluster() as kube:
        await kube.apply_isvc(isvc)
        ... OperatorProcess(kube.kubeconfig, ...) ...
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.control_plane import DEFAULT_CONTROLLERS, APIError, ControlPlane, eventually
from tests.support.fault_proxy import FaultProxy, Recorded
from tests.support.helm import helm_template
from tests.support.node_standin import NodeStandIn
from tests.support.provider_crds import install_provider_crds

REPO_ROOT = Path(__file__).resolve().parents[2]
ISVCS = "serving.tritonop.dev/v1alpha1/inferenceservices"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ADMIN_ACCOUNT = "tritonop-test-admin"


def collection_path(plural_path: str, namespace: str | None = None) -> str:
    """'apps/v1/deployments' (or 'v1/services') -> its REST collection, in a namespace or all."""
    parts = plural_path.split("/")
    group_version, plural = "/".join(parts[:-1]), parts[-1]
    prefix = f"/api/{group_version}" if len(parts) == 2 else f"/apis/{group_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


class Resource(NamedTuple):
    """An API resource a request addressed: group ('' for core), version, plural."""

    group: str
    version: str
    plural: str

    @classmethod
    def of(cls, plural_path: str) -> Resource:
        """'apps/v1/deployments' or 'v1/services'."""
        parts = plural_path.split("/")
        return cls("", parts[0], parts[1]) if len(parts) == 2 else cls(parts[0], parts[1], parts[2])


class _Method(str):
    """A request method that also answers ``.value`` (as an enum member would)."""

    @property
    def value(self) -> str:
        return str(self)


_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?(?:/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?)?$"
)


@dataclass(frozen=True)
class Request:
    """One request the operator made, as the fault proxy recorded it, addressed by resource."""

    method: _Method
    path: str
    resource: Resource | None
    namespace: str | None
    name: str | None
    subresource: str | None
    headers: dict[str, str]
    params: dict[str, str]
    data: Any
    status: int
    injected: str | None
    at: float  # time.monotonic() when the request reached the proxy

    @property
    def url(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.path)

    @classmethod
    def of(cls, recorded: Recorded) -> Request:
        match = _PATH.match(recorded.path)
        resource = namespace = name = sub = None
        if match and match["plural"]:
            # /api/v1/namespaces/NAME is the Namespace itself, not a namespaced collection.
            namespace, plural, name, sub = match["namespace"], match["plural"], match["name"], match["sub"]
            if namespace and not plural:
                plural, name, namespace = "namespaces", namespace, None
            resource = Resource("" if match["core"] else match["group"], match["core"] or match["version"], plural)
        elif match and match["namespace"]:
            resource = Resource("", "v1", "namespaces")
            name = match["namespace"]
        headers = {k.title(): v for k, v in recorded.headers.items()}
        return cls(
            _Method(recorded.method.upper()), recorded.path, resource, namespace, name, sub,
            headers, dict(recorded.query), recorded.body, recorded.status, recorded.injected, recorded.at,
        )  # fmt: skip


class ApiView:
    """What tests read through ``kube.api``: live objects from the real server, and the
    operator's requests from the proxy."""

    def __init__(self, cp: ControlPlane, proxy: FaultProxy) -> None:
        self.cp = cp
        self.proxy = proxy

    def get(self, plural_path: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist or is being deleted."""
        try:
            found: dict[str, Any] = self.cp.request_json("GET", f"{collection_path(plural_path, namespace)}/{name}")
        except APIError as err:
            if err.status == 404:
                return None
            raise
        return None if found["metadata"].get("deletionTimestamp") else found

    def live(self, plural_path: str) -> list[dict[str, Any]]:
        """Every object of a resource, all namespaces, leaving out those being deleted."""
        listed = self.cp.request_json("GET", collection_path(plural_path))
        kind = str(listed.get("kind", "List")).removesuffix("List")
        items = []
        for item in listed.get("items") or []:
            if not item["metadata"].get("deletionTimestamp"):
                # A List's items carry no apiVersion/kind: put them back, as a GET shows them.
                items.append({"apiVersion": listed.get("apiVersion"), "kind": kind, **item})
        return items

    @property
    def all_requests(self) -> list[Request]:
        """Every request the operator sent through the proxy, in order."""
        return [Request.of(r) for r in list(self.proxy.requests)]

    def writes(self, since: int = 0, exclude: tuple[str, ...] = ("events",)) -> list[Request]:
        return [
            r
            for r in self.all_requests[since:]
            if r.method in WRITE_METHODS and (r.resource is None or r.resource.plural not in exclude)
        ]

    def fail_next(self, method: str, plural: str, status: int = 500, times: int = 1) -> None:
        """The next ``times`` operator requests with ``method`` on resource ``plural`` (its
        objects and their subresources) get ``status``, from the proxy."""
        self.proxy.fail_next(method, rf"/{re.escape(plural)}(/|$)", status=status, times=times)


class RealCluster:
    """A running real control plane with its stand-in Node, proxy and operator kubeconfig."""

    def __init__(self, cp: ControlPlane, node: NodeStandIn, proxy: FaultProxy, workdir: Path) -> None:
        self.control_plane = cp
        self.node = node
        self.proxy = proxy
        self.api = ApiView(cp, proxy)
        self.url = proxy.url
        token = cp.kubectl("create", "token", ADMIN_ACCOUNT, "-n", "kube-system", "--duration=2h").stdout.strip()
        self.kubeconfig = proxy.kubeconfig(workdir / "kubeconfig", token=token)

    def chart_kubeconfig(self, path: Path, namespace: str = "tritonop-system") -> Path:
        """A kubeconfig (through the proxy) for the chart's own ServiceAccount, with the chart's
        RBAC objects (``helm template``) applied: the operator's requests then pass real RBAC."""
        return self.proxy.kubeconfig(path, token=chart_account_token(self.control_plane, namespace))

    @property
    def never_ready(self) -> set[str]:
        """Name prefixes of Pods that run but never become ready."""
        return self.node.never_ready

    async def request(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        try:
            return await asyncio.to_thread(self._request, method, path, body, content_type)
        except APIError as err:
            raise AssertionError(f"{method} {path}: {err}") from err

    def _request(self, method: str, path: str, body: Any, content_type: str | None) -> Any:
        if content_type is None and method == "PATCH":
            content_type = "application/merge-patch+json"
        if content_type is None:
            return self.control_plane.request_json(method, path, body)
        return self.control_plane.request_json(method, path, body, content_type=content_type)

    async def apply_isvc(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or merge-patch the spec of, an InferenceService (what `kubectl apply` does)."""
        ns, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]
        obj["metadata"]["namespace"] = ns
        path = collection_path(ISVCS, ns)
        if self.isvc(ns, name) is None:
            created: dict[str, Any] = await self.request("POST", path, obj)
            return created
        patch = {"spec": obj["spec"], "metadata": {"annotations": obj["metadata"].get("annotations")}}
        patched: dict[str, Any] = await self.request("PATCH", f"{path}/{name}", patch)
        return patched

    async def replace_spec(self, ns: str, name: str, spec: dict[str, Any]) -> None:
        """Swap the whole spec (a JSON merge patch that nulls keys the new spec lacks)."""
        live = self.isvc(ns, name) or {}
        await self.request(
            "PATCH", f"{collection_path(ISVCS, ns)}/{name}", {"spec": _replacing(live.get("spec"), spec)}
        )

    async def annotate(self, ns: str, name: str, annotations: dict[str, str]) -> None:
        await self.request("PATCH", f"{collection_path(ISVCS, ns)}/{name}", {"metadata": {"annotations": annotations}})

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)

    async def relax_crd_schema(self) -> None:
        """Serve the InferenceService CRD with an open spec (no schema, no CEL rules), as an
        old CRD would: how an object the current schema refuses can still reach the operator."""
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.tritonop.dev"
        crd = await self.request("GET", path)
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            schema["properties"]["spec"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            schema.pop("x-kubernetes-validations", None)
        await self.request("PUT", path, crd)

    def isvc(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.api.get(ISVCS, ns, name)

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return (self.isvc(ns, name) or {}).get("status") or {}

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Core v1 Events (what kopf posts), optionally about objects named ``name``."""
        events = self.api.live("v1/events")
        return [e for e in events if name is None or (e.get("involvedObject") or {}).get("name") == name]


def _replacing(live: Any, new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``live`` into exactly ``new`` (nulls for keys ``new`` lacks)."""
    live = live if isinstance(live, dict) else {}
    patch: dict[str, Any] = {key: None for key in live if key not in new}
    for key, value in new.items():
        patch[key] = (
            _replacing(live.get(key), value) if isinstance(value, dict) and isinstance(live.get(key), dict) else value
        )
    return patch


def _apply(cp: ControlPlane, objects: Iterable[dict[str, Any]]) -> None:
    import json

    for obj in objects:
        cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))


def prepare(cp: ControlPlane, namespaces: Iterable[str], *, provider_crds: bool = False) -> None:
    """The tritonop CRD, ``namespaces`` (with their default ServiceAccounts), the cluster-admin
    ServiceAccount whose token RealCluster gives the operator, and with ``provider_crds`` the
    providers' and kopf's CRDs."""
    _prepare(cp, namespaces)
    if provider_crds:
        _install_more_crds(cp)


def control_plane(controllers: Iterable[str] = DEFAULT_CONTROLLERS) -> ControlPlane:
    """A control plane (not started yet) with the controllers and the scheduler."""
    # New Nodes are tainted not-ready until the node lifecycle controller sees them Ready;
    # the stand-in is Ready from its first report, so skip that admission step.
    return ControlPlane(
        controllers=True,
        scheduler=True,
        controller_names=tuple(controllers),
        extra_apiserver_args=("--disable-admission-plugins=TaintNodesByCondition",),
    )


def _prepare(cp: ControlPlane, namespaces: Iterable[str]) -> None:
    cp.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    crd = "inferenceservices.serving.tritonop.dev"
    eventually(lambda: cp.crd_established(crd), "the InferenceService CRD Established", timeout=60)
    _apply(cp, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces])
    _apply(cp, [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ADMIN_ACCOUNT, "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": ADMIN_ACCOUNT},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": ADMIN_ACCOUNT, "namespace": "kube-system"}]},
    ])  # fmt: skip
    for ns in namespaces:
        # Pods are admitted only once their namespace's default ServiceAccount exists.
        eventually(
            lambda ns=ns: cp.find(f"/api/v1/namespaces/{ns}/serviceaccounts/default") is not None,
            f"ServiceAccount {ns}/default",
            timeout=90,
        )


def chart_account_token(cp: ControlPlane, namespace: str = "tritonop-system") -> str:
    """Apply the chart's ServiceAccount and RBAC objects (``helm template``, release namespace
    ``namespace``, created if missing) and return a token of that ServiceAccount."""
    rendered = helm_template(namespace=namespace)
    _apply(cp, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    _apply(cp, [obj for obj in rendered if obj["kind"] in kinds])
    (account,) = [obj for obj in rendered if obj["kind"] == "ServiceAccount"]
    name = account["metadata"]["name"]
    return str(cp.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip())


def _install_more_crds(cp: ControlPlane) -> None:
    install_provider_crds(cp)
    cp.kubectl(
        "apply", "--server-side", "-f", str(REPO_ROOT / "charts" / "tritonop" / "crds" / "kopf.dev_peerings.yaml")
    )
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        eventually(lambda name=name: cp.crd_established(name), f"CRD {name} Established", timeout=60)


@contextlib.asynccontextmanager
async def real_cluster(
    namespaces: Iterable[str] = ("ml",),
    *,
    controllers: Iterable[str] = DEFAULT_CONTROLLERS,
    provider_crds: bool = False,
) -> AsyncIterator[RealCluster]:
    """A fresh control plane with the tritonop CRD, ``namespaces``, one Ready stand-in Node
    and the fault proxy; everything stopped on exit. With ``provider_crds``, also the real
    Gateway API, Istio, KEDA and Prometheus Operator CRDs (tests/support/provider_crds.py)
    and kopf's peering CRDs from the chart."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tritonop-real-cluster-")))
        cp = control_plane(controllers)
        await asyncio.to_thread(cp.start)
        stack.callback(cp.stop)
        await asyncio.to_thread(prepare, cp, tuple(namespaces), provider_crds=provider_crds)
        node = stack.enter_context(NodeStandIn(cp))
        proxy = stack.enter_context(FaultProxy(cp))
        yield RealCluster(cp, node, proxy, workdir)
