"""Direct metrics: Triton's own metrics endpoint on every canary and stable pod, once a tick.

I/O at the edge: the revisions' pods through the Kubernetes API, each pod's port 8002 over
HTTP (bounded concurrency, a short timeout). What the scrapes mean is pure
(``analysis.triton_metrics``); what it concludes too (``analysis.direct``).

One ``DirectTally`` per InferenceService, kept in memory while its canary runs and started
afresh for another canary (or stable), or after an operator restart: the sequential test is
valid from any start, it only has less evidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx

from tritonop.analysis.triton_metrics import DirectTally, MetricsTextError, PodCounters, parse_counters
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

    tally: DirectTally
    complete: bool
    problem: str = ""  # why not complete, for status: "pod P: no answer"


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
        self._tallies: OrderedDict[tuple[str, str, str], DirectTally] = OrderedDict()

    async def sample(self, ref: IsvcRef, model: str, canary: str, stable: str) -> DirectSample:
        """Scrape both revisions' pods and add what they served since the last tick."""
        key = (ref.namespace, ref.name, ref.uid)  # a re-created object starts afresh
        tally = self._tallies.pop(key, None)
        if tally is None or (tally.canary_revision, tally.stable_revision) != (canary, stable):
            tally = DirectTally(canary, stable)
        self._tallies[key] = tally
        while len(self._tallies) > MAX_TALLIES:  # objects deleted mid-canary: the oldest go
            self._tallies.popitem(last=False)
        (canary_pods, canary_problem), (stable_pods, stable_problem) = await asyncio.gather(
            self._scrape(ref, model, canary), self._scrape(ref, model, stable)
        )
        tally.observe(canary_pods, stable_pods)
        problem = canary_problem or stable_problem
        return DirectSample(tally, complete=not problem, problem=problem)

    def forget(self, namespace: str, name: str) -> None:
        for key in [k for k in self._tallies if k[:2] == (namespace, name)]:
            del self._tallies[key]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _scrape(self, ref: IsvcRef, model: str, revision: str) -> tuple[dict[str, PodCounters | None], str]:
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        try:
            pods = [p for p in await self.kube.list(*POD.key, ref.namespace, selector) if _running(p)]
        except KubeError as err:
            return {}, f"revision {revision}: pods not listed (HTTP {err.status})"
        if not pods:
            return {}, f"revision {revision}: no running pod to read metrics from"
        keys = [_pod_key(p) for p in pods]
        answers = await asyncio.gather(*(self._read(ref, model, p) for p in pods))
        counters = dict(zip(keys, (a for a, _ in answers), strict=True))
        problems = [problem for _, problem in answers if problem]
        return counters, "; ".join(problems[:3])

    async def _read(self, ref: IsvcRef, model: str, pod: dict[str, Any]) -> tuple[PodCounters | None, str]:
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
            return parse_counters(response.text, model), ""
        except httpx.HTTPError:
            return None, f"pod {name}: no metrics answer"
        except MetricsTextError as err:
            log.debug("%s/%s: pod %s metrics: %s", ref.namespace, ref.name, name, err)
            return None, f"pod {name}: metrics unreadable ({err})"


def _running(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _pod_key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name"))
