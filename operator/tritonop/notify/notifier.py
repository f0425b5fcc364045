"""The Notifier the event hook calls, and the re-read of the notifications file.

`notify` is synchronous and cheap: it filters by reason, builds the notification once and
appends it to each interested sink's queue. It never raises and never waits on the network.
The file is re-read every `poll_seconds` (a mounted Secret is updated in place by the
kubelet); a changed, valid file replaces the sinks, an invalid one is logged and the sinks
in use are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tritonop import KIND
from tritonop.notify.config import ConfigError, NotificationsConfig, SinkConfig, dumps, parse_config
from tritonop.notify.delivery import Backoff, Post, SinkWorker
from tritonop.notify.payloads import notification_from
from tritonop.rollout import Event

log = logging.getLogger("tritonop.notify")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(
        self,
        config: NotificationsConfig,
        *,
        path: str | Path | None = None,
        poll_seconds: float = 5.0,
        backoff: Backoff | None = None,
        post: Post | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.poll_seconds = poll_seconds
        self.backoff = backoff
        self.clock = clock
        self._post = post
        self.config = NotificationsConfig()
        self.workers: dict[SinkConfig, SinkWorker] = {}
        self._started = False
        self._watch_task: asyncio.Task[None] | None = None
        self._last_text: str | None = None
        self._last_error: str | None = None
        self.apply(config)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Notifier:
        """Read and validate the file now: ConfigError (one line) when it is unusable."""
        text = _read(Path(path))
        notifier = cls(parse_config(text), path=path, **kwargs)
        notifier._last_text = text
        return notifier

    # ------------------------------------------------------------------ the hook

    def notify(self, body: Mapping[str, Any], event: Event) -> None:
        """Queue the Event for every sink that wants its reason. Never blocks, never raises."""
        try:
            if body.get("kind", KIND) != KIND:
                return  # only InferenceServices
            wanted = [w for w in self.workers.values() if w.sink.wants(event.reason)]
            if not wanted:
                return
            notification = notification_from(body, event, now=self.clock(), cluster=self.config.cluster)
            for worker in wanted:
                worker.enqueue(notification)
        except Exception:  # a notification must never fail a reconcile
            log.exception("notification of %s not queued", event.reason)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._started = True
        for worker in self.workers.values():
            worker.start()
        if self.path is not None and self._watch_task is None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="notify-watch")
        log.info("notifications: %d sink(s) %s", len(self.workers), dumps(self.config))

    async def aclose(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            await worker.aclose()

    def apply(self, config: NotificationsConfig) -> list[SinkWorker]:
        """Use ``config``: unchanged sinks keep their worker and queue; returns the workers retired
        (the caller closes them)."""
        keep = {sink: self.workers[sink] for sink in config.sinks if sink in self.workers}
        retired = [w for sink, w in self.workers.items() if sink not in keep]
        for sink in config.sinks:
            if sink not in keep:
                keep[sink] = SinkWorker(sink, backoff=self.backoff, post=self._post)
                if self._started:
                    keep[sink].start()
        self.workers = keep
        self.config = config
        return retired

    async def reload(self) -> bool:
        """Re-read the file; True when the sinks changed. An unusable file keeps the sinks in use."""
        if self.path is None:
            return False
        try:
            text = _read(self.path)
            if text == self._last_text:
                return False
            config = parse_config(text)
        except ConfigError as err:
            if str(err) != self._last_error:  # once per distinct problem, not every poll
                log.error("notifications file %s: %s; keeping the sinks in use", self.path, err)
            self._last_error = str(err)
            return False
        self._last_error = None
        self._last_text = text
        for worker in self.apply(config):
            await worker.aclose()
        log.info("notifications file %s changed: %d sink(s) %s", self.path, len(self.workers), dumps(config))
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.reload()
            except Exception:
                log.exception("notifications file %s: re-read failed", self.path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}") from err
