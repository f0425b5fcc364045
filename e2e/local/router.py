"""A router stand-in: client traffic routed by the HTTPRoutes' rules, as a Gateway would.

There is no Gateway here, so this plays both the clients and the gateway: for every
HTTPRoute in the cluster it sends ``rate`` inference requests per second with
tritonclient. Each request (``POST /v2/models/<model>/infer``, with the next header set of
``headers``) takes the rule Gateway API's precedence picks among those that match it (a
longer path match, then more header matches, then the earlier rule; header names
case-insensitive, RegularExpression as a whole-value match), then one of that rule's
``backendRefs`` chosen in proportion to their weights (smooth weighted round robin: exact
proportions, no randomness), and from the backend Service one of its ready pods. A rule's
RequestMirror filters send a copy of their share of its requests (``percent``, or
``fraction``; evenly spread, exact) to the mirror's Service, whose answers are discarded.
Response filters (ResponseHeaderModifier) are not applied. Routes, Services and
InferenceServices are re-read (listed from the API server) before every batch, so a
rule the operator writes takes effect within one batch. Traffic goes to 127.0.0.1 only.

Outcomes are counted per revision (the backend Service's revision selector): successes,
failures Triton returned, and requests that found no ready pod (a gateway's 503); of them,
those a rule with header matches sent (``matched``). Mirrored copies are counted apart
(``mirrored``, ``mirror_failures``): they are no client's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
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
    matched: int = 0  # of the above, sent by a rule with header matches
    mirrored: int = 0  # copies a RequestMirror filter sent here (answers discarded)
    mirror_failures: int = 0  # of those, copies that failed or found no ready pod
    recent: deque[Outcome] = field(default_factory=deque)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))  # the last failures, why

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
        headers: Sequence[Mapping[str, str]] = ({},),
    ) -> None:
        self.list_objects = list_objects
        self.resolve = resolve
        self.rate = rate
        # The clients' request headers: request i of a route carries headers[i % len(headers)].
        # A test may replace it while the router runs.
        self.headers = list(headers)
        self.batch_s = batch_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.shed = 0  # requests (and mirrored copies) not sent because max_in_flight were outstanding
        self.unrouted = 0  # requests no rule matched (a gateway's 404)
        self._traffic: dict[tuple[str, str, str], RevisionTraffic] = {}
        self._turns: dict[tuple[str, str], int] = {}
        self._balancers: dict[tuple[str, str, int], WeightedRoundRobin] = {}
        self._mirror_shares: dict[tuple[str, str, int, int], int] = {}
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
        model = self._model_of(namespace, name)
        if model is None:
            return
        path = f"/v2/models/{model}/infer"
        for _ in range(count):
            turn = self._turns.get((namespace, name), 0)
            self._turns[(namespace, name)] = turn + 1
            headers = self.headers[turn % len(self.headers)] if self.headers else {}
            chosen = choose_rule(route, path, headers)
            if chosen is None:
                self.unrouted += 1
                continue
            index, rule, by_header = chosen
            backend = self._balancers.setdefault((namespace, name, index), WeightedRoundRobin()).pick(
                rule_weights(rule)
            )
            if backend is None:
                continue
            self._spawn(functools.partial(self._request, namespace, name, backend, model, headers, matched=by_header))
            for number, mirror in enumerate(mirror_filters(rule)):
                if self._mirror_due((namespace, name, index, number), mirror_percent(mirror)):
                    target = mirror["backendRef"]["name"]
                    self._spawn(
                        functools.partial(self._request, namespace, name, target, model, headers, mirrored=True)
                    )

    def _spawn(self, request: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._slots.locked():
            self.shed += 1
            return
        task = asyncio.create_task(request())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mirror_due(self, key: tuple[str, str, int, int], percent: float) -> bool:
        """Whether this request is copied: ``percent`` of a rule's requests, evenly spread."""
        share = self._mirror_shares.get(key, 0) + round(percent * 100)
        due = share >= 10_000
        self._mirror_shares[key] = share - 10_000 if due else share
        return due

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

    async def _request(
        self,
        namespace: str,
        name: str,
        backend: str,
        model: str,
        headers: Mapping[str, str],
        *,
        matched: bool = False,
        mirrored: bool = False,
    ) -> None:
        async with self._slots:
            revision = self._revision_of(namespace, backend)
            counts = self._traffic.setdefault((namespace, name, revision), RevisionTraffic())
            url = self._pick_pod(namespace, backend)
            start = self.clock()
            error = await self._infer(url, model, headers) if url is not None else "no ready pod"
            ok = error is None
            if mirrored:
                counts.mirrored += 1
                counts.mirror_failures += not ok
                return
            counts.matched += matched
            if url is None:
                counts.unavailable += 1
                counts.record(Outcome(start, "unavailable", 0.0))
                return
            latency_ms = (self.clock() - start) * 1000
            if ok:
                counts.successes += 1
            else:
                counts.failures += 1
                counts.errors.append(f"{start:.3f} {url}: {error}")
            counts.record(Outcome(start, "ok" if ok else "failed", latency_ms))

    async def _infer(self, url: str, model: str, headers: Mapping[str, str]) -> str | None:
        """None when Triton answered, else why not."""
        client = self._clients.get(url)
        if client is None:
            address = url.removeprefix("http://")
            client = triton_http.InferenceServerClient(address, conn_timeout=self.timeout_s)
            self._clients[url] = client
        tensor = triton_http.InferInput(INPUT_NAME, [INPUT_LENGTH], "FP32")
        tensor.set_data_from_numpy(self._input)
        try:
            await asyncio.wait_for(client.infer(model, [tensor], headers=dict(headers) or None), self.timeout_s)
        except (InferenceServerException, aiohttp.ClientError, OSError, TimeoutError) as err:
            log.debug("request to %s failed: %s", url, err)
            return f"{type(err).__name__}: {err}"
        return None


