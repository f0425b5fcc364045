"""A router stand-in: client traffic split across revisions by the HTTPRoute's weights.

There is no Gateway here, so this plays both the clients and the gateway: for every
HTTPRoute in the cluster it sends ``rate`` inference requests per second with
tritonclient, each to one of the route's ``backendRefs`` chosen in proportion to their
weights (smooth weighted round robin: exact proportions, no randomness), and from the
backend Service to one of its ready pods. Routes, Services and InferenceServices are
re-read (listed from the API server) before every batch, so a
weight the operator writes takes effect within one batch. Traffic goes to 127.0.0.1 only.

Outcomes are counted per revision (the backend Service's revision selector): successes,
failures Triton returned, and requests that found no ready pod (a gateway's 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import numpy as np
import tritonclient.http.aio as triton_http
from tritonclient.utils import InferenceServerException

log = logging.getLogger("e2e.router")

HTTPROUTES = "gateway.networking.k8s.io/v1/httproutes"
SERVICES = "v1/services"
ISVCS = "serving.tritonop.dev/v1alpha1/inferenceservices"
REVISION_LABEL = "serving.tritonop.dev/revision"
INPUT_NAME, INPUT_LENGTH = "INPUT0", 4
# How long per-request outcomes are kept for windowed rates.
HISTORY_S = 120.0

# (namespace, service) -> ready pod URLs; the kubelet stand-in answers this.
Resolver = Callable[[str, str], list[str]]
# plural path (e.g. "v1/services") -> every such object in the cluster.
Lister = Callable[[str], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Outcome:
    at: float
    result: Literal["ok", "failed", "unavailable"]
    latency_ms: float


@dataclass
class RevisionTraffic:
    """What one revision of one InferenceService was sent, in total and recently."""

    successes: int = 0
    failures: int = 0  # Triton answered with an error
    unavailable: int = 0  # no ready pod behind the backend Service
    recent: deque[Outcome] = field(default_factory=deque)

    @property
    def requests(self) -> int:
        return self.successes + self.failures + self.unavailable

    def window(self, now: float, seconds: float) -> WindowStats:
        outcomes = [o for o in self.recent if o.at >= now - seconds]
        ok = [o for o in outcomes if o.result == "ok"]
        failed = sum(o.result == "failed" for o in outcomes)
        latency = sum(o.latency_ms for o in ok) / len(ok) if ok else None
        return WindowStats(len(ok) + failed, len(ok), len(outcomes) - len(ok) - failed, latency)

    def record(self, outcome: Outcome) -> None:
        self.recent.append(outcome)
        while self.recent and self.recent[0].at < outcome.at - HISTORY_S:
            self.recent.popleft()


@dataclass(frozen=True)
class WindowStats:
    answered: int  # requests a pod answered (successfully or not)
    successes: int
    unavailable: int  # requests that found no ready pod
    mean_latency_ms: float | None  # of the successful requests

    @property
    def success_rate(self) -> float | None:
        """Share of answered requests that succeeded."""
        return self.successes / self.answered if self.answered else None


class WeightedRoundRobin:
    """Smooth weighted round robin: every run of sum(weights) picks honours the weights exactly."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, weights: Mapping[str, int]) -> str | None:
        live = {name: w for name, w in weights.items() if w > 0}
        if not live:
            return None
        self._current = {name: self._current.get(name, 0) + w for name, w in live.items()}
        chosen = max(sorted(self._current), key=lambda name: self._current[name])
        self._current[chosen] -= sum(live.values())
        return chosen


