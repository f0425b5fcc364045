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


A, B, DISTILLED, INT8, FP16 = "aaaa111111", "bbbb222222", "dddd444444", "eeee555555", "ffff666666"


def experiment_isvc(**experiment: Any) -> dict[str, Any]:
    """An A/B/n experiment: B at 20%, distilled at 20%, int8 stopped, fp16 not weighted yet."""
    obj = isvc(
        phase="Progressing",
        stableRevision=A,
        canaryRevision=B,
        traffic=[
            {"revision": A, "percent": 60},
            {"revision": B, "percent": 20},
            {"revision": DISTILLED, "percent": 20},
        ],
        canary={
            "step": 0,
            "weight": 20,
            "startedAt": "2026-05-01T09:55:00Z",
            "variants": [
                {"name": "distilled", "revision": DISTILLED, "weight": 20, "failedChecks": 1},
                {"name": "int8", "revision": INT8, "weight": 0, "failedChecks": 3, "stopped": "3 failed analyses"},
                {"name": "fp16", "revision": FP16, "weight": 0},
            ],
        },
        experiment={
            "startedAt": "2026-05-01T10:00:00Z",
            "endsAt": "2026-05-08T10:00:00Z",
            "resultsAt": "2026-05-01T11:55:00Z",
            "concluded": False,
            "message": "running until 2026-05-08T10:00:00Z",
            "problems": ["Prometheus unreachable"],
            "variants": [
                {"name": "A", "revision": A, "weight": 60, "requests": 6000, "successRate": 0.9995,
                 "meanLatencyMs": 10.0, "metrics": {"click-through": 0.031}},
                {"name": "B", "revision": B, "weight": 20, "requests": 2000, "successRate": 0.995,
                 "meanLatencyMs": 14.5, "metrics": {"click-through": 0.034, "revenue": 1.25}},
                {"name": "distilled", "revision": DISTILLED, "weight": 20, "requests": 2100, "successRate": 1.0,
                 "meanLatencyMs": 6.25, "metrics": {"click-through": 0.0305}},
                {"name": "int8", "revision": INT8, "weight": 0, "requests": 400, "successRate": 0.97},
            ],
            "comparison": [
                {"variant": "B", "metric": "successRate", "difference": -0.45, "low": -0.79, "high": -0.22,
                 "significant": True,
                 "statement": "B's success rate is lower than A's by 0.45 points (98.33% CI -0.79..-0.22 points; "
                 "Newcombe-Wilson interval, 2000 vs 6000 requests, Bonferroni for 3 variants)"},
                {"variant": "distilled", "metric": "meanLatencyMs", "difference": -3.75, "low": -4.1, "high": -3.4,
                 "significant": True, "statement": "distilled's mean latency is lower than A's by 3.75 ms"},
            ],
            **experiment,
        },
    )  # fmt: skip
    obj["spec"]["rollout"] = {"strategy": "Experiment", "experiment": {"weight": 20, "duration": "168h"}}
    return obj


