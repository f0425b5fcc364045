"""The Notifier without a network: reason filtering, queue bounds, backoff, Retry-After, reload."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tritonop import metrics
from tritonop.notify import Notifier
from tritonop.notify.config import parse_config
from tritonop.notify.delivery import RETRY_AFTER_CAP, Answer, Backoff, SinkWorker, parse_retry_after
from tritonop.notify.payloads import Notification
from tritonop.rollout import Event

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
BODY = {"kind": "InferenceService", "metadata": {"name": "resnet", "namespace": "ml"}, "status": {}}
CONFIG = """
- {name: all, type: webhook, url: 'http://h/a', reasons: '*'}
- {name: defaults, type: slack, url: 'http://h/b'}
- {name: failures, type: teams, url: 'http://h/c', reasons: [RolledBack, RolloutFailed], queueSize: 2}
"""


def queued(notifier: Notifier, name: str) -> list[str]:
    worker = next(w for w in notifier.workers.values() if w.sink.name == name)
    return [n.reason for n in worker.queue]


def counted(sink: str, result: str) -> float:
    return metrics.REGISTRY.get_sample_value("tritonop_notifications_total", {"sink": sink, "result": result}) or 0.0


def test_each_sink_queues_only_the_reasons_it_wants() -> None:
    notifier = Notifier(parse_config(CONFIG), clock=lambda: NOW)
    for reason in ("CanaryStarted", "CanaryStep", "AnalysisNoData", "Promoted", "RolledBack", "ChildConflict"):
        notifier.notify(BODY, Event("Normal", reason, "m"))
    assert queued(notifier, "all") == ["CanaryStarted", "CanaryStep", "AnalysisNoData", "Promoted", "RolledBack"]
    assert queued(notifier, "defaults") == ["CanaryStarted", "Promoted", "RolledBack"]
    assert queued(notifier, "failures") == ["RolledBack"]


def test_only_inferenceservices_are_notified() -> None:
    notifier = Notifier(parse_config(CONFIG))
    notifier.notify({**BODY, "kind": "Deployment"}, Event("Warning", "RolledBack", "m"))
    assert all(not w.queue for w in notifier.workers.values())


def test_notify_never_raises() -> None:
    notifier = Notifier(parse_config(CONFIG))
    notifier.notify({"kind": "InferenceService", "metadata": "nonsense"}, Event("Warning", "RolledBack", "m"))


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    notifier = Notifier(parse_config(CONFIG))
    before = counted("failures", "dropped")
    for i in range(5):
        notifier.notify(BODY, Event("Warning", "RolledBack", f"m{i}"))
    worker = next(w for w in notifier.workers.values() if w.sink.name == "failures")
    assert [n.message for n in worker.queue] == ["m3", "m4"]
    assert counted("failures", "dropped") - before == 3


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [(1, 0.0, 0.5), (1, 1.0, 1.0), (2, 1.0, 2.0), (3, 0.5, 3.0), (5, 1.0, 16.0), (6, 1.0, 30.0), (12, 1.0, 30.0)],
)
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt: int, jitter: float, delay: float) -> None:
    assert Backoff(jitter=lambda: jitter).delay(attempt) == delay


def test_retry_after_wins_over_backoff_up_to_a_cap() -> None:
    backoff = Backoff(jitter=lambda: 1.0)
    assert backoff.delay(1, retry_after=7) == 7
    assert backoff.delay(1, retry_after=3600) == RETRY_AFTER_CAP


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (" 12 ", 12.0), ("Fri, 01 May 2026 12:00:30 GMT", 30.0), ("soon", None), (None, None), ("", None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


async def test_deliver_retries_5xx_then_gives_up_and_does_not_retry_4xx() -> None:
    answers: list[Answer] = []
    calls: list[bytes] = []

    async def post(_sink: object, body: bytes) -> Answer:
        calls.append(body)
        return answers.pop(0)

    (sink,) = parse_config("- {name: unit-retry, type: webhook, url: 'http://h/', maxAttempts: 3}").sinks
    worker = SinkWorker(sink, backoff=Backoff(initial=0.001, cap=0.001), post=post)
    n = Notification(reason="Promoted", type="Normal", message="m", namespace="ml", name="r", time=NOW)
    answers[:] = [Answer(503), Answer(500), Answer(502)]
    assert not await worker.deliver(n)
    assert len(calls) == 3
    assert counted("unit-retry", "retried") == 2 and counted("unit-retry", "failed") == 1

    calls.clear()
    answers[:] = [Answer(404, detail="no_service")]
    assert not await worker.deliver(n)
    assert len(calls) == 1 and counted("unit-retry", "failed") == 2

    answers[:] = [Answer(0, detail="ConnectionRefused"), Answer(204)]
    assert await worker.deliver(n)
    assert counted("unit-retry", "sent") == 1


async def test_reload_replaces_sinks_and_keeps_them_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "notifications.yaml"
    path.write_text("- {name: one, type: webhook, url: 'http://h/1'}\n")
    notifier = Notifier.from_file(path, poll_seconds=3600)
    await notifier.start()
    try:
        assert [w.sink.name for w in notifier.workers.values()] == ["one"]
        assert not await notifier.reload()  # unchanged

        path.write_text(
            "- {name: one, type: webhook, url: 'http://h/1'}\n- {name: two, type: slack, url: 'http://h/2'}"
        )
        kept = next(iter(notifier.workers.values()))
        assert await notifier.reload()
        assert [w.sink.name for w in notifier.workers.values()] == ["one", "two"]
        assert next(iter(notifier.workers.values())) is kept  # an unchanged sink keeps its queue

        path.write_text("- {name: one, type: pager, url: 'http://h/1'}\n")
        assert not await notifier.reload()
        assert [w.sink.name for w in notifier.workers.values()] == ["one", "two"]
        path.unlink()
        assert not await notifier.reload()
        assert len(notifier.workers) == 2
    finally:
        await notifier.aclose()
