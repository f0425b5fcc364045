"""One async context manager bringing up the whole local end-to-end stack, and taking it down.

Real: the operator process (``python -m tritonop run``); a kube-apiserver (etcd) with the
real Deployment, ReplicaSet, garbage-collector, EndpointSlice and namespace controllers and
the real scheduler (tests/support/control_plane.py, built by scripts/build-control-plane),
the tritonop CRD from ``crds/`` and the providers' real CRDs (HTTPRoute, ...); every Triton
pod (a tritonserver process serving Python-backend models, started by the pod-level kubelet
stand-in ``PodKubelet`` for each Pod the scheduler binds to its Node); Prometheus scraping
them; tritonclient traffic. Emulated: the kubelet's container runtime (pods are local
processes) and the Gateway data plane (``Router`` sends requests by the HTTPRoute's weights).
The operator talks to the API server through the test fault proxy with a cluster-admin
ServiceAccount token (tests/support/real_cluster.py): the chart's RBAC is tested by
tests/integration/control_plane, not here. See docs/e2e.md.

    async with local_stack(workdir) as stack:
        await stack.apply(stack.inference_service("v1"))
        await stack.wait_until(lambda: stack.status()["phase"] == "Ready", 60, "v1 Ready")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from e2e.local.pod_kubelet import PodKubelet
from e2e.local.prometheus import LocalPrometheus
from e2e.local.router import Router
from e2e.scenario import (
    PROFILES,
    Profile,
    inference_service,
    write_variant,
    write_variants,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.operator_process import OperatorProcess, free_port
from tests.support.real_cluster import RealCluster, control_plane, prepare

log = logging.getLogger("e2e.harness")

NAMESPACE = "e2e"
NAME = "classifier"
T = TypeVar("T")


class StackError(RuntimeError):
    """Something the scenario waited for did not happen; the message says what and shows the state."""


@dataclass(frozen=True)
class StackSettings:
    tick_seconds: float = 0.5  # operator rollout timer
    scrape_interval: str = "1s"  # Prometheus
    request_rate: float = 30.0  # router requests per second per HTTPRoute
    kubelet_period_s: float = 0.5  # how often pods are reconciled and probed
    profile: Profile = PROFILES["local"]


class LocalStack:
    """The running stack: the cluster, Prometheus, kubelet, router and the operator."""

    def __init__(
        self,
        cluster: RealCluster,
        prometheus: LocalPrometheus,
        kubelet: PodKubelet,
        router: Router,
        workdir: Path,
        settings: StackSettings,
    ) -> None:
        self.cluster = cluster
        self.prometheus = prometheus
        self.kubelet = kubelet
        self.router = router
        self.workdir = workdir
        self.settings = settings
        self.models_root = workdir / "models"
        self.endpoints_file = kubelet.endpoints_file
        # What the chart mounts: one operator secret for every operator process, so a restarted
        # operator derives the same Triton control-API keys the running pods were started with.
        self.api_key_secret_file = workdir / "api-key-secret"
        if not self.api_key_secret_file.exists():
            self.api_key_secret_file.write_text(secrets.token_hex(32))
        self.operator: OperatorProcess | None = None
        self.background: list[asyncio.Task[None]] = []  # the kubelet and router loops
        self._operators_started = 0

    # ------------------------------------------------------------------ the operator

    def start_operator(self) -> OperatorProcess:
        """Start a (new) operator process; the previous one must have been stopped."""
        if self.operator is not None and self.operator.proc is not None and self.operator.proc.poll() is None:
            raise RuntimeError("an operator is already running")
        self._operators_started += 1
        self.operator = OperatorProcess(
            self.cluster.kubeconfig,
            "--all-namespaces",
            "--tick-seconds",
            str(self.settings.tick_seconds),
            "--metrics-port",
            str(free_port()),
            "--prometheus-url",
            self.prometheus.url,
            "--triton-endpoints-file",
            str(self.endpoints_file),
            # Local "pods" read their model repositories from these directories (file://).
            "--allow-file-path",
            str(self.models_root),
            "--api-key-secret-file",
            str(self.api_key_secret_file),
            log=self.workdir / f"operator-{self._operators_started}.log",
        ).start()
        return self.operator

    def kill_operator(self) -> None:
        """SIGKILL the operator, as a crash or a lost node would end it."""
        if self.operator is not None:
            self.operator.kill()
            self.operator.stop()  # closes its log

    def operator_log(self, chars: int = 4000) -> str:
        return self.operator.output[-chars:] if self.operator is not None else ""

    # ------------------------------------------------------------------ InferenceServices

    def inference_service(
        self, variant: str, *, name: str = NAME, profile: Profile | None = None, folder: str | None = None
    ) -> dict[str, Any]:
        """The scenario's InferenceService serving ``variant`` from this stack's model root.

        With ``folder``, a fresh copy of the variant is written there first: a new revision
        that behaves the same.
        """
        if folder is not None and not (self.models_root / folder).exists():
            write_variant(self.models_root, variant, folder)
        return inference_service(
            variant=variant,
            model_root=self.models_root,
            profile=profile or self.settings.profile,
            name=name,
            namespace=NAMESPACE,
            folder=folder,
        )

    async def apply(self, isvc: dict[str, Any]) -> None:
        """Create it, or replace its spec (what `kubectl apply` of a whole manifest does)."""
        ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
        if self.cluster.isvc(ns, name) is None:
            await self.cluster.apply_isvc(isvc)
        else:
            await self.cluster.replace_spec(ns, name, isvc["spec"])

    def status(self, name: str = NAME) -> dict[str, Any]:
        return self.cluster.status(NAMESPACE, name)

    def events(self, name: str = NAME) -> list[dict[str, Any]]:
        """Events about one InferenceService, oldest first."""
        return sorted(self.cluster.events(name), key=lambda e: e["metadata"].get("resourceVersion", "0").zfill(12))

    def event_reasons(self, name: str = NAME) -> list[str]:
        return [e.get("reason", "") for e in self.events(name)]

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.cluster.api.get("apps/v1/deployments", NAMESPACE, name)

    # ------------------------------------------------------------------ waiting

    async def wait_until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll ``check`` until truthy; StackError with the status and operator log on timeout.

        Fails at once when the operator process has died, instead of waiting out the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            for task in self.background:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise StackError(f"a harness loop failed while waiting for {what}") from task.exception()
            proc = self.operator.proc if self.operator is not None else None
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"the operator exited ({proc.returncode}) while waiting for {what}\n{self.operator_log()}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"timed out after {timeout:g}s waiting for {what}\n"
                    f"status: {self.status()}\nevents: {self.event_reasons()}\n"
                    f"--- operator log (tail) ---\n{self.operator_log()}"
                )
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def local_stack(
    workdir: Path | None = None, settings: StackSettings = StackSettings()
) -> AsyncIterator[LocalStack]:
    """Bring the stack up (the operator included); tear down everything it started on exit.

    Logs (operator, every tritonserver) stay in ``workdir``; without one, a temporary
    folder is used and removed afterwards.
    """
    async with contextlib.AsyncExitStack() as cleanup:
        if workdir is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="tritonop-e2e-")))
        workdir.mkdir(parents=True, exist_ok=True)
        write_variants(workdir / "models")
        prometheus = LocalPrometheus(scrape_interval=settings.scrape_interval)
        await asyncio.to_thread(prometheus.start)
        cleanup.callback(prometheus.stop)
        kube, kubelet = await _real_backend(cleanup, workdir, prometheus, settings)

        async def lister(plural_path: str) -> list[dict[str, Any]]:
            return await asyncio.to_thread(kube.api.live, plural_path)

        router = Router(lister, kubelet.service_urls, rate=settings.request_rate)
        stack = LocalStack(kube, prometheus, kubelet, router, workdir, settings)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(kubelet.run(stop)), asyncio.create_task(router.run(stop))]
        stack.background = tasks
        try:
            stack.start_operator()
            yield stack
        finally:
            if stack.operator is not None:
                await asyncio.to_thread(stack.operator.stop)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _real_backend(
    cleanup: contextlib.AsyncExitStack, workdir: Path, prometheus: LocalPrometheus, settings: StackSettings
) -> tuple[RealCluster, PodKubelet]:
    """A real control plane with the CRDs, namespace ``NAMESPACE`` and a registered Node
    whose Pods ``PodKubelet`` runs; stopped by ``cleanup``."""
    cp = control_plane()
    await asyncio.to_thread(cp.start)
    cleanup.callback(cp.stop)
    await asyncio.to_thread(prepare, cp, [NAMESPACE], provider_crds=True)
    kubelet = PodKubelet(
        cp, prometheus, workdir / "endpoints.json", workdir / "pods", period_s=settings.kubelet_period_s
    )
    await kubelet.register()
    proxy = cleanup.enter_context(FaultProxy(cp))
    kube = await asyncio.to_thread(RealCluster, cp, kubelet.node, proxy, workdir)
    return kube, kubelet
