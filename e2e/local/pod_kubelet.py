"""A pod-level kubelet stand-in for the real control plane: every Pod the real scheduler
binds to its Node is a real tritonserver process.

The real kube-apiserver, Deployment and ReplicaSet controllers, garbage collector and
scheduler (tests/support/control_plane.py) turn the operator's Deployments into Pods bound
to this stand-in's Node; from there on it acts as a kubelet would, through the API:

- registers the Node (capacity, Ready, Lease renewed) through a ``NodeStandIn`` whose
  registration it reuses (not its pod loop, which reports pods Ready without running them);
- for each Pod bound to the Node, starts one ``TritonProcess`` from the Pod's own
  container command line (ports localized, the model repository mapped from its hostPath
  volume, ``$(VAR)`` expanded from the container's env, secretKeyRef values read from the
  real Secrets, e.g. the ``<isvc>-triton-key`` Secret the operator wrote). A Secret or key
  not found is reported as the container waiting in CreateContainerConfigError and retried,
  a pod that cannot run here (non-hostPath storage) as CreateContainerError;
- probes the container's readinessProbe path (``/v2/health/ready``) and writes the Pod's
  status: phase Running, podIP 127.0.0.1, Ready/ContainersReady from the probe, the
  container's restartCount, started, ready and state. The real controllers compute the
  ReplicaSet and Deployment status from it;
- restarts an exited process after a back-off (restartCount + 1, CrashLoopBackOff while
  it waits);
- for a Pod being deleted (deletionTimestamp set), stops its process within the grace
  period (SIGTERM, SIGKILL after at most ``GRACE_PERIOD_S``) and then deletes the Pod with
  gracePeriodSeconds 0 and a uid precondition, as a kubelet does once its containers are
  gone; a Pod deleted outright (namespace gone) just has its process stopped;
- plays Endpoints (the EndpointSlice controller refuses the loopback pod IP and nothing
  here routes a ClusterIP): writes the operator's ``--triton-endpoints-file``,
  ``namespace/service`` -> the URL of a ready pod the Service selects and
  ``namespace/pod/NAME`` -> each running pod's URL, and answers the router the same way;
- plays the PodMonitor: registers each pod's metrics port with Prometheus labelled
  ``namespace``, ``inferenceservice``, ``revision`` and ``pod``.

Like ``NodeStandIn`` it acts as the control plane's admin user, not as ``system:node:NAME``.
Every pod shares the IP 127.0.0.1, each on its own ports: which is why the endpoints file,
not the pod IP, tells the operator and the router where a pod listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from e2e.local.podspec import (
    ContainerState,
    PodPlan,
    PodSpecError,
    command_line,
    container_env,
    pod_status,
    readiness_path,
    selector_matches,
    template_plan,
)
from e2e.local.prometheus import LocalPrometheus
from tests.support.control_plane import APIError, ControlPlane
from tests.support.node_standin import NodeStandIn
from tests.support.prometheus import ScrapeTarget
from tests.support.triton import TritonProcess, free_ports, localize_args, triton_env

log = logging.getLogger("e2e.pod_kubelet")

ISVC_LABEL = "serving.tritonop.dev/inferenceservice"
REVISION_LABEL = "serving.tritonop.dev/revision"
POD_IP = "127.0.0.1"
# Seconds before a crashed container is started again (kubelet's CrashLoopBackOff, shortened).
RESTART_BACKOFF_S = 2.0
# SIGTERM, then SIGKILL after this at most (the pod's grace period is longer: tritonserver
# otherwise waits up to 30 s for idle keep-alive connections to close).
GRACE_PERIOD_S = 3.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunningPod:
    """One Pod bound to the stand-in's Node, and the tritonserver process that is its container."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    container_name: str
    image: str
    ready_path: str
    start_time: str  # when the kubelet first saw the pod (status.startTime)
    plan: PodPlan | None = None  # None: the pod cannot run here (waiting says why)
    process: TritonProcess | None = None  # None until the container first starts
    http_port: int = 0
    metrics_port: int = 0
    ready: bool = False
    ready_since: str = ""
    restarts: int = 0
    running_since: str | None = None
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    last_exit: tuple[int, str] | None = None
    exited_at: float | None = None  # monotonic time the process was seen exited
    terminating: bool = False
    reported: dict[str, Any] | None = field(default=None, repr=False)  # the status last written

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def revision(self) -> str | None:
        return self.labels.get(REVISION_LABEL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def container(self) -> ContainerState:
        return ContainerState(self.running_since, self.ready, self.restarts, self.waiting, self.last_exit)


class PodKubelet:
    """Runs the Pods the real scheduler binds to one Node as local tritonserver processes.

    Asynchronous (the harness runs it beside the router): ``register()`` the Node, then
    ``run(stop)`` until ``stop`` is set; every blocking API call goes through a thread.
    """

    def __init__(
        self,
        cp: ControlPlane,
        prometheus: LocalPrometheus,
        endpoints_file: Path,
        log_dir: Path,
        *,
        name: str = "e2e-node",
        period_s: float = 0.5,
    ) -> None:
        self.cp = cp
        self.name = name
        self.pod_ip = POD_IP
        # Its Node registration and Lease renewal only: this class runs the pods.
        self.node = NodeStandIn(cp, name, period=period_s, pod_ip=POD_IP)
        self.prometheus = prometheus
        self.endpoints_file = endpoints_file
        self.log_dir = log_dir
        self.period_s = period_s
        self._pods: dict[str, RunningPod] = {}  # uid -> pod
        self._services: list[dict[str, Any]] = []  # as last listed
        self._endpoints: dict[str, str] | None = None
        self._terminating: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=2.0)
        self.errors: list[str] = []  # API errors a pass met (each retried by the next pass)
        log_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle

    async def register(self) -> None:
        """Create the Node and its Lease, and report the Node Ready."""
        await asyncio.to_thread(self.node.register)

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``period_s`` until ``stop`` is set; then stop every pod's process."""
        try:
            while not stop.is_set():
                try:
                    await self.sync()
                except (APIError, OSError) as err:
                    # A refused or timed-out request (two busy cores): the next pass retries,
                    # as a kubelet would; kept for a test to look at.
                    self.errors.append(str(err))
                    log.warning("pod kubelet pass failed: %s", err)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period_s)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop every process this kubelet started (the API objects go with the control plane)."""
        for pod in list(self._pods.values()):
            if not pod.terminating:
                self._terminate(pod, delete=False)
        if self._terminating:
            await asyncio.wait(self._terminating)
        await self._http.aclose()

    # ------------------------------------------------------------------ views

    def pods(self, namespace: str | None = None, revision: str | None = None) -> list[RunningPod]:
        """Pods whose container has started and whose process has not been stopped yet
        (terminating ones included until their process is gone)."""
        return sorted(
            (
                pod
                for pod in self._pods.values()
                if pod.process is not None
                and (namespace is None or pod.namespace == namespace)
                and (revision is None or pod.revision == revision)
            ),
            key=lambda p: p.name,
        )

    def service_urls(self, namespace: str, service: str) -> list[str]:
        """HTTP URLs of the pods behind a Service, in pod-name order: ready pods that are not
        terminating (every running one with publishNotReadyAddresses), as EndpointSlices list."""
        obj = next(
            (s for s in self._services if (s["metadata"]["namespace"], s["metadata"]["name"]) == (namespace, service)),
            None,
        )
        if obj is None:
            return []
        spec = obj.get("spec") or {}
        selector, not_ready_too = spec.get("selector") or {}, bool(spec.get("publishNotReadyAddresses"))
        return [
            p.http_url
            for p in self.pods(namespace)
            if not p.terminating and (p.ready or (not_ready_too and p.running)) and selector_matches(selector, p.labels)
        ]

    # ------------------------------------------------------------------ one pass

    async def _api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.cp.request_json, method, path, body, **kwargs)

    async def sync(self) -> None:
        await asyncio.to_thread(self.node.renew_lease_if_due)
        listed = await self._api("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={self.name}"})
        live = {p["metadata"]["uid"]: p for p in listed.get("items") or []}
        for uid, pod in list(self._pods.items()):
            if uid not in live and not pod.terminating:
                log.info("pod %s/%s is gone from the API", pod.namespace, pod.name)
                self._terminate(pod, delete=False)
        for uid, obj in live.items():
            await self._sync_one(uid, obj)
        await self._probe_all()
        for pod in list(self._pods.values()):
            if not pod.terminating and pod.uid in live:
                await self._report(pod)
        services = await self._api("GET", "/api/v1/services")
        self._services = list(services.get("items") or [])
        self._write_endpoints()

    async def _sync_one(self, uid: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        pod = self._pods.get(uid)
        if meta.get("deletionTimestamp"):
            if pod is None:
                await self._delete_now(meta["namespace"], meta["name"], uid)
            elif not pod.terminating:
                grace = meta.get("deletionGracePeriodSeconds")
                self._terminate(pod, delete=True, grace_s=GRACE_PERIOD_S if grace is None else float(grace))
            return
        if pod is None:
            now = _now()
            first_container = ((obj.get("spec") or {}).get("containers") or [{}])[0]
            pod = RunningPod(
                name=meta["name"],
                namespace=meta["namespace"],
                uid=uid,
                labels=dict(meta.get("labels") or {}),
                container_name=first_container.get("name", "triton"),
                image=first_container.get("image", ""),
                ready_path=readiness_path(obj),
                start_time=now,
                ready_since=now,
            )
            try:
                pod.plan = template_plan(obj)
            except PodSpecError as err:
                pod.waiting = ("CreateContainerError", f"kubelet stand-in cannot run this pod: {err}")
            self._pods[uid] = pod
        pod.labels = dict(meta.get("labels") or {})
        if pod.terminating or pod.plan is None:
            return
        if pod.process is None:
            await self._start(pod)
        else:
            self._restart_if_exited(pod)

    async def _start(self, pod: RunningPod) -> None:
        """Start the pod's container for the first time, once its env can be resolved."""
        assert pod.plan is not None
        try:
            env = container_env(pod.plan, lambda name: self._secret(pod.namespace, name))
        except PodSpecError as err:
            pod.waiting = ("CreateContainerConfigError", str(err))
            return
        http_port, grpc_port, metrics_port = free_ports(3)
        args = localize_args(
            command_line(pod.plan, env),
            model_repository=pod.plan.repository,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
        )
        process = TritonProcess(
            args, env=triton_env({**os.environ, **env}), log_path=self.log_dir / f"{pod.namespace}.{pod.name}.log"
        )
        pod.process, pod.http_port, pod.metrics_port = process.start(), http_port, metrics_port
        pod.running_since, pod.waiting = _now(), None
        log.info("started pod %s/%s (pid %s, http %s)", pod.namespace, pod.name, process.pid, pod.http_url)
        target = ScrapeTarget(
            pod.metrics_address,
            {
                "namespace": pod.namespace,
                "inferenceservice": pod.labels.get(ISVC_LABEL, ""),
                "revision": pod.labels.get(REVISION_LABEL, ""),
                "pod": pod.name,
            },
        )
        await asyncio.to_thread(self.prometheus.add_target, target)

    def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.cp.request_json("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except APIError as err:
            if err.status == 404:
                return None
            raise
        return found

    def _restart_if_exited(self, pod: RunningPod) -> None:
        assert pod.process is not None
        if pod.process.running():
            return
        now = time.monotonic()
        if pod.exited_at is None:
            code = pod.process.returncode
            pod.exited_at, pod.ready, pod.running_since = now, False, None
            pod.last_exit = (-1 if code is None else code, _now())
            pod.waiting = ("CrashLoopBackOff", f"back-off {RESTART_BACKOFF_S:g}s restarting failed container")
            log.warning("pod %s/%s exited with %s", pod.namespace, pod.name, code)
            return
        if now - pod.exited_at >= RESTART_BACKOFF_S:
            # Same command line, ports and log: a container restart, not a new pod.
            old = pod.process
            pod.process = TritonProcess(old.args, env=old.env, log_path=old.log_path).start()
            pod.restarts += 1
            pod.exited_at, pod.waiting, pod.running_since = None, None, _now()

    def _terminate(self, pod: RunningPod, *, delete: bool, grace_s: float = GRACE_PERIOD_S) -> None:
        """Stop a pod in the background: it leaves Endpoints now, its process within the grace
        period; then (``delete``) the Pod object goes, as a kubelet finishes a graceful deletion."""
        pod.terminating, pod.ready = True, False
        task = asyncio.create_task(self._stop_pod(pod, delete, min(grace_s, GRACE_PERIOD_S)))
        self._terminating.add(task)
        task.add_done_callback(self._terminating.discard)

    async def _stop_pod(self, pod: RunningPod, delete: bool, grace_s: float) -> None:
        try:
            if pod.process is not None:
                await asyncio.to_thread(pod.process.stop, max(grace_s, 0.1))
                with contextlib.suppress(RuntimeError, OSError):
                    await asyncio.to_thread(self.prometheus.remove_target, pod.metrics_address)
            if delete:
                await self._delete_now(pod.namespace, pod.name, pod.uid)
            log.info("stopped pod %s/%s", pod.namespace, pod.name)
        finally:
            self._pods.pop(pod.uid, None)

    async def _delete_now(self, namespace: str, name: str, uid: str) -> None:
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        try:
            await self._api("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", options)
        except APIError as err:
            if err.status not in (404, 409):  # gone, or another pod of that name now
                raise

    # ------------------------------------------------------------------ probes and status

    async def _probe_all(self) -> None:
        pods = [p for p in self._pods.values() if not p.terminating and p.process is not None]
        results = await asyncio.gather(*(self._probe(pod) for pod in pods))
        for pod, ready in zip(pods, results, strict=True):
            if ready != pod.ready:
                log.info("pod %s/%s ready=%s", pod.namespace, pod.name, ready)
                pod.ready, pod.ready_since = ready, _now()

    async def _probe(self, pod: RunningPod) -> bool:
        if not pod.running:
            return False
        try:
            response = await self._http.get(pod.http_url + pod.ready_path)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _report(self, pod: RunningPod) -> None:
        """Write the pod's status when it differs from what was last written."""
        obj = {"metadata": {"uid": pod.uid}, "spec": {"containers": [{"name": pod.container_name, "image": pod.image}]}}
        status = pod_status(
            obj, pod.container(), start_time=pod.start_time, ready_since=pod.ready_since, pod_ip=self.pod_ip
        )
        if status == pod.reported:
            return
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status"
        patch = {"metadata": {"uid": pod.uid}, "status": status}
        try:
            await self._api("PATCH", path, patch, content_type="application/merge-patch+json")
        except APIError as err:
            if err.status not in (404, 409):  # deleted meanwhile: the next pass sees it
                raise
            return
        pod.reported = status

    def _write_endpoints(self) -> None:
        endpoints: dict[str, str] = {}
        for service in self._services:
            meta = service["metadata"]
            urls = self.service_urls(meta["namespace"], meta["name"])
            if urls:
                endpoints[f"{meta['namespace']}/{meta['name']}"] = urls[0]
        for pod in self.pods():
            if pod.running and not pod.terminating:
                endpoints[f"{pod.namespace}/pod/{pod.name}"] = pod.http_url
                endpoints[f"{pod.namespace}/pod/{pod.name}/metrics"] = f"http://{pod.metrics_address}/metrics"
        if endpoints == self._endpoints:
            return
        # Written aside and renamed: the operator never reads a half-written file.
        staged = self.endpoints_file.with_suffix(".tmp")
        staged.write_text(json.dumps(endpoints, indent=2, sort_keys=True))
        staged.replace(self.endpoints_file)
        self._endpoints = endpoints
