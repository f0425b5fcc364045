"""Operator-level notifications: rollout Events also sent to webhooks, Slack and Teams.

- `config`: the sinks file (`--notifications-file`), parsed and validated.
- `payloads`: pure builders, one per sink type, from a `Notification`.
- `delivery`: one asyncio worker per sink; bounded queue, retries, timeouts.
- `notifier`: the `Notifier` the event hook calls (never blocks, never raises), and the
  re-read of the file when it changes.

docs/notifications.md describes the format, the payloads and the delivery guarantees.
"""

from __future__ import annotations

from tritonop.notify.config import ALL_REASONS, DEFAULT_REASONS, NotificationsConfig, SinkConfig, load_config
from tritonop.notify.notifier import Notifier
from tritonop.notify.payloads import Notification, build_payload, notification_from

__all__ = [
    "ALL_REASONS",
    "DEFAULT_REASONS",
    "Notification",
    "NotificationsConfig",
    "Notifier",
    "SinkConfig",
    "build_payload",
    "load_config",
    "notification_from",
]
