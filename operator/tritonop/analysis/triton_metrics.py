"""Triton's own metrics (port 8002, Prometheus text) turned into per-revision deltas. Pure.

Triton's counters are cumulative per model and version since the server started:
``nv_inference_request_success``, ``nv_inference_request_failure`` (one series per ``reason``),
``nv_inference_count``, ``nv_inference_request_duration_us`` (summed over successful requests)
and ``nv_inference_queue_duration_us``. A scrape of one pod gives a ``PodCounters``; two
scrapes of the same pod give the requests served in between. A counter that went down means
the server restarted (a container restart keeps the pod): the new value is then all that was
served since. A pod seen for the first time only sets its baseline, so requests it served
before sampling began (the acceptance inferences, say) are not counted.

``RevisionTally`` keeps, per revision, the totals since sampling began and one mean latency
per sample (about one a second) for the sign tests in ``analysis.sequential``.

``nv_gpu_memory_used_bytes`` is a gauge, one series per GPU (``gpu_uuid``) the server sees:
a level, not a counter. Each pod's latest level (summed over its GPUs) is kept, and each
sample records the revision's worst pod, for the GPU memory checks in ``analysis.direct``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
COUNT = "nv_inference_count"
DURATION_US = "nv_inference_request_duration_us"
QUEUE_US = "nv_inference_queue_duration_us"
COUNTERS = (SUCCESS, FAILURE, COUNT, DURATION_US, QUEUE_US)
GPU_MEMORY_USED = "nv_gpu_memory_used_bytes"

# name{labels} value [timestamp]; label values are double-quoted with \\, \" and \n escapes.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
# Samples kept per revision for the latency sign tests: an hour at one a second.
MAX_SAMPLES = 3600


class MetricsTextError(ValueError):
    """The text is not Prometheus exposition text with Triton's counters."""


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            if text[position:].strip():
                raise MetricsTextError(f"malformed labels: {text[:80]!r}")
            break
        labels[match.group(1)] = _unescape(match.group(2))
        position = match.end()
    return labels


@dataclass(frozen=True)
class PodCounters:
    """One model's cumulative counters on one Triton server, summed over versions (and reasons)."""

    success: float = 0.0
    failure: float = 0.0
    count: float = 0.0
    duration_us: float = 0.0
    queue_us: float = 0.0

    def minus(self, earlier: PodCounters) -> PodCounters:
        return PodCounters(
            self.success - earlier.success,
            self.failure - earlier.failure,
            self.count - earlier.count,
            self.duration_us - earlier.duration_us,
            self.queue_us - earlier.queue_us,
        )

    def plus(self, other: PodCounters) -> PodCounters:
        return PodCounters(
            self.success + other.success,
            self.failure + other.failure,
            self.count + other.count,
            self.duration_us + other.duration_us,
            self.queue_us + other.queue_us,
        )

    def went_down_from(self, earlier: PodCounters) -> bool:
        delta = self.minus(earlier)
        return min(delta.success, delta.failure, delta.count, delta.duration_us, delta.queue_us) < 0


def parse_counters(text: str, model: str, version: str | None = None) -> PodCounters:
    """The model's counters in one scrape of Triton's metrics endpoint (one version's only,
    when ``version`` is given: an in-place switch compares versions within the pods).

    Other models' series and other metrics are skipped; comments and blank lines too. A line
    that does not parse, or a non-finite or negative counter, raises MetricsTextError: a
    scrape is used whole or not at all. A server with no such series yet (no request since it
    started) reads as zeros.
    """
    return parse_model_counters(text, (model,), version)[model]


def parse_model_counters(
    text: str, models: Collection[str] | None = None, version: str | None = None
) -> dict[str, PodCounters]:
    """Each model's counters in one scrape, as ``parse_counters`` reads one model's: those of
    ``models`` (zeros for one without series), or of every model with series when None."""
    totals = {model: dict.fromkeys(COUNTERS, 0.0) for model in models or ()}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MetricsTextError(f"line {number} is not a sample: {line[:80]!r}")
        name = match.group(1)
        if name not in COUNTERS:
            continue
        labels = parse_labels(match.group(3) or "")
        model = labels.get("model")
        if model is None or (models is not None and model not in totals):
            continue
        if version is not None and labels.get("version") != version:
            continue
        value = _sample_value(match, number, f"counter {name}")
        totals.setdefault(model, dict.fromkeys(COUNTERS, 0.0))[name] += value
    return {model: PodCounters(*(counts[name] for name in COUNTERS)) for model, counts in totals.items()}


