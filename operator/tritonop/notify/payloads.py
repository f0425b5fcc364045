"""What a notification says, and the JSON body each sink type gets: pure functions, no I/O.

docs/notifications.md shows one example of each body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tritonop.rollout import Event
from tritonop.timestamps import format_time

SCHEMA = "tritonop.dev/notification/v1"
# Which status revision an Event is about (status as written with the decision that posted it).
_SUBJECT = {
    "CanaryStarted": "canaryRevision",
    "CanaryStep": "canaryRevision",
    "AnalysisNoData": "canaryRevision",
    "Promoted": "stableRevision",
    "RolledBack": "failedRevision",
    "Aborted": "failedRevision",
    "RolloutFailed": "failedRevision",
    "ShadowStarted": "canaryRevision",
    "ExperimentStarted": "canaryRevision",
    "ExperimentConcluded": "canaryRevision",
    "ExperimentDecided": "failedRevision",  # A was picked: B is kept at 0 replicas
}
_SLACK_EMOJI = {
    "CanaryStarted": ":hatching_chick:",
    "CanaryStep": ":arrow_forward:",
    "Promoted": ":white_check_mark:",
    "RolledBack": ":leftwards_arrow_with_hook:",
    "Aborted": ":leftwards_arrow_with_hook:",
    "RolloutFailed": ":x:",
    "AnalysisNoData": ":warning:",
    "ShadowStarted": ":busts_in_silhouette:",
    "ExperimentStarted": ":test_tube:",
    "ExperimentConcluded": ":bar_chart:",
    "ExperimentDecided": ":ballot_box_with_check:",
    "VariantStopped": ":no_entry:",
}
# Adaptive Card TextBlock colours.
_TEAMS_COLOR = {"Promoted": "Good", "RolloutFailed": "Attention", "RolledBack": "Warning", "Aborted": "Warning"}
SLACK_HEADER_LIMIT = 150  # Slack: a header block's plain_text
SLACK_TEXT_LIMIT = 3000  # Slack: a section's text


@dataclass(frozen=True)
class Notification:
    reason: str
    type: str  # Normal | Warning
    message: str
    namespace: str
    name: str
    time: datetime
    uid: str | None = None
    revision: str | None = None  # the revision the event is about, when status names it
    stable_revision: str | None = None
    canary_revision: str | None = None
    failed_revision: str | None = None
    phase: str | None = None
    cluster: str | None = None

    @property
    def title(self) -> str:
        where = f"{self.namespace}/{self.name}"
        if self.cluster:
            where = f"{self.cluster}: {where}"
        return f"{self.reason}: {where}" + (f" revision {self.revision}" if self.revision else "")

    @property
    def facts(self) -> list[tuple[str, str | None]]:
        """The labelled facts chat cards show (a missing one is left out by the caller)."""
        return [
            ("Namespace", self.namespace),
            ("InferenceService", self.name),
            ("Revision", self.revision),
            ("Stable", self.stable_revision),
            ("Phase", self.phase),
            ("Cluster", self.cluster),
        ]


def notification_from(
    body: Mapping[str, Any], event: Event, *, now: datetime, cluster: str | None = None
) -> Notification:
    """The notification for an Event posted on an InferenceService ``body``."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    revisions = {key: _text(status.get(key)) for key in ("stableRevision", "canaryRevision", "failedRevision")}
    subject = _SUBJECT.get(event.reason)
    revision = revisions.get(subject) if subject else None
    if revision is None:
        revision = revisions["canaryRevision"] or revisions["stableRevision"]
    return Notification(
        reason=event.reason,
        type=event.type,
        message=event.message,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=_text(meta.get("uid")),
        time=now,
        revision=revision,
        stable_revision=revisions["stableRevision"],
        canary_revision=revisions["canaryRevision"],
        failed_revision=revisions["failedRevision"],
        phase=_text(status.get("phase")),
        cluster=cluster,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def webhook_payload(n: Notification) -> dict[str, Any]:
    """The generic webhook body: flat JSON, every field documented; absent values are null."""
    return {
        "schema": SCHEMA,
        "reason": n.reason,
        "type": n.type,
        "message": n.message,
        "time": format_time(n.time),
        "cluster": n.cluster,
        "namespace": n.namespace,
        "name": n.name,
        "uid": n.uid,
        "revision": n.revision,
        "stableRevision": n.stable_revision,
        "canaryRevision": n.canary_revision,
        "failedRevision": n.failed_revision,
        "phase": n.phase,
    }


def slack_payload(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (notifications, clients without blocks) and blocks."""
    emoji = _SLACK_EMOJI.get(n.reason, ":information_source:")
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n`{_slack_escape(v)}`"} for k, v in n.facts if v]
    return {
        "text": _truncate(f"{emoji} {_slack_escape(n.title)}: {_slack_escape(n.message)}", SLACK_TEXT_LIMIT),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _truncate(n.title, SLACK_HEADER_LIMIT)}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _truncate(f"{emoji} {_slack_escape(n.message)}", SLACK_TEXT_LIMIT)},
                "fields": fields[:10],  # Slack allows 10 fields in a section
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{n.type} event at {format_time(n.time)} · tritonop"}],
            },
        ],
    }


def teams_payload(n: Notification) -> dict[str, Any]:
    """A Microsoft Teams message carrying an Adaptive Card, as Teams Workflows webhooks take it.

    Adaptive Card 1.4, not the legacy MessageCard: Office 365 Connectors (the only MessageCard
    receivers) are retired in favour of Workflows, which post Adaptive Cards (docs/notifications.md).
    """
    facts = [*n.facts, ("Time", format_time(n.time))]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": n.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": _TEAMS_COLOR.get(n.reason, "Attention" if n.type == "Warning" else "Default"),
            },
            {"type": "TextBlock", "text": n.message, "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts if v]},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


BUILDERS = {"webhook": webhook_payload, "slack": slack_payload, "teams": teams_payload}


def build_payload(sink_type: str, n: Notification) -> dict[str, Any]:
    return BUILDERS[sink_type](n)


def _slack_escape(text: str | None) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