class Router:
    """Sends paced inference traffic through every HTTPRoute of the cluster ``list_objects`` reads."""

    def __init__(
        self,
        list_objects: Lister,
        resolve: Resolver,
        *,
        rate: float = 30.0,
        batch_s: float = 0.25,
        max_in_flight: int = 16,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.list_objects = list_objects
        self.resolve = resolve
        self.rate = rate
        self.batch_s = batch_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.shed = 0  # requests not sent because max_in_flight were outstanding
        self._traffic: dict[tuple[str, str, str], RevisionTraffic] = {}
        self._balancers: dict[tuple[str, str], WeightedRoundRobin] = {}
        self._pod_turn: dict[tuple[str, str], int] = {}
        self._clients: dict[str, triton_http.InferenceServerClient] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._input = np.arange(INPUT_LENGTH, dtype=np.float32)
        # As last listed: (namespace, name) -> object.
        self._services: dict[tuple[str, str], dict[str, Any]] = {}
        self._isvcs: dict[tuple[str, str], dict[str, Any]] = {}

    # ------------------------------------------------------------------ views

    def traffic(self, namespace: str, name: str, revision: str) -> RevisionTraffic:
        """Counts for one revision of InferenceService ``namespace/name`` (zeros if never sent)."""
        return self._traffic.get((namespace, name, revision)) or RevisionTraffic()

    def revisions(self, namespace: str, name: str) -> dict[str, RevisionTraffic]:
        return {rev: t for (ns, n, rev), t in self._traffic.items() if (ns, n) == (namespace, name)}

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Send traffic until ``stop`` is set; then wait for requests in flight and close clients."""
        owed = 0.0
        last = self.clock()
        try:
            while not stop.is_set():
                now = self.clock()
                owed += (now - last) * self.rate
                last = now
                batch, owed = int(owed), owed - int(owed)
                routes = await self.list_objects(HTTPROUTES)
                if routes:
                    self._services = _by_key(await self.list_objects(SERVICES))
                    self._isvcs = _by_key(await self.list_objects(ISVCS))
                for route in routes:
                    self._send_batch(route, batch)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.batch_s)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.timeout_s)
            for client in self._clients.values():
                await client.close()

    def _send_batch(self, route: Mapping[str, Any], count: int) -> None:
        namespace, name = route["metadata"]["namespace"], route["metadata"]["name"]
        weights = route_weights(route)
        model = self._model_of(namespace, name)
        balancer = self._balancers.setdefault((namespace, name), WeightedRoundRobin())
        for _ in range(count):
            backend = balancer.pick(weights)
            if backend is None or model is None:
                return
            if self._slots.locked():
                self.shed += 1
                continue
            task = asyncio.create_task(self._request(namespace, name, backend, model))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _model_of(self, namespace: str, name: str) -> str | None:
        isvc = self._isvcs.get((namespace, name))
        if isvc is None:
            return None
        return ((isvc.get("spec") or {}).get("model") or {}).get("name") or name

    def _revision_of(self, namespace: str, service: str) -> str:
        obj = self._services.get((namespace, service)) or {}
        return str(((obj.get("spec") or {}).get("selector") or {}).get(REVISION_LABEL, service))

    def _pick_pod(self, namespace: str, service: str) -> str | None:
        urls = self.resolve(namespace, service)
        if not urls:
            return None
        turn = self._pod_turn.get((namespace, service), 0)
        self._pod_turn[(namespace, service)] = turn + 1
        return urls[turn % len(urls)]

    async def _request(self, namespace: str, name: str, backend: str, model: str) -> None:
        async with self._slots:
            revision = self._revision_of(namespace, backend)
            counts = self._traffic.setdefault((namespace, name, revision), RevisionTraffic())
            url = self._pick_pod(namespace, backend)
            start = self.clock()
            if url is None:
                counts.unavailable += 1
                counts.record(Outcome(start, "unavailable", 0.0))
                return
            ok = await self._infer(url, model)
            latency_ms = (self.clock() - start) * 1000
            if ok:
                counts.successes += 1
            else:
                counts.failures += 1
            counts.record(Outcome(start, "ok" if ok else "failed", latency_ms))

    async def _infer(self, url: str, model: str) -> bool:
        client = self._clients.get(url)
        if client is None:
            address = url.removeprefix("http://")
            client = triton_http.InferenceServerClient(address, conn_timeout=self.timeout_s)
            self._clients[url] = client
        tensor = triton_http.InferInput(INPUT_NAME, [INPUT_LENGTH], "FP32")
        tensor.set_data_from_numpy(self._input)
        try:
            await asyncio.wait_for(client.infer(model, [tensor]), self.timeout_s)
        except (InferenceServerException, aiohttp.ClientError, OSError, TimeoutError) as err:
            log.debug("request to %s failed: %s", url, err)
            return False
        return True


def route_weights(route: Mapping[str, Any]) -> dict[str, int]:
    """backendRef Service name -> weight over every rule of an HTTPRoute (Gateway API default weight 1)."""
    weights: dict[str, int] = {}
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("kind", "Service") == "Service":
                weights[ref["name"]] = weights.get(ref["name"], 0) + int(ref.get("weight", 1))
    return weights


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