def block(lines: list[str], first: str) -> list[str]:
    """The lines of a table (or paragraph) starting with ``first``, up to the next blank line."""
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_get_view_shows_an_experiments_variants_figures_and_comparisons() -> None:
    deployments = [
        deployment(revision, replicas, ready)
        for revision, replicas, ready in [
            ("0000000000", 0, 0), (INT8, 0, 0), (DISTILLED, 1, 1), (B, 1, 1), (A, 3, 3)
        ]
    ]  # fmt: skip
    lines = render.get_lines(experiment_isvc(), deployments, [], NOW)
    assert all(len(line) <= render.WIDTH for line in lines)
    assert "Strategy:        Experiment (one split, held until a pick)" in lines
    assert not any(line.startswith(("Step:", "Steps:")) for line in lines)  # steps are refused with Experiment
    assert (
        "Variants:        distilled 20% (1 failed check), int8 stopped (3 failed analyses), fp16 0% (0 failed checks)"
        in lines
    )

    revisions = block(lines, "REVISION")
    assert [row.split()[:3] for row in revisions[1:]] == [
        [A, "stable", "60%"],
        [B, "canary", "20%"],
        [DISTILLED, "variant", "distilled"],
        [INT8, "stopped", "int8"],
        [FP16, "variant", "fp16"],  # named in status, no Deployment yet
        ["0000000000", "old", "0%"],
    ]
    assert revisions[3].split() == [DISTILLED, "variant", "distilled", "20%", "1/1", f"resnet-{DISTILLED}"]
    assert revisions[5].split() == [FP16, "variant", "fp16", "0%", "-", "(no", "Deployment)"]

    assert block(lines, "Experiment:") == [
        "Experiment:      running, ends in 6d22h",
        "Window:          2026-05-01T10:00:00Z .. 2026-05-08T10:00:00Z (figures to 2026-05-01T11:55:00Z)",
        "Note:            running until 2026-05-08T10:00:00Z",
        "Problem:         Prometheus unreachable",
    ]
    assert block(lines, "VARIANT") == [
        "VARIANT          REVISION     WEIGHT   REQUESTS   SUCCESS   MEAN LATENCY   click-through   revenue",
        "A                aaaa111111   60%      6000       99.95%    10 ms          0.031           -",
        "B                bbbb222222   20%      2000       99.5%     14.5 ms        0.034           1.25",
        "distilled        dddd444444   20%      2100       100%      6.25 ms        0.0305          -",
        "int8 (stopped)   eeee555555   0%       400        97%       -              -               -",
    ]
    assert block(lines, "- ") == [
        "- B's success rate is lower than A's by 0.45 points (98.33% CI -0.79..-0.22 points; Newcombe-Wilson interval, 2000 vs",
        "  6000 requests, Bonferroni for 3 variants)",
        "- distilled's mean latency is lower than A's by 3.75 ms",
    ]
    assert lines[-1] == "No events."


def test_get_view_of_a_decided_experiment_and_one_without_comparisons() -> None:
    decided = experiment_isvc(ended=True, concluded=True, winner="distilled", comparison=[], problems=[])
    decided["status"].update(
        canaryRevision=None, stableRevision=DISTILLED, failedRevision=B, phase="Ready", canary=None,
        traffic=[{"revision": DISTILLED, "percent": 100}],
    )  # fmt: skip
    lines = render.get_lines(decided, [deployment(DISTILLED, 3, 3), deployment(B, 0, 0)], [], NOW)
    assert "Experiment:      ended, winner distilled" in lines and "Winner:          distilled" in lines
    assert [row.split()[:2] for row in block(lines, "REVISION")[1:]] == [[DISTILLED, "stable"], [B, "failed"]]
    # The last experiment stays on show; without a canary, only status.experiment says int8 was stopped.
    assert [row.split()[0] for row in block(lines, "VARIANT")[1:]] == ["A", "B", "distilled", "int8"]
    decided["status"]["experiment"]["variants"][3]["stopped"] = "stopped after 3 failed checks: successRate"
    lines = render.get_lines(decided, [deployment(DISTILLED, 3, 3), deployment(B, 0, 0)], [], NOW)
    assert [" ".join(row.split()[:2]) for row in block(lines, "VARIANT")[1:]][3] == "int8 (stopped)"
    assert "No comparison (too little data)." in lines

    held = experiment_isvc(concluded=True, endsAt="2026-05-01T09:00:00Z")
    assert block(render.get_lines(held, [], [], NOW), "Experiment:")[0] == (
        "Experiment:      concluded 3h ago: held until a pick (promote picks B or a variant, abort picks A)"
    )


def test_custom_metrics_beyond_120_columns_move_to_tables_of_their_own() -> None:
    many = {f"metric-with-a-long-name-{i}": 0.5 + i for i in range(6)}
    obj = experiment_isvc()
    for v in obj["status"]["experiment"]["variants"]:
        v["metrics"] = many
    lines = render.get_lines(obj, [], [], NOW)
    assert all(len(line) <= render.WIDTH for line in lines)
    headers = [line for line in lines if line.startswith("VARIANT")]
    assert headers[0].split() == ["VARIANT", "REVISION", "WEIGHT", "REQUESTS", "SUCCESS", "MEAN", "LATENCY"]
    shown = [name for header in headers[1:] for name in header.split()[1:]]
    assert shown == list(many)  # every metric once, in order, across the extra tables
    assert len(headers) >= 3
    extra = block(lines, headers[1])
    count = len(extra[0].split()) - 1
    assert extra[4].split() == ["int8", "(stopped)", *(format(0.5 + i, "g") for i in range(count))]
