"""A kubelet stand-in: every Deployment replica in the emulated cluster is a real tritonserver.

It polls the emulator's Deployments and, like a Deployment controller plus kubelet:

- starts one ``TritonProcess`` per desired replica from the Deployment's own container
  command line (ports localized, the model repository mapped from its hostPath volume,
  ``$(VAR)`` expanded from the container's env, secretKeyRef values read from the
  emulator's Secrets, e.g. the Triton key Secret the operator wrote);
- restarts a process that exits (with a back-off), replaces pods when the template changes,
  and stops pods on scale-down and when the Deployment is deleted;
- probes ``/v2/health/ready`` (the container's readinessProbe) and writes
  replicas/readyReplicas/availableReplicas and the Available condition into the
  Deployment's status;
- plays Endpoints: writes the operator's endpoints file, ``namespace/service`` -> the HTTP
  URL of one ready pod the Service selects, and answers the router the same way;
- plays the PodMonitor: registers each pod's metrics port with Prometheus labelled
  ``namespace``, ``inferenceservice``, ``revision`` and ``pod`` from the pod's labels.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    PodPlan,
    PodSpecError,
    command_line,
    container_env,
    deployment_status,
    desired_replicas,
    pod_plan,
    selector_matches,
)
from e2e.local.prometheus import LocalPrometheus
from tests.support.kube import Cluster
from tests.support.prometheus import ScrapeTarget
from tests.support.triton import TritonProcess, free_ports, localize_args, triton_env

log = logging.getLogger("e2e.kubelet")

DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
SECRETS = "v1/secrets"
ISVC_LABEL = "serving.tritonop.dev/inferenceservice"
REVISION_LABEL = "serving.tritonop.dev/revision"
# Seconds before a crashed container is started again (kubelet's CrashLoopBackOff, shortened).
RESTART_BACKOFF_S = 2.0
# SIGTERM, then SIGKILL after this (terminationGracePeriodSeconds, shortened: tritonserver
# otherwise waits up to 30 s for idle keep-alive connections to close).
GRACE_PERIOD_S = 3.0


@dataclass
class Pod:
    """One replica: a real tritonserver process with the labels its template gave it."""

    name: str
    namespace: str
    deployment: str
    plan: PodPlan
    process: TritonProcess
    http_port: int
    metrics_port: int
    ready: bool = False
    restarts: int = 0
    exited_at: float | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def revision(self) -> str | None:
        return self.plan.labels.get(REVISION_LABEL)


@dataclass
class _DeploymentPods:
    pods: dict[int, Pod] = field(default_factory=dict)  # replica index -> pod
    problem: str | None = None  # why pods cannot run here (reported in the Available condition)


class Kubelet:
    """Runs the emulated cluster's Deployments as local tritonserver processes."""

    def __init__(
        self,
        cluster: Cluster,
        prometheus: LocalPrometheus,
        endpoints_file: Path,
        log_dir: Path,
        *,
        period_s: float = 0.5,
    ) -> None:
        self.cluster = cluster
        self.prometheus = prometheus
        self.endpoints_file = endpoints_file
        self.log_dir = log_dir
        self.period_s = period_s
        self._deployments: dict[tuple[str, str], _DeploymentPods] = {}
        self._endpoints: dict[str, str] | None = None
        self._terminating: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=2.0)
        log_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``period_s`` until ``stop`` is set; then stop every pod."""
        try:
            while not stop.is_set():
                await self.sync()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period_s)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop every pod this kubelet started, and wait until they are gone."""
        for state in self._deployments.values():
            for pod in state.pods.values():
                self._terminate(pod)
        self._deployments.clear()
        if self._terminating:
            await asyncio.wait(self._terminating)
        await self._http.aclose()

    # ------------------------------------------------------------------ views

    def pods(self, namespace: str | None = None, revision: str | None = None) -> list[Pod]:
        """Running pods, optionally of one namespace and revision."""
        return [
            pod
            for state in self._deployments.values()
            for pod in state.pods.values()
            if (namespace is None or pod.namespace == namespace) and (revision is None or pod.revision == revision)
        ]

    def service_urls(self, namespace: str, service: str) -> list[str]:
        """HTTP URLs of the pods in a Service's Endpoints, in pod-name order.

        Ready pods only, unless the Service sets publishNotReadyAddresses (then every
        running pod), as the Endpoints controller does.
        """
        obj = self.cluster.emulator.get(SERVICES, namespace, service)
        if obj is None:
            return []
        spec = obj.get("spec") or {}
        selector, not_ready_too = spec.get("selector") or {}, bool(spec.get("publishNotReadyAddresses"))
        pods = [
            p
            for p in self.pods(namespace)
            if (p.ready or (not_ready_too and p.process.running())) and selector_matches(selector, p.plan.labels)
        ]
        return [p.http_url for p in sorted(pods, key=lambda p: p.name)]

    # ------------------------------------------------------------------ one pass

    async def sync(self) -> None:
        live = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in self.cluster.emulator.live(DEPLOYMENTS)}
        for key in [k for k in self._deployments if k not in live]:
            for pod in self._deployments.pop(key).pods.values():
                self._terminate(pod)
        for key, deployment in live.items():
            await self._sync_deployment(key, deployment)
        await self._probe_all()
        for key, deployment in live.items():
            await self._report(key, deployment)
        self._write_endpoints()

    async def _sync_deployment(self, key: tuple[str, str], deployment: Mapping[str, Any]) -> None:
        state = self._deployments.setdefault(key, _DeploymentPods())
        namespace = key[0]
        try:
            plan = pod_plan(deployment)
            env = container_env(plan, lambda name: self.cluster.emulator.get(SECRETS, namespace, name))
        except PodSpecError as err:
            state.problem = f"kubelet stand-in cannot run this pod: {err}"
            for pod in state.pods.values():
                self._terminate(pod)
            state.pods.clear()
            return
        state.problem = None
        desired = desired_replicas(deployment)
        # A changed template replaces its pods (a revision's template only changes when the
        # operator's builders do); extra replicas go highest index first.
        stale = [i for i, pod in state.pods.items() if pod.plan.template_hash != plan.template_hash or i >= desired]
        for index in stale:
            self._terminate(state.pods.pop(index))
        for index in range(desired):
            if index not in state.pods:
                state.pods[index] = await self._start_pod(key, index, plan, env)
        now = time.monotonic()
        for pod in state.pods.values():
            await self._restart_if_exited(pod, now)

    async def _start_pod(self, key: tuple[str, str], index: int, plan: PodPlan, env: dict[str, str]) -> Pod:
        namespace, deployment = key
        name = f"{deployment}-{plan.template_hash[:5]}-{index}"
        http_port, grpc_port, metrics_port = free_ports(3)
        args = localize_args(
            command_line(plan, env),
            model_repository=plan.repository,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
        )
        process = TritonProcess(
            args, env=triton_env({**os.environ, **env}), log_path=self.log_dir / f"{namespace}.{name}.log"
        )
        pod = Pod(name, namespace, deployment, plan, process.start(), http_port, metrics_port)
        log.info("started pod %s/%s (pid %s, http %s)", namespace, name, process.pid, pod.http_url)
        target = ScrapeTarget(
            pod.metrics_address,
            {
                "namespace": namespace,
                "inferenceservice": plan.labels.get(ISVC_LABEL, ""),
                "revision": plan.labels.get(REVISION_LABEL, ""),
                "pod": name,
            },
        )
        await asyncio.to_thread(self.prometheus.add_target, target)
        # The Pod object, as a kubelet reports it: the operator's gate lists a revision's pods
        # to ask a not-ready one why (its address is in the endpoints file, under pod/NAME).
        await self.cluster.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(plan.labels)},
                "status": {"phase": "Running", "podIP": "127.0.0.1"},
            },
        )
        return pod

    def _terminate(self, pod: Pod) -> None:
        """Stop a pod in the background: it leaves Endpoints now, its process within the grace period."""
        pod.ready = False
        task = asyncio.create_task(self._stop_pod(pod))
        self._terminating.add(task)
        task.add_done_callback(self._terminating.discard)

    async def _stop_pod(self, pod: Pod) -> None:
        with contextlib.suppress(AssertionError):  # already gone with its namespace or by GC
            await self.cluster.request("DELETE", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}")
        await asyncio.to_thread(pod.process.stop, GRACE_PERIOD_S)
        with contextlib.suppress(RuntimeError, OSError):
            await asyncio.to_thread(self.prometheus.remove_target, pod.metrics_address)
        log.info("stopped pod %s/%s", pod.namespace, pod.name)

    async def _restart_if_exited(self, pod: Pod, now: float) -> None:
        if pod.process.running():
            return
        pod.ready = False
        if pod.exited_at is None:
            pod.exited_at = now
            log.warning("pod %s/%s exited with %s", pod.namespace, pod.name, pod.process.returncode)
            return
        if now - pod.exited_at >= RESTART_BACKOFF_S:
            # Same command line, ports and log: a container restart, not a new pod.
            pod.process = TritonProcess(pod.process.args, env=pod.process.env, log_path=pod.process.log_path).start()
            pod.restarts += 1
            pod.exited_at = None

    # ------------------------------------------------------------------ probes and status

    async def _probe_all(self) -> None:
        pods = self.pods()
        results = await asyncio.gather(*(self._ready(pod) for pod in pods))
        for pod, ready in zip(pods, results, strict=True):
            if ready != pod.ready:
                log.info("pod %s/%s ready=%s", pod.namespace, pod.name, ready)
            pod.ready = ready

    async def _ready(self, pod: Pod) -> bool:
        if not pod.process.running():
            return False
        try:
            response = await self._http.get(pod.http_url + "/v2/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _report(self, key: tuple[str, str], deployment: Mapping[str, Any]) -> None:
        state = self._deployments.get(key)
        if state is None:
            return
        pods = list(state.pods.values())
        status = deployment_status(
            generation=(deployment.get("metadata") or {}).get("generation"),
            desired=desired_replicas(deployment),
            running=len(pods),
            ready=sum(p.ready for p in pods),
            problem=state.problem,
        )
        if deployment.get("status") == status:
            return
        namespace, name = key
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"
        with contextlib.suppress(AssertionError):  # deleted meanwhile: the next pass forgets it
            await self.cluster.request("PATCH", path, {"status": status}, "application/merge-patch+json")

    def _write_endpoints(self) -> None:
        endpoints: dict[str, str] = {}
        for service in self.cluster.emulator.live(SERVICES):
            meta = service["metadata"]
            urls = self.service_urls(meta["namespace"], meta["name"])
            if urls:
                endpoints[f"{meta['namespace']}/{meta['name']}"] = urls[0]
        for pod in self.pods():
            if pod.process.running():
                endpoints[f"{pod.namespace}/pod/{pod.name}"] = pod.http_url
        if endpoints == self._endpoints:
            return
        # Written aside and renamed: the operator never reads a half-written file.
        staged = self.endpoints_file.with_suffix(".tmp")
        staged.write_text(json.dumps(endpoints, indent=2, sort_keys=True))
        staged.replace(self.endpoints_file)
        self._endpoints = endpoints
