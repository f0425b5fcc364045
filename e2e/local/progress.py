"""Live progress lines a person can follow: status, the router's view of each revision, Events.

``progress_line`` and ``analysis_line`` are pure; ``ProgressPrinter`` polls the stack and
prints a line whenever the rollout moves (and every ``every_s`` seconds otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from e2e.local.router import WindowStats

# Recent traffic shown per revision, in seconds.
WINDOW_S = 5.0
HEADER = (
    f"{'time':>6}  {'phase':<12} {'step':<5} {'weight':>6}  {'stable (ok, mean)':<30} {'canary (ok, mean)':<30} detail"
)


def revision_cell(revision: str | None, stats: WindowStats | None) -> str:
    """`24f4d047 100.0% 3ms`: a revision, the success rate and mean latency its pods answered with
    lately, and how many requests found no ready pod (a gateway answers those with 503)."""
    if revision is None:
        return "-"
    short = revision[:8]
    if stats is None or stats.answered + stats.unavailable == 0:
        return f"{short} (no traffic)"
    if stats.answered == 0:
        return f"{short} {'-':>6} {'-':>6} +{stats.unavailable}x503"
    rate = f"{stats.success_rate * 100:.1f}%" if stats.success_rate is not None else "-"
    latency = f"{stats.mean_latency_ms:.0f}ms" if stats.mean_latency_ms is not None else "-"
    unavailable = f" +{stats.unavailable}x503" if stats.unavailable else ""
    return f"{short} {rate:>6} {latency:>6}{unavailable}"


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
        f"{revision_cell(stable, stats.get(stable or '')):<30} "
        f"{revision_cell(canary_revision, stats.get(canary_revision or '')):<30} {detail}"
    )


def analysis_line(checks: list[Mapping[str, Any]]) -> str:
    """The latest analysis in one line: each check's result, value and bound."""
    parts = []
    for check in checks:
        value = check.get("value")
        shown = f" {value:g}" if isinstance(value, int | float) else ""
        bound = f" ({check['bound']})" if check.get("bound") else ""
        parts.append(f"{check.get('name')} {check.get('result')}{shown}{bound}")
    return "analysis: " + ", ".join(parts)


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
            if self._event_id(event) not in self._seen_events:
                self._seen_events.add(self._event_id(event))
                self.print(f"{'':>8}event {event.get('type')} {event.get('reason')}: {event.get('message')}")

    def print(self, line: str) -> None:
        self.out.write(line.rstrip() + "\n")
        self.out.flush()

    @staticmethod
    def _event_id(event: Mapping[str, Any]) -> str:
        return (event.get("metadata") or {}).get("uid") or (event.get("metadata") or {}).get("name", "")
