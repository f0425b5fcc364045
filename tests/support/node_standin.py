"""A kubelet stand-in for the real control plane (tests/support/control_plane.py): one Node
whose Pods are reported Running and Ready. No container runs: there is no container
runtime, no image pull, no process and no probe. A Pod is Ready because this stand-in
says so, the moment the scheduler binds it here.

What it does, as a kubelet would through the API:

- registers a Node (capacity cpu 16, memory 64Gi, pods 110, nvidia.com/gpu 4; allocatable
  the same), reports it Ready with no pressure, and keeps its Lease in `kube-node-lease`
  renewed, so the node lifecycle controller takes off the `not-ready` taint the
  TaintNodesByCondition admission plugin puts on every new Node, and never taints it
  unreachable;
- for each Pod the scheduler binds to the Node (spec.nodeName), writes the status a healthy
  kubelet would: phase Running, podIP and hostIP 127.0.0.1 (``pod_ip``), PodReadyToStartContainers,
  Initialized, ContainersReady and Ready True, every init container terminated with exit
  code 0, and every container running, started and ready; a Pod whose name starts with one of
  ``never_ready`` runs but stays unready (a failing readiness probe), and a Pod whose env
  needs a Secret that does not exist waits in CreateContainerConfigError (``secret "x" not
  found``), a secret volume's in ContainerCreating, as a kubelet reports them;
- for each Pod being deleted (deletionTimestamp set), finishes the deletion (grace period 0,
  uid precondition) as a kubelet does once its containers stopped; without that, a Pod bound
  to a Node stays Terminating forever and garbage collection never completes.

It acts as the control plane's admin user, not as `system:node:<name>`; the Node authorizer
and NodeRestriction are not what these tests check. The EndpointSlice controller refuses
loopback addresses (`may not be in the loopback range`), so with the default 127.0.0.1 the
Services get no EndpointSlices; pass another ``pod_ip`` when a test needs them. The e2e kubelet stand-in
(e2e/local/pod_kubelet.py) reuses the Node registration here and runs each Pod as a real
tritonserver process.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.control_plane import DEFAULT_CONTROLLERS, APIError, ControlPlane, eventually

log = logging.getLogger("tests.node_standin")

POD_IP = "127.0.0.1"
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "4"}
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
LEASE_RENEW_S = 10.0
CRD_NAME = "inferenceservices.serving.tritonop.dev"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    """A MicroTime, as Lease.spec.renewTime wants it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_status(
    pod: Mapping[str, Any],
    *,
    now: str,
    pod_ip: str = POD_IP,
    ready: bool = True,
    waiting: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The status a kubelet writes for a pod whose containers all started and passed their
    probes; with ``ready=False``, running but failing their readiness probes; with
    ``waiting=(reason, message)``, containers that could not be created (e.g.
    CreateContainerConfigError for a missing Secret)."""
    spec = pod.get("spec") or {}
    uid = (pod.get("metadata") or {}).get("uid", "")
    previous = (pod.get("status") or {}).get("startTime")
    started = previous or now

    def condition(kind: str, status: bool = True) -> dict[str, Any]:
        value = "True" if status else "False"
        return {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": started}

    containers_ready = ready and waiting is None

    def state(container: Mapping[str, Any]) -> dict[str, Any]:
        if waiting is not None:
            return {"waiting": {"reason": waiting[0], "message": waiting[1]}}
        return {"running": {"startedAt": started}}

    def ids(container: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": f"standin://{container.get('image', '')}",
            "containerID": f"standin://{uid}/{container['name']}",
            "restartCount": 0,
        }

    def terminated(container: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": started,
            "finishedAt": started,
            "containerID": ids(container)["containerID"],
        }

    return {
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready", containers_ready),
            condition("ContainersReady", containers_ready),
            condition("PodScheduled"),
        ],
        "hostIP": pod_ip,
        "hostIPs": [{"ip": pod_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "initContainerStatuses": [
            {
                **ids(c),
                "ready": True,
                "started": False,
                "state": {"terminated": terminated(c)},
            }
            for c in spec.get("initContainers") or []
        ],
        "containerStatuses": [
            {**ids(c), "ready": containers_ready, "started": waiting is None, "state": state(c)}
            for c in spec.get("containers") or []
        ],
    }


def reported_ready(pod: Mapping[str, Any], pod_ip: str = POD_IP) -> bool:
    """Whether the Pod shows the status this stand-in writes: Running, Ready, at ``pod_ip``."""
    return reported(pod, pod_ip, ready=True, waiting=None)


def reported(pod: Mapping[str, Any], pod_ip: str, *, ready: bool, waiting: tuple[str, str] | None) -> bool:
    """Whether the Pod already shows the status this stand-in would write now."""
    status = pod.get("status") or {}
    is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    reasons = [
        ((c.get("state") or {}).get("waiting") or {}).get("reason") for c in status.get("containerStatuses") or []
    ]
    want = waiting[0] if waiting else None
    return (
        status.get("phase") == "Running"
        and status.get("podIP") == pod_ip
        and is_ready == (ready and waiting is None)
        and bool(reasons)
        and all(r == want for r in reasons)
    )


def referenced_secrets(pod: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Secrets a Pod needs (not marked optional): (for container env, for volumes)."""
    spec = pod.get("spec") or {}
    env: set[str] = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for var in container.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                env.add(ref["name"])
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef")
            if ref and not ref.get("optional"):
                env.add(ref["name"])
    volumes = {
        v["secret"]["secretName"]
        for v in spec.get("volumes") or []
        if v.get("secret") and not v["secret"].get("optional")
    }
    return env, volumes


class NodeStandIn:
    """One Node, registered on ``start()``; a thread polls its Pods every ``period`` seconds."""

    def __init__(self, cp: ControlPlane, name: str = "standin-0", *, period: float = 0.3, pod_ip: str = POD_IP) -> None:
        self.cp = cp
        self.name = name
        self.period = period
        self.pod_ip = pod_ip
        self.errors: list[str] = []  # API errors the loop met (a test may assert there are none)
        # Pods whose name starts with one of these run but never pass their readiness probe.
        self.never_ready: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed_at = 0.0

    # -- lifecycle

    def start(self) -> Self:
        self.register()
        self._thread = threading.Thread(target=self._run, name=f"node-standin-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the Node

    def register(self) -> None:
        """Create the Node, report it Ready and create its Lease (``start()`` does this first)."""
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        created = self.cp.request_json("POST", "/api/v1/nodes", node)
        self._report_node()
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": created["metadata"]["uid"]}
                ],
            },
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION_S, "renewTime": _micro_now()},
        }
        self.cp.request_json("POST", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", lease)
        self._renewed_at = time.monotonic()

    def _report_node(self) -> None:
        now = _now()

        def condition(kind: str, status: str, reason: str) -> dict[str, str]:
            return {"type": kind, "status": status, "reason": reason, "message": "node stand-in",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip

        status = {
            "capacity": CAPACITY,
            "allocatable": CAPACITY,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
                condition("Ready", "True", "KubeletReady"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.pod_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "standin", "systemUUID": "standin", "bootID": "standin",
                "kernelVersion": "standin", "osImage": "node stand-in (no containers run)",
                "containerRuntimeVersion": "standin://0", "kubeletVersion": "v1.34.4", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }  # fmt: skip
        self.cp.request_json(
            "PATCH", f"/api/v1/nodes/{self.name}/status", {"status": status},
            content_type="application/merge-patch+json",
        )  # fmt: skip

    def renew_lease_if_due(self) -> None:
        """Renew the Node's Lease when LEASE_RENEW_S have passed since the last renewal."""
        if time.monotonic() - self._renewed_at >= LEASE_RENEW_S:
            self._renew_lease()

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.name}"
        self.cp.request_json(
            "PATCH", path, {"spec": {"renewTime": _micro_now()}}, content_type="application/merge-patch+json"
        )
        self._renewed_at = time.monotonic()

    # -- Pods

    def pods(self) -> list[dict[str, Any]]:
        """The Pods bound to this Node, as the API serves them now."""
        found = self.cp.request_json("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={self.name}"})
        return list(found.get("items") or [])

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.renew_lease_if_due()
                for pod in self.pods():
                    self._sync_pod(pod)
            except APIError as err:
                if err.status not in (404, 409):  # a Pod gone or changed meanwhile: next round
                    self.errors.append(str(err))
                log.debug("node stand-in: %s", err)
            except OSError as err:
                self.errors.append(str(err))

    def _sync_pod(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        if meta.get("deletionTimestamp"):
            options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                       "preconditions": {"uid": meta["uid"]}}  # fmt: skip
            try:
                self.cp.request_json("DELETE", path, options)
            except APIError as err:
                if err.status not in (404, 409):
                    raise
            return
        ready = not any(meta["name"].startswith(prefix) for prefix in set(self.never_ready))
        waiting = self._waiting(pod)
        if reported(pod, self.pod_ip, ready=ready, waiting=waiting):
            return
        status = pod_status(pod, now=_now(), pod_ip=self.pod_ip, ready=ready, waiting=waiting)
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        self.cp.request_json("PATCH", path + "/status", patch, content_type="application/merge-patch+json")

    def _waiting(self, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        """Why the containers cannot be created, as a kubelet reports it: a missing Secret."""
        namespace = pod["metadata"]["namespace"]
        env, volumes = referenced_secrets(pod)
        for names, reason in ((env, "CreateContainerConfigError"), (volumes, "ContainerCreating")):
            for name in sorted(names):
                try:
                    self.cp.request_json("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
                except APIError as err:
                    if err.status != 404:
                        raise
                    return reason, f'secret "{name}" not found'
        return None


@contextlib.contextmanager
def cluster_with_ready_node(namespaces: Iterable[str], *, crd: bool = True) -> Iterator[ControlPlane]:
    """A control plane with the controllers, the node lifecycle controller and the scheduler;
    the tritonop CRD from ``crds/`` (unless ``crd=False``: a chart installs it), the
    ``namespaces`` (the first one's default ServiceAccount waited for: Pods are admitted only
    once it exists), and one stand-in Node, Ready and untainted. The TaintNodesByCondition
    admission plugin taints every new Node not-ready; the node lifecycle controller takes the
    taint off once the Node reports Ready, as in a real cluster."""
    namespaces = tuple(namespaces)
    controllers = (*DEFAULT_CONTROLLERS, "node-lifecycle-controller")
    with ControlPlane(controllers=True, scheduler=True, controller_names=controllers) as cp:
        if crd:
            cp.kubectl("apply", "--server-side", "-f", str(Path(__file__).resolve().parents[2] / "crds"))
            eventually(lambda: cp.crd_established(CRD_NAME), f"CRD {CRD_NAME} Established", timeout=60)
        for namespace in namespaces:
            namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(namespace_obj))
        with NodeStandIn(cp) as node:
            eventually(
                lambda: not ((cp.find(f"/api/v1/nodes/{node.name}") or {}).get("spec") or {}).get("taints"),
                "the node lifecycle controller to take the not-ready taint off the stand-in Node",
                timeout=90,
            )
            if namespaces:
                account = f"/api/v1/namespaces/{namespaces[0]}/serviceaccounts/default"
                eventually(lambda: cp.find(account), f"ServiceAccount {namespaces[0]}/default")
            yield cp
            assert not node.errors, f"the node stand-in met API errors: {node.errors[:5]}"
