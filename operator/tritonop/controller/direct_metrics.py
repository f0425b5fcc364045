"""Direct metrics: Triton's own metrics endpoint on every canary and stable pod, once a tick.

I/O at the edge: the revisions' pods through the Kubernetes API, each pod's port 8002 over
HTTP (bounded concurrency, a short timeout). What the scrapes mean is pure
(``analysis.triton_metrics``); what it concludes too (``analysis.direct``).

One ``DirectTally`` per InferenceService and model served, kept in memory while its canary runs and started
afresh for another canary (or stable), or after an operator restart: the sequential test is
valid from any start, it only has less evidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tritonop.analysis.triton_metrics import (
    DirectTally,
    MetricsTextError,
    PodCounters,
    parse_gpu_memory,
    parse_model_counters,
)
from tritonop.api.models import ALL_MODELS
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.refs import IsvcRef
from tritonop.endpoints import TritonEndpoints
from tritonop.kinds import POD
from tritonop.kube.client import KubeClient, KubeError

log = logging.getLogger("tritonop")

# Scrapes in flight at once over all InferenceServices, and each one's limit: a slow or
# unreachable pod costs a tick at most this, never a reconcile.
SCRAPE_CONCURRENCY = 16
SCRAPE_TIMEOUT_S = 2.0
MAX_METRICS_BYTES = 4 * 1024 * 1024
MAX_TALLIES = 1024  # Triton's text for a few hundred models; more is refused


@dataclass(frozen=True)
class DirectSample:
    """The tally after this tick's scrape, and whether every listed pod answered."""

    tally: DirectTally  # with several models, the first one's
    complete: bool
    problem: str = ""  # why not complete, for status: "pod P: no answer"
    tallies: Mapping[str, DirectTally] = field(default_factory=dict)  # each model's, by name


@dataclass(frozen=True)
class PodReading:
    """One pod's scrape: each model's counters, and the GPU memory in use (None: no GPU metrics)."""

    counters: dict[str, PodCounters]
    gpu_memory_bytes: float | None


