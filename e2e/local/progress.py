"""Live progress lines a person can follow: status, the router's view of each revision, Events.

``progress_line`` and ``analysis_line`` are pure; ``ServingWindows`` turns the router's
per-revision outcomes into window stats, counted from each revision's first answered request;
``ProgressPrinter`` polls the stack and prints a line whenever the rollout moves (and every
``every_s`` seconds otherwise). ``LEGEND`` says what the columns mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from e2e.local.router import RevisionTraffic, WindowStats

# Recent traffic shown per revision, in seconds.
WINDOW_S = 5.0
CELL = 36  # width of a revision column
HEADER = (
    f"{'time':>6}  {'phase':<12} {'step':<5} {'weight':>6}  {'stable: ok, mean, rate':<{CELL}} "
    f"{'canary: ok, mean, rate':<{CELL}} detail"
)
LEGEND = f"""columns:
  time    minutes:seconds since the demo started
  phase   the InferenceService's status.phase; step: the canary's step (n/N); weight: % of traffic the canary gets
  stable, canary
          the revision (first 8 characters of its hash), then what the router saw in the last {WINDOW_S:g}s of
          traffic to it: ok = % of requests a pod answered that succeeded; mean = mean latency of those
          successes in ms; rate = requests sent to it per second (req/s); +Nx503 = requests that found no
          ready pod (a gateway answers them 503), counted from the revision's first answered request on
  detail  status.message, or what the canary waits for before it gets traffic"""


@dataclass(frozen=True)
class Served(WindowStats):
    """Window stats over ``seconds`` (shorter than the window while a revision has just begun
    serving); ``waiting`` counts requests that found no ready pod before it ever answered one."""

    seconds: float = WINDOW_S
    waiting: int = 0


class ServingWindows:
    """Per revision, the router's recent outcomes counted from when it first answered a request
    (its first ready backend): 503s from before that are the rollout waiting for pods, not news."""

    def __init__(self) -> None:
        self.first_answer: dict[str, float] = {}

    def stats(self, traffic: Mapping[str, RevisionTraffic], now: float, window_s: float) -> dict[str, Served]:
        return {revision: self.window(revision, t, now, window_s) for revision, t in traffic.items()}

    def window(self, revision: str, traffic: RevisionTraffic, now: float, window_s: float) -> Served:
        if revision not in self.first_answer:
            first = next((o.at for o in traffic.recent if o.result != "unavailable"), None)
            if first is not None:
                self.first_answer[revision] = first
        start = now - window_s
        since = self.first_answer.get(revision)
        if since is None:
            waiting = sum(o.at >= start for o in traffic.recent)
            return Served(0, 0, 0, None, seconds=window_s, waiting=waiting)
        outcomes = [o for o in traffic.recent if o.at >= max(start, since)]
        ok = [o for o in outcomes if o.result == "ok"]
        failed = sum(o.result == "failed" for o in outcomes)
        latency = sum(o.latency_ms for o in ok) / len(ok) if ok else None
        seconds = max(min(window_s, now - since), 1e-3)
        return Served(len(ok) + failed, len(ok), len(outcomes) - len(ok) - failed, latency, seconds=seconds)


def revision_cell(revision: str | None, stats: WindowStats | None) -> str:
    """`24f4d047 100.0%   3ms   24/s`: a revision, the success rate and mean latency (ms) its pods
    answered with lately, the requests per second it was sent, and how many of those found no
    ready pod (a gateway answers those with 503)."""
    if revision is None:
        return "-"
    short = revision[:8]
    if stats is None or stats.answered + stats.unavailable == 0:
        waiting = isinstance(stats, Served) and stats.waiting > 0
        return f"{short} (no ready pod yet)" if waiting else f"{short} (no traffic)"
    seconds = stats.seconds if isinstance(stats, Served) else WINDOW_S
    per_second = f"{(stats.answered + stats.unavailable) / seconds:.0f}/s"
    unavailable = f" +{stats.unavailable}x503" if stats.unavailable else ""
    if stats.answered == 0:
        return f"{short} {'-':>6} {'-':>6} {per_second:>5}{unavailable}"
    rate = f"{stats.success_rate * 100:.1f}%" if stats.success_rate is not None else "-"
    latency = f"{stats.mean_latency_ms:.0f}ms" if stats.mean_latency_ms is not None else "-"
    return f"{short} {rate:>6} {latency:>6} {per_second:>5}{unavailable}"


def progress_line(elapsed_s: float, status: Mapping[str, Any], stats: Mapping[str, WindowStats], steps: int) -> str:
    """One table row: time, phase, step, weight, stable and canary traffic, and what is going on."""
    canary = status.get("canary") or {}
    canary_revision = status.get("canaryRevision")
    in_step = canary_revision is not None and canary.get("stepStartedAt") is not None
    step = f"{canary.get('step', 0) + 1}/{steps}" if in_step else "-"
    weight = f"{canary.get('weight', 0)}%" if canary_revision else "-"
    stable = status.get("stableRevision")
    detail = (canary.get("waitingFor") if canary_revision and not in_step else None) or status.get("message") or ""
    minutes, seconds = divmod(int(elapsed_s), 60)
    return (
        f"{minutes:>3}:{seconds:02d}  {status.get('phase', '-')!s:<12} {step:<5} {weight:>6}  "
        f"{revision_cell(stable, stats.get(stable or '')):<{CELL}} "
        f"{revision_cell(canary_revision, stats.get(canary_revision or '')):<{CELL}} {detail}"
    )


def analysis_line(checks: list[Mapping[str, Any]]) -> str:
    """The latest analysis in one line: each check's result, value (in its bound's unit) and bound."""
    parts = []
    for check in checks:
        value = check.get("value")
        unit = re.search(r"[0-9.]([a-z%]+)", check.get("bound") or "")
        shown = f" {value:g}{unit.group(1) if unit else ''}" if isinstance(value, int | float) else ""
        bound = f" ({check['bound']})" if check.get("bound") else ""
        parts.append(f"{check.get('name')} {check.get('result')}{shown}{bound}")
    return "analysis: " + ", ".join(parts)


def is_about_the_inferenceservice(event: Mapping[str, Any]) -> bool:
    """Whether an Event is the operator's, about the InferenceService (not a same-named child)."""
    kind = (event.get("involvedObject") or {}).get("kind")
    return kind in (None, "InferenceService")