def choose_rule(
    route: Mapping[str, Any], path: str, headers: Mapping[str, str]
) -> tuple[int, Mapping[str, Any], bool] | None:
    """The rule of an HTTPRoute a request for ``path`` with ``headers`` takes, as Gateway API
    ranks matches within one route: an Exact path first, then the longest PathPrefix, then the
    most header matches, then the earliest rule. (index, rule, whether header matches chose it),
    or None when no rule matches."""
    found = []
    for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        for match in rule.get("matches") or [{}]:
            if _matches(match, path, headers):
                path_match = match.get("path") or {"type": "PathPrefix", "value": "/"}
                exact = path_match.get("type", "PathPrefix") == "Exact"
                conditions = len(match.get("headers") or [])
                found.append(((not exact, -len(path_match.get("value", "/")), -conditions, index), index, rule))
    if not found:
        return None
    key, index, rule = min(found, key=lambda entry: entry[0])
    return index, rule, key[2] < 0


def _matches(match: Mapping[str, Any], path: str, headers: Mapping[str, str]) -> bool:
    path_match = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact" and path != value:
        return False
    if kind == "PathPrefix" and not (
        value == "/" or path == value.rstrip("/") or path.startswith(value.rstrip("/") + "/")
    ):
        return False
    if kind == "RegularExpression" and not re.fullmatch(value, path):
        return False
    sent = {name.lower(): text for name, text in headers.items()}
    for condition in match.get("headers") or []:
        text = sent.get(condition["name"].lower())
        if text is None:
            return False
        if condition.get("type", "Exact") == "RegularExpression":
            if not re.fullmatch(condition["value"], text):
                return False
        elif text != condition["value"]:
            return False
    return True


def rule_weights(rule: Mapping[str, Any]) -> dict[str, int]:
    """backendRef Service name -> weight in one rule (Gateway API default weight 1)."""
    weights: dict[str, int] = {}
    for ref in rule.get("backendRefs") or []:
        if ref.get("kind", "Service") == "Service":
            weights[ref["name"]] = weights.get(ref["name"], 0) + int(ref.get("weight", 1))
    return weights


def mirror_filters(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The requestMirror settings of a rule's RequestMirror filters to a Service."""
    return [
        f["requestMirror"]
        for f in rule.get("filters") or []
        if f.get("type") == "RequestMirror" and f["requestMirror"]["backendRef"].get("kind", "Service") == "Service"
    ]


def mirror_percent(mirror: Mapping[str, Any]) -> float:
    """The share a RequestMirror copies: percent, or fraction (denominator default 100), else all."""
    if "percent" in mirror:
        return float(mirror["percent"])
    if "fraction" in mirror:
        fraction = mirror["fraction"]
        return 100.0 * fraction["numerator"] / fraction.get("denominator", 100)
    return 100.0


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
