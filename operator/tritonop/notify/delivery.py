"""Delivery to one sink: a background task draining a bounded queue, with retries.

Nothing here can block or fail the caller: `SinkWorker.enqueue` appends to a bounded deque
(the oldest notification is dropped, and counted, when it is full) and wakes the task. The
task POSTs one notification at a time: a timeout per attempt, at most `max_attempts`
attempts, exponential backoff with jitter between them (1 s, 2 s, 4 s ... capped at 30 s,
each scaled by a random factor in [0.5, 1]), and a 429's or 503's Retry-After honoured (up
to RETRY_AFTER_CAP). 2xx is delivered; 429, 5xx, timeouts and connection errors are
retried; any other status is final. Every outcome is counted in
tritonop_notifications_total{sink,result}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from tritonop import __version__, metrics
from tritonop.notify.config import SinkConfig
from tritonop.notify.payloads import Notification, build_payload

log = logging.getLogger("tritonop.notify")

RETRY_AFTER_CAP = 60.0  # seconds: a longer Retry-After is cut to this
RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1 after attempt n failed: min(cap, initial * 2**(n-1)), jittered."""

    initial: float = 1.0
    cap: float = 30.0
    jitter: Callable[[], float] = random.random  # [0, 1): the delay is scaled by 0.5 + jitter/2

    def delay(self, failed_attempts: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), RETRY_AFTER_CAP)
        base: float = min(self.cap, self.initial * 2.0 ** (failed_attempts - 1))
        return base * (0.5 + 0.5 * float(self.jitter()))


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None = None
    detail: str = ""


Post = Callable[[SinkConfig, bytes], Awaitable[Answer]]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date; None when unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SinkWorker:
    """One sink's queue and the task that delivers it."""

    def __init__(self, sink: SinkConfig, *, backoff: Backoff | None = None, post: Post | None = None) -> None:
        self.sink = sink
        self.backoff = backoff or Backoff()
        self.queue: deque[Notification] = deque()
        self.in_flight: Notification | None = None
        self._post = post or self._http_post
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def enqueue(self, notification: Notification) -> None:
        """Never blocks: when the queue is full the oldest waiting notification is dropped."""
        if len(self.queue) >= self.sink.queue_size:
            dropped = self.queue.popleft()
            metrics.NOTIFICATIONS.labels(self.sink.name, "dropped").inc()
            log.warning("notification sink %s: queue full, dropped %s", self.sink.name, dropped.title)
        self.queue.append(notification)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"notify-{self.sink.name}")

    async def aclose(self) -> None:
        """Stop now: what is queued or in flight is lost (docs/notifications.md)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.queue:
            log.info("notification sink %s: %d undelivered notification(s) discarded", self.sink.name, len(self.queue))

    async def _run(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            self.in_flight = self.queue.popleft()
            try:
                await self.deliver(self.in_flight)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop later notifications
                metrics.NOTIFICATIONS.labels(self.sink.name, "failed").inc()
                log.exception("notification sink %s: delivery crashed", self.sink.name)
            finally:
                self.in_flight = None

    async def deliver(self, notification: Notification) -> bool:
        """POST with retries; True when the sink accepted it."""
        body = json.dumps(build_payload(self.sink.type, notification), separators=(",", ":")).encode()
        sink = self.sink.name
        for attempt in range(1, self.sink.max_attempts + 1):
            try:
                answer = await self._post(self.sink, body)
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                answer = Answer(0, detail=self._describe(err))
            if 200 <= answer.status < 300:
                metrics.NOTIFICATIONS.labels(sink, "sent").inc()
                log.debug("notification sink %s: delivered %s", sink, notification.title)
                return True
            retryable = answer.status == 0 or answer.status in RETRIED_STATUSES
            what = f"HTTP {answer.status}" if answer.status else "no answer"
            if not retryable or attempt == self.sink.max_attempts:
                metrics.NOTIFICATIONS.labels(sink, "failed").inc()
                log.warning(
                    "notification sink %s: %s not delivered after %d attempt(s): %s %s",
                    sink,
                    notification.title,
                    attempt,
                    what,
                    answer.detail,
                )
                return False
            retry_after = answer.retry_after if answer.status in (429, 503) else None
            delay = self.backoff.delay(attempt, retry_after)
            metrics.NOTIFICATIONS.labels(sink, "retried").inc()
            log.info("notification sink %s: %s %s; retry in %.1fs", sink, what, answer.detail, delay)
            await asyncio.sleep(delay)
        return False

    async def _http_post(self, sink: SinkConfig, body: bytes) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"tritonop/{__version__}", "Content-Type": "application/json"}
            )
        timeout = aiohttp.ClientTimeout(total=sink.timeout_seconds)
        async with self._session.post(sink.url, data=body, timeout=timeout, allow_redirects=False) as resp:
            detail = "" if resp.status < 300 else " ".join((await resp.text(errors="replace"))[:200].split())
            return Answer(resp.status, parse_retry_after(resp.headers.get("Retry-After")), detail)

    def _describe(self, err: BaseException) -> str:
        """The error without the URL (its path and query are the secret)."""
        text = str(err) or type(err).__name__
        parts = urlsplit(self.sink.url)
        for secret in (self.sink.url, parts.path, parts.query):
            if secret and secret != "/":
                text = text.replace(secret, "<redacted>")
        return f"{type(err).__name__}: {text}"