class ProgressPrinter:
    """Prints progress lines, analyses and new Events for one InferenceService while running."""

    def __init__(
        self,
        status: Callable[[], Mapping[str, Any]],
        events: Callable[[], Sequence[Mapping[str, Any]]],
        stats: Callable[[float], Mapping[str, WindowStats]],
        *,
        steps: int,
        out: TextIO,
        every_s: float = 3.0,
        poll_s: float = 0.25,
    ) -> None:
        self.status = status
        self.events = events
        self.stats = stats
        self.steps = steps
        self.out = out
        self.every_s = every_s
        self.poll_s = poll_s
        self.started = time.monotonic()
        self._seen_events: set[str] = {self._event_id(e) for e in events()}
        self._last_key: tuple[Any, ...] | None = None
        self._last_analysis: Any = None
        self._last_print = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        self.poll()

    def poll(self) -> None:
        now = time.monotonic()
        status = self.status()
        canary = status.get("canary") or {}
        key = (
            status.get("phase"),
            status.get("stableRevision"),
            status.get("canaryRevision"),
            canary.get("step"),
            canary.get("weight"),
            canary.get("waitingFor"),
            status.get("message"),
        )
        if status and (key != self._last_key or now - self._last_print >= self.every_s):
            self.print(progress_line(now - self.started, status, self.stats(WINDOW_S), self.steps))
            self._last_key, self._last_print = key, now
        analysis = canary.get("lastAnalysis")
        if analysis and analysis != self._last_analysis:
            self.print(f"{'':>8}{analysis_line(analysis)}")
        self._last_analysis = analysis
        for event in self.events():
            if not is_about_the_inferenceservice(event):
                continue  # e.g. the control plane on a same-named Service (the stand-in's 127.0.0.1 pod IPs)
            if self._event_id(event) not in self._seen_events:
                self._seen_events.add(self._event_id(event))
                self.print(f"{'':>8}event {event.get('type')} {event.get('reason')}: {event.get('message')}")

    def print(self, line: str) -> None:
        self.out.write(line.rstrip() + "\n")
        self.out.flush()

    @staticmethod
    def _event_id(event: Mapping[str, Any]) -> str:
        return (event.get("metadata") or {}).get("uid") or (event.get("metadata") or {}).get("name", "")
