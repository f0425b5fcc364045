"""The Notifier against real local HTTP sinks on 127.0.0.1 (aiohttp): retries with backoff and
Retry-After, the reason filter, and a stalled sink that never delays the caller.

Nothing here sleeps to wait: the sink sets an asyncio.Event when it accepts, and retry spacing
is read from the arrival times the sink records."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from tritonop import metrics
from tritonop.notify import Notifier
from tritonop.notify.config import parse_config
from tritonop.notify.delivery import Backoff
from tritonop.notify.payloads import notification_from
from tritonop.rollout import Event

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
BODY = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1"},
    "status": {"stableRevision": "aaaaaaaaaa", "canaryRevision": "bbbbbbbbbb", "phase": "Progressing"},
}
# Slow CI machines: how much later than planned an arrival may be.
SLACK_S = 1.0


@dataclass
class Sink:
    """A local HTTP sink answering from a script (status, headers), then 200."""

    script: list[tuple[int, dict[str, str]]]
    arrivals: list[tuple[float, dict[str, Any], int]] = field(default_factory=list)
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        status, headers = self.script.pop(0) if self.script else (200, {})
        self.arrivals.append((time.monotonic(), payload, status))
        if status == 200:
            self.accepted.set()
        return web.Response(status=status, headers=headers, text="ok" if status == 200 else "nope")

    def accepted_payloads(self) -> list[dict[str, Any]]:
        return [p for _, p, status in self.arrivals if status == 200]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink(script=[])
    app = web.Application()
    app.router.add_post("/hook/{secret}", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    s.url = f"http://127.0.0.1:{port}/hook/s3cr3t"
    yield s
    await runner.cleanup()


def counted(sink: str, result: str) -> float:
    return metrics.REGISTRY.get_sample_value("tritonop_notifications_total", {"sink": sink, "result": result}) or 0.0


async def test_retries_with_backoff_and_retry_after_then_delivers(sink: Sink) -> None:
    sink.script = [(500, {}), (500, {}), (429, {"Retry-After": "1"})]
    config = parse_config(f"- {{name: it-retry, type: webhook, url: '{sink.url}', maxAttempts: 5}}")
    notifier = Notifier(config, backoff=Backoff(initial=0.2, cap=5), clock=lambda: NOW)
    await notifier.start()
    try:
        # CanaryStep is not among the default reasons: filtered out, it never reaches the sink.
        notifier.notify(BODY, Event("Normal", "CanaryStep", "weight 20% for bbbbbbbbbb (step 1 of 3)"))
        notifier.notify(BODY, Event("Normal", "CanaryStarted", "revision bbbbbbbbbb started as canary"))
        await asyncio.wait_for(sink.accepted.wait(), timeout=15)
    finally:
        await notifier.aclose()

    assert [status for _, _, status in sink.arrivals] == [500, 500, 429, 200]
    assert all(p["reason"] == "CanaryStarted" for _, p, _ in sink.arrivals)  # the same body, four times
    assert sink.accepted_payloads() == [
        {
            "schema": "tritonop.dev/notification/v1",
            "reason": "CanaryStarted",
            "type": "Normal",
            "message": "revision bbbbbbbbbb started as canary",
            "time": "2026-05-01T12:00:00Z",
            "cluster": None,
            "namespace": "ml",
            "name": "resnet",
            "uid": "u-1",
            "revision": "bbbbbbbbbb",
            "stableRevision": "aaaaaaaaaa",
            "canaryRevision": "bbbbbbbbbb",
            "failedRevision": None,
            "phase": "Progressing",
        }
    ]
    times = [t for t, _, _ in sink.arrivals]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Backoff 0.2 s then 0.4 s, each jittered into [half, full]; then the 429's Retry-After: 1 s.
    assert 0.1 <= gaps[0] <= 0.2 + SLACK_S, gaps
    assert 0.2 <= gaps[1] <= 0.4 + SLACK_S, gaps
    assert 1.0 <= gaps[2] <= 1.0 + SLACK_S, gaps
    assert counted("it-retry", "retried") == 3 and counted("it-retry", "sent") == 1
    assert counted("it-retry", "failed") == 0


async def test_a_filtered_reason_never_arrives(sink: Sink) -> None:
    config = parse_config(f"- {{name: it-filter, type: slack, url: '{sink.url}', reasons: [RolledBack]}}")
    notifier = Notifier(config, clock=lambda: NOW)
    await notifier.start()
    try:
        for reason in ("CanaryStarted", "CanaryStep", "Promoted", "AnalysisNoData", "RolloutFailed"):
            notifier.notify(BODY, Event("Normal", reason, "filtered"))
        notifier.notify(BODY, Event("Warning", "RolledBack", "rolled back revision bbbbbbbbbb"))
        await asyncio.wait_for(sink.accepted.wait(), timeout=15)
    finally:
        await notifier.aclose()
    # The queue is FIFO: anything let through before RolledBack would have arrived first.
    (payload,) = [p for _, p, _ in sink.arrivals]
    assert payload["text"].startswith(":leftwards_arrow_with_hook: RolledBack: ml/resnet")
    assert payload["blocks"][0]["text"]["text"] == "RolledBack: ml/resnet revision bbbbbbbbbb"


async def test_a_stalled_sink_never_delays_the_caller_nor_other_sinks(sink: Sink) -> None:
    connected = asyncio.Event()
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await release.wait()  # accepts, reads nothing, answers nothing
        writer.close()

    stalled = await asyncio.start_server(stall, "127.0.0.1", 0)
    stalled_port = stalled.sockets[0].getsockname()[1]
    config = parse_config(
        f"- {{name: it-stalled, type: teams, url: 'http://127.0.0.1:{stalled_port}/wf', reasons: '*',"
        " timeoutSeconds: 300, queueSize: 3}\n"
        f"- {{name: it-healthy, type: webhook, url: '{sink.url}', reasons: [Promoted]}}"
    )
    notifier = Notifier(config, clock=lambda: NOW)
    await notifier.start()
    stalled_worker, healthy_worker = notifier.workers.values()
    dropped_before = counted("it-stalled", "dropped")
    try:
        for i in range(10):
            notifier.notify(BODY, Event("Normal", "CanaryStep", f"step {i}"))
        # Every call returned without yielding to the loop: all ten were queued synchronously,
        # the oldest dropped past queueSize.
        assert [n.message for n in stalled_worker.queue] == ["step 7", "step 8", "step 9"]
        assert counted("it-stalled", "dropped") - dropped_before == 7
        assert stalled_worker.in_flight is None

        await asyncio.wait_for(connected.wait(), timeout=15)
        # The worker holds one notification on the stalled connection ...
        assert stalled_worker.in_flight is not None and stalled_worker.in_flight.message == "step 7"
        # ... and the caller still returns at once: it only appends.
        notifier.notify(BODY, Event("Normal", "Promoted", "revision bbbbbbbbbb promoted"))
        assert [n.reason for n in stalled_worker.queue] == ["CanaryStep", "CanaryStep", "Promoted"]
        # The other sink is not held up by the stalled one.
        await asyncio.wait_for(sink.accepted.wait(), timeout=15)
        assert [p["reason"] for p in sink.accepted_payloads()] == ["Promoted"]
        assert stalled_worker.in_flight is not None  # still waiting on its 300 s timeout
    finally:
        await notifier.aclose()  # cancels the stalled delivery at once
        release.set()
        stalled.close()
        await stalled.wait_closed()
    assert not healthy_worker.queue


async def test_a_closed_port_fails_after_its_attempts_and_is_counted() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens there now: connection refused
    config = parse_config(f"- {{name: it-closed, type: webhook, url: 'http://127.0.0.1:{port}/x', maxAttempts: 3}}")
    notifier = Notifier(config, backoff=Backoff(initial=0.01, cap=0.02))
    (worker,) = notifier.workers.values()
    delivered = await worker.deliver(notification_from(BODY, Event("Warning", "RolledBack", "m"), now=NOW))
    assert not delivered
    assert counted("it-closed", "retried") == 2 and counted("it-closed", "failed") == 1
