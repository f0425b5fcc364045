"""`kubectl tritonop` output as pure functions of API objects and the time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tritonop.plugin import render

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def isvc(name: str = "resnet", ns: str = "ml", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-05-01T10:58:00Z"},
        "spec": {"rollout": {"steps": [10, 25, 50]}},
        "status": status,
    }


CANARY = isvc(
    phase="Progressing",
    stableRevision="aaaa111111",
    canaryRevision="bbbb222222",
    traffic=[{"revision": "aaaa111111", "percent": 75}, {"revision": "bbbb222222", "percent": 25}],
    canary={
        "step": 1,
        "weight": 25,
        "failedChecks": 1,
        "nextAnalysisAt": "2026-05-01T12:00:42Z",
        "startedAt": "2026-05-01T11:50:00Z",
        "lastAnalysis": [
            {"name": "success-rate", "result": "Pass", "value": 0.9987, "bound": ">= 0.99"},
            {"name": "latency", "result": "Fail", "value": 312.5, "bound": "<= 250ms", "message": "too slow"},
        ],
    },
)


def deployment(revision: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"resnet-{revision}",
            "labels": {"serving.tritonop.dev/inferenceservice": "resnet", "serving.tritonop.dev/revision": revision},
        },
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready} if ready else {},
    }


def event(reason: str, message: str, at: str, type_: str = "Normal") -> dict[str, Any]:
    return {"reason": reason, "message": message, "lastTimestamp": at, "type": type_, "metadata": {"uid": reason}}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "0s"), (45, "45s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600 + 300, "3h5m"),
     (30 * 3600, "30h"), (3 * 86400 + 4 * 3600, "3d4h"), (100 * 86400, "100d"), (800 * 86400, "2y")],
)  # fmt: skip
def test_human_duration_like_kubectl(seconds: float, text: str) -> None:
    assert render.human_duration(seconds) == text


def test_list_table_one_namespace_and_all() -> None:
    ready = isvc("bert", phase="Ready", stableRevision="cccc333333")
    lines = render.list_lines([CANARY, ready], NOW, all_namespaces=False)
    assert lines == [
        "NAME     PHASE         STABLE       CANARY       WEIGHT   LAST VERDICT   AGE",
        "bert     Ready         cccc333333   -            -        -              62m",
        "resnet   Progressing   aaaa111111   bbbb222222   25%      Fail           62m",
    ]
    other = isvc("gpt", "nlp")
    wide = render.list_lines([CANARY, other], NOW, all_namespaces=True)
    assert wide[0].split() == ["NAMESPACE", "NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "LAST", "VERDICT", "AGE"]
    assert wide[1].split() == ["ml", "resnet", "Progressing", "aaaa111111", "bbbb222222", "25%", "Fail", "62m"]
    assert wide[2].split() == ["nlp", "gpt", "-", "-", "-", "-", "-", "62m"]


@pytest.mark.parametrize(
    ("results", "verdict"),
    [(["Pass", "Pass"], "Pass"), (["Pass", "NoData"], "NoData"), (["Error", "Fail"], "Fail"), ([], "-")],
)
def test_last_verdict_is_the_worst_check(results: list[str], verdict: str) -> None:
    status = {"canary": {"lastAnalysis": [{"name": str(i), "result": r} for i, r in enumerate(results)]}}
    assert render.last_verdict(status) == verdict


def test_get_view_shows_revisions_step_checks_and_events() -> None:
    deployments = [deployment("aaaa111111", 3, 3), deployment("bbbb222222", 1, 0)]
    events = [
        event("CanaryStep", "weight 25% for bbbb222222 (step 2/3)", "2026-05-01T11:55:00Z"),
        event("CanaryStarted", "revision bbbb222222 started as canary of aaaa111111", "2026-05-01T11:50:00Z"),
    ]
    text = "\n".join(render.get_lines(CANARY, deployments, events, NOW))
    assert "Step:            2/3" in text
    assert "Steps:           10% -> [25%] -> 50% -> 100%" in text
    assert "Next analysis:   in 42s (2026-05-01T12:00:42Z)" in text
    assert "Failed checks:   1" in text
    lines = text.splitlines()
    revisions = lines.index(next(line for line in lines if line.startswith("REVISION")))
    assert lines[revisions + 1].split() == ["aaaa111111", "stable", "75%", "3/3", "resnet-aaaa111111"]
    assert lines[revisions + 2].split() == ["bbbb222222", "canary", "25%", "0/1", "resnet-bbbb222222"]
    check = next(line for line in lines if line.startswith("latency"))
    assert check.split() == ["latency", "Fail", "312.5", "<=", "250ms", "too", "slow"]
    first_event = next(i for i, line in enumerate(lines) if line.startswith("AGE"))
    assert "CanaryStarted" in lines[first_event + 1] and lines[first_event + 1].startswith("10m")  # oldest first
    assert "CanaryStep" in lines[first_event + 2]


def test_get_view_without_canary_and_paused() -> None:
    obj = isvc(phase="Ready", stableRevision="aaaa111111", traffic=[{"revision": "aaaa111111", "percent": 100}])
    obj["spec"]["rollout"]["paused"] = True
    lines = render.get_lines(obj, [], [], NOW)
    assert "Phase:           Ready  (paused)" in lines
    assert "Canary:          -" in lines and "Steps:           10% -> 25% -> 50% -> 100%" in lines
    assert not any(line.startswith("CHECK") for line in lines)
    assert lines[-1] == "No events."
    assert any(line.split()[:4] == ["aaaa111111", "stable", "100%", "-"] for line in lines)  # no Deployment yet


def test_history_lists_rollout_events_oldest_first_with_status() -> None:
    obj = isvc(
        phase="RolledBack",
        stableRevision="aaaa111111",
        failedRevision="bbbb222222",
        message="rolled back revision bbbb222222: aborted by annotation",
    )
    events = [
        event("Aborted", "rolled back revision bbbb222222", "2026-05-01T11:59:00Z", "Warning"),
        event("AnnotationIgnored", "noise", "2026-05-01T11:58:00Z"),
        event("Promoted", "revision aaaa111111 promoted", "2026-05-01T11:00:00Z"),
    ]
    lines = render.history_lines(obj, events, NOW)
    assert lines[:4] == [
        "Stable:   aaaa111111",
        "Canary:   -",
        "Failed:   bbbb222222",
        "Message:  rolled back revision bbbb222222: aborted by annotation",
    ]
    rows = lines[lines.index(next(line for line in lines if line.startswith("TIME"))) + 1 :]
    assert [r.split()[2] for r in rows] == ["Promoted", "Aborted"]
    assert rows[0].split()[:2] == ["2026-05-01T11:00:00Z", "60m"]
    assert render.history_lines(obj, [], NOW)[-1].startswith("No rollout events recorded")