class DirectMetrics:
    def __init__(
        self,
        kube: KubeClient,
        endpoints: TritonEndpoints,
        *,
        timeout_s: float = SCRAPE_TIMEOUT_S,
        concurrency: int = SCRAPE_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.kube = kube
        self.endpoints = endpoints
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False)
        self._slots = asyncio.Semaphore(concurrency)
        self._tallies: OrderedDict[tuple[str, ...], DirectTally] = OrderedDict()

    async def sample(self, ref: IsvcRef, models: tuple[str, ...], canary: str, stable: str) -> DirectSample:
        """Scrape both revisions' pods and add what each model served since the last tick
        (``("*",)``: every model in the pods' metrics)."""
        (canary_pods, canary_problem), (stable_pods, stable_problem) = await asyncio.gather(
            self._scrape(ref, models, canary), self._scrape(ref, models, stable)
        )
        names = list(models)
        if models == (ALL_MODELS,):
            names = sorted({m for pods in (canary_pods, stable_pods) for r in pods.values() if r for m in r.counters})
        tallies = {}
        for model in names:
            key = (ref.namespace, ref.name, ref.uid, model)  # a re-created object starts afresh
            tally = self._tallies.pop(key, None)
            if tally is None or (tally.canary_revision, tally.stable_revision) != (canary, stable):
                tally = DirectTally(canary, stable)
            self._tallies[key] = tally
            (canary_counters, canary_gpu) = _split(canary_pods, model)
            (stable_counters, stable_gpu) = _split(stable_pods, model)
            tally.observe(canary_counters, stable_counters, canary_gpu, stable_gpu)
            tallies[model] = tally
        while len(self._tallies) > MAX_TALLIES:  # objects deleted mid-canary: the oldest go
            self._tallies.popitem(last=False)
        problem = canary_problem or stable_problem
        first = tallies[names[0]] if names else DirectTally(canary, stable)
        return DirectSample(first, complete=not problem, problem=problem, tallies=tallies)

    async def sample_versions(
        self, ref: IsvcRef, model: str, revision: str, canary_pod: str, candidate: str, version: str
    ) -> DirectSample:
        """An in-place switch (rollout.strategy InPlace): the candidate version on the canary pod
        against the old version on the revision's other pods, one scrape of each pod."""
        key = (ref.namespace, ref.name, ref.uid)
        sides = (f"{revision}/{canary_pod}/{candidate}", f"{revision}/{version}")
        tally = self._tallies.pop(key, None)
        if tally is None or (tally.canary_revision, tally.stable_revision) != sides:
            tally = DirectTally(*sides)
        self._tallies[key] = tally
        while len(self._tallies) > MAX_TALLIES:
            self._tallies.popitem(last=False)
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        try:
            pods = [p for p in await self.kube.list(*POD.key, ref.namespace, selector) if _running(p)]
        except KubeError as err:
            return DirectSample(tally, complete=False, problem=f"pods not listed (HTTP {err.status})")
        canary = [p for p in pods if p["metadata"]["name"] == canary_pod]
        others = [p for p in pods if p["metadata"]["name"] != canary_pod]
        answers = await asyncio.gather(
            *(self._read(ref, (model,), p, candidate) for p in canary),
            *(self._read(ref, (model,), p, version) for p in others),
        )
        counters = [None if a is None else a.counters[model] for a, _ in answers]
        gpu = [None if a is None else a.gpu_memory_bytes for a, _ in answers]  # the canary pod holds both versions
        canary_keys, other_keys, n = list(map(_pod_key, canary)), list(map(_pod_key, others)), len(canary)
        tally.observe(
            dict(zip(canary_keys, counters[:n], strict=True)),
            dict(zip(other_keys, counters[n:], strict=True)),
            dict(zip(canary_keys, gpu[:n], strict=True)),
            dict(zip(other_keys, gpu[n:], strict=True)),
        )
        problems = [problem for _, problem in answers if problem]
        if not canary:
            problems.insert(0, f"canary pod {canary_pod} is not running")
        return DirectSample(tally, complete=not problems, problem="; ".join(problems[:3]))

    def forget(self, namespace: str, name: str) -> None:
        for key in [k for k in self._tallies if k[:2] == (namespace, name)]:
            del self._tallies[key]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _scrape(
        self, ref: IsvcRef, models: tuple[str, ...], revision: str
    ) -> tuple[dict[str, PodReading | None], str]:
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        try:
            pods = [p for p in await self.kube.list(*POD.key, ref.namespace, selector) if _running(p)]
        except KubeError as err:
            return {}, f"revision {revision}: pods not listed (HTTP {err.status})"
        if not pods:
            return {}, f"revision {revision}: no running pod to read metrics from"
        keys = [_pod_key(p) for p in pods]
        answers = await asyncio.gather(*(self._read(ref, models, p) for p in pods))
        readings = dict(zip(keys, (a for a, _ in answers), strict=True))
        problems = [problem for _, problem in answers if problem]
        return readings, "; ".join(problems[:3])

    async def _read(
        self, ref: IsvcRef, models: tuple[str, ...], pod: dict[str, Any], version: str | None = None
    ) -> tuple[PodReading | None, str]:
        name = pod["metadata"]["name"]
        url = self.endpoints.metrics_url_for_pod(ref.namespace, name, (pod.get("status") or {}).get("podIP"))
        if url is None:
            return None, f"pod {name}: no address"
        try:
            async with self._slots:
                response = await self._http.get(url)
            if response.status_code != 200:
                return None, f"pod {name}: metrics answered HTTP {response.status_code}"
            if len(response.content) > MAX_METRICS_BYTES:
                return None, f"pod {name}: metrics text over {MAX_METRICS_BYTES} bytes"
            text = response.text
            listed = None if models == (ALL_MODELS,) else models
            return PodReading(parse_model_counters(text, listed, version), parse_gpu_memory(text)), ""
        except httpx.HTTPError:
            return None, f"pod {name}: no metrics answer"
        except MetricsTextError as err:
            log.debug("%s/%s: pod %s metrics: %s", ref.namespace, ref.name, name, err)
            return None, f"pod {name}: metrics unreadable ({err})"


def _split(
    readings: dict[str, PodReading | None], model: str
) -> tuple[dict[str, PodCounters | None], dict[str, float | None]]:
    """Each pod's counters of ``model`` (zeros where it has none) and GPU memory (None where the pod
    was not read), as the tally takes them."""
    counters = {key: None if r is None else r.counters.get(model, PodCounters()) for key, r in readings.items()}
    return counters, {key: None if r is None else r.gpu_memory_bytes for key, r in readings.items()}


def _running(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _pod_key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name"))
