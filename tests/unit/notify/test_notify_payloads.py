"""The pure payload builders: what a webhook, Slack and Teams receive for an Event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tritonop.notify.payloads import (
    SCHEMA,
    Notification,
    build_payload,
    notification_from,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from tritonop.rollout import Event

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def body(**status: str) -> dict[str, object]:
    return {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1"},
        "status": status,
    }


@pytest.mark.parametrize(
    ("reason", "status", "revision"),
    [
        ("CanaryStarted", {"stableRevision": "aaa", "canaryRevision": "bbb"}, "bbb"),
        ("CanaryStep", {"stableRevision": "aaa", "canaryRevision": "bbb"}, "bbb"),
        ("AnalysisNoData", {"stableRevision": "aaa", "canaryRevision": "bbb"}, "bbb"),
        ("Promoted", {"stableRevision": "bbb"}, "bbb"),
        ("RolledBack", {"stableRevision": "aaa", "failedRevision": "bbb"}, "bbb"),
        ("Aborted", {"stableRevision": "aaa", "failedRevision": "bbb"}, "bbb"),
        ("RolloutFailed", {"stableRevision": "aaa", "failedRevision": "bbb"}, "bbb"),
        ("RolledBack", {"stableRevision": "aaa"}, "aaa"),  # no failed revision: the one serving
        ("Promoted", {}, None),
    ],
)
def test_the_revision_an_event_is_about(reason: str, status: dict[str, str], revision: str | None) -> None:
    n = notification_from(body(**status), Event("Normal", reason, "m"), now=NOW)
    assert n.revision == revision


def test_webhook_payload_is_the_documented_flat_json() -> None:
    event = Event("Warning", "RolledBack", "rolled back revision bbb: error rate 0.2 > 0.05")
    n = notification_from(
        body(stableRevision="aaa", failedRevision="bbb", phase="RolledBack"), event, now=NOW, cluster="prod-eu"
    )
    assert webhook_payload(n) == {
        "schema": SCHEMA,
        "reason": "RolledBack",
        "type": "Warning",
        "message": "rolled back revision bbb: error rate 0.2 > 0.05",
        "time": "2026-05-01T12:00:00Z",
        "cluster": "prod-eu",
        "namespace": "ml",
        "name": "resnet",
        "uid": "u-1",
        "revision": "bbb",
        "stableRevision": "aaa",
        "canaryRevision": None,
        "failedRevision": "bbb",
        "phase": "RolledBack",
    }
    json.dumps(webhook_payload(n))  # serialisable as is


def test_slack_payload_has_text_and_blocks_and_escapes_mrkdwn() -> None:
    n = Notification(
        reason="RolloutFailed",
        type="Warning",
        message="model <resnet> & friends failed",
        namespace="ml",
        name="resnet",
        time=NOW,
        revision="bbb",
        stable_revision="aaa",
    )
    payload = slack_payload(n)
    assert payload["text"] == ":x: RolloutFailed: ml/resnet revision bbb: model &lt;resnet&gt; &amp; friends failed"
    header, section, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "RolloutFailed: ml/resnet revision bbb"}}
    assert section["text"]["type"] == "mrkdwn" and "&lt;resnet&gt;" in section["text"]["text"]
    fields = [f["text"] for f in section["fields"]]
    assert fields == ["*Namespace*\n`ml`", "*InferenceService*\n`resnet`", "*Revision*\n`bbb`", "*Stable*\n`aaa`"]
    assert "2026-05-01T12:00:00Z" in context["elements"][0]["text"]


def test_slack_limits_are_respected() -> None:
    n = Notification(reason="Promoted", type="Normal", message="x" * 5000, namespace="n" * 63, name="m" * 120, time=NOW)
    payload = slack_payload(n)
    assert len(payload["text"]) <= 3000
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert len(payload["blocks"][1]["text"]["text"]) <= 3000


def test_teams_payload_is_an_adaptive_card_message() -> None:
    n = Notification(
        reason="Promoted", type="Normal", message="revision bbb promoted after 3 steps", namespace="ml",
        name="resnet", time=NOW, revision="bbb", stable_revision="bbb", phase="Ready", cluster="prod-eu",
    )  # fmt: skip
    payload = teams_payload(n)
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, message, facts = card["body"]
    assert title["text"] == "Promoted: prod-eu: ml/resnet revision bbb" and title["color"] == "Good"
    assert message["text"] == "revision bbb promoted after 3 steps"
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "Namespace": "ml",
        "InferenceService": "resnet",
        "Revision": "bbb",
        "Stable": "bbb",
        "Phase": "Ready",
        "Cluster": "prod-eu",
        "Time": "2026-05-01T12:00:00Z",
    }


@pytest.mark.parametrize("sink_type", ["webhook", "slack", "teams"])
def test_build_payload_dispatches(sink_type: str) -> None:
    n = notification_from(body(), Event("Normal", "CanaryStarted", "m"), now=NOW)
    assert build_payload(sink_type, n) == {"webhook": webhook_payload, "slack": slack_payload, "teams": teams_payload}[
        sink_type
    ](n)