def _sample_value(match: re.Match[str], number: int, what: str) -> float:
    """A sample's value: finite and non-negative, else MetricsTextError naming the line."""
    try:
        value = float(match.group(4))
    except ValueError:
        raise MetricsTextError(f"line {number}: {match.group(4)[:40]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise MetricsTextError(f"line {number}: {what} is {match.group(4)[:40]}")
    return value


def parse_gpu_memory(text: str) -> float | None:
    """The server's GPU memory in use in one scrape, in bytes, summed over its GPUs; None when
    the text has no ``nv_gpu_memory_used_bytes`` (Triton on CPU, or GPU metrics off).

    A sample of it that does not parse, or is not finite and non-negative, raises MetricsTextError.
    """
    total: float | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line.startswith(GPU_MEMORY_USED):  # a prefix test: far cheaper than the counters' parse
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MetricsTextError(f"line {number} is not a sample: {line[:80]!r}")
        if match.group(1) != GPU_MEMORY_USED:
            continue
        total = (total or 0.0) + _sample_value(match, number, f"gauge {GPU_MEMORY_USED}")
    return total


@dataclass
class RevisionTally:
    """What one revision served since sampling began: totals, and one mean latency per sample."""

    total: PodCounters = field(default_factory=PodCounters)
    samples: int = 0  # scrapes that saw at least one pod
    latencies_ms: deque[float | None] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    # Per sample, the highest of the pods' latest GPU memory levels in bytes (None: no pod has one).
    gpu_memory_bytes: deque[float | None] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    _pods: dict[str, PodCounters] = field(default_factory=dict)
    _gpu_levels: dict[str, float] = field(default_factory=dict)
    restarts: int = 0

    @property
    def requests(self) -> int:
        return round(self.total.success + self.total.failure)

    @property
    def failures(self) -> int:
        return round(self.total.failure)

    def observe(
        self, pods: Mapping[str, PodCounters | None], gpu_memory: Mapping[str, float | None] | None = None
    ) -> PodCounters:
        """One sample of the revision's pods (pod key -> counters; None: not reached this time),
        and the GPU memory each pod reached reported (pod key -> bytes; None or absent: none).

        Returns what the revision served since the previous sample. A pod not reached keeps its
        last counters, so what it served meanwhile counts at the next sample that reaches it. A
        pod no longer listed is forgotten. The pod key should change when a pod is replaced
        (its uid); a restart within a pod is seen as counters going down. A pod not reached keeps
        its last GPU memory level too: a level's latest reading stands until the next.
        """
        delta = PodCounters()
        for key in [k for k in self._pods if k not in pods]:
            del self._pods[key]
        self._observe_gpu_memory(pods, gpu_memory or {})
        for key, counters in pods.items():
            if counters is None:
                continue
            before = self._pods.get(key)
            self._pods[key] = counters
            if before is None:
                continue  # first sight: a baseline
            if counters.went_down_from(before):
                self.restarts += 1
                delta = delta.plus(counters)  # restarted from zero: all of it is new
            else:
                delta = delta.plus(counters.minus(before))
        if any(c is not None for c in pods.values()):
            self.samples += 1
        self.total = self.total.plus(delta)
        # One entry per sample, reached or not, so two revisions sampled together stay paired.
        self.latencies_ms.append(delta.duration_us / delta.success / 1000 if delta.success > 0 else None)
        return delta

    def _observe_gpu_memory(self, pods: Mapping[str, PodCounters | None], levels: Mapping[str, float | None]) -> None:
        for key in [k for k in self._gpu_levels if k not in pods]:
            del self._gpu_levels[key]
        for key, counters in pods.items():
            if counters is None:
                continue  # not reached: its last level stands
            level = levels.get(key)
            if level is None:
                self._gpu_levels.pop(key, None)
            else:
                self._gpu_levels[key] = level
        self.gpu_memory_bytes.append(max(self._gpu_levels.values(), default=None))


@dataclass
class DirectTally:
    """The canary's and the stable's tallies for one running canary."""

    canary_revision: str
    stable_revision: str
    canary: RevisionTally = field(default_factory=RevisionTally)
    stable: RevisionTally = field(default_factory=RevisionTally)

    def observe(
        self,
        canary: Mapping[str, PodCounters | None],
        stable: Mapping[str, PodCounters | None],
        canary_gpu_memory: Mapping[str, float | None] | None = None,
        stable_gpu_memory: Mapping[str, float | None] | None = None,
    ) -> tuple[PodCounters, PodCounters]:
        """One sample of both revisions, taken together so their per-sample latencies and GPU
        memory levels pair up."""
        return self.canary.observe(canary, canary_gpu_memory), self.stable.observe(stable, stable_gpu_memory)

    def canary_means(self) -> list[float]:
        return [m for m in self.canary.latencies_ms if m is not None]

    def paired_means(self) -> list[tuple[float, float]]:
        pairs: Iterable[tuple[float | None, float | None]] = zip(
            self.canary.latencies_ms, self.stable.latencies_ms, strict=False
        )
        return [(c, s) for c, s in pairs if c is not None and s is not None]
