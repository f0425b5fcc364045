"""The demo's live table (units, rates, the legend, 503s counted only once a revision serves, only the
InferenceService's Events) and its logs kept when it fails."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

import pytest

from e2e.local import demo
from e2e.local.harness import StackError
from e2e.local.progress import (
    HEADER,
    LEGEND,
    WINDOW_S,
    Served,
    ServingWindows,
    analysis_line,
    is_about_the_inferenceservice,
    progress_line,
    revision_cell,
)
from e2e.local.router import Outcome, RevisionTraffic, WindowStats


def traffic(*outcomes: tuple[float, str]) -> RevisionTraffic:
    t = RevisionTraffic()
    for at, result in outcomes:
        t.record(Outcome(at, result, 10.0 if result != "unavailable" else 0.0))  # type: ignore[arg-type]
    return t


def test_cell_shows_success_rate_latency_in_ms_and_requests_per_second() -> None:
    cell = revision_cell("aaaaaaaaaa", Served(20, 19, 0, 12.4, seconds=5.0))
    assert cell == "aaaaaaaa  95.0%   12ms   4/s"
    # Plain WindowStats (no span known) are taken over the full window.
    assert revision_cell("aaaaaaaaaa", WindowStats(10, 10, 0, 2.0)).endswith(f"{10 / WINDOW_S:.0f}/s")


def test_cell_counts_503s_and_says_when_no_pod_ever_answered() -> None:
    assert revision_cell("bbbbbbbbbb", Served(8, 8, 2, 3.0, seconds=2.0)).endswith("5/s +2x503")
    assert revision_cell("bbbbbbbbbb", Served(0, 0, 0, None, waiting=30)) == "bbbbbbbb (no ready pod yet)"
    assert revision_cell("bbbbbbbbbb", Served(0, 0, 0, None)) == "bbbbbbbb (no traffic)"
    assert revision_cell(None, None) == "-"


def test_503s_before_a_revision_first_answered_are_not_counted() -> None:
    # 0..9 s: no ready pod (503s); from 10 s the revision answers, and at 12 s one request finds none.
    t = traffic(*((s + 0.5, "unavailable") for s in range(10)), (10.0, "ok"), (11.0, "failed"), (12.0, "unavailable"))
    windows = ServingWindows()
    early = windows.window("rev", traffic(*((s + 0.5, "unavailable") for s in range(5))), now=5.0, window_s=5.0)
    assert early.answered == early.unavailable == 0 and early.waiting == 5
    served = windows.window("rev", t, now=13.0, window_s=5.0)
    assert (served.answered, served.successes, served.unavailable) == (2, 1, 1)  # not the 503s at 8.5, 9.5
    assert served.seconds == 3.0  # serving for 3 s of the 5 s window: the rate is per second of serving
    later = windows.window("rev", t, now=20.0, window_s=5.0)
    assert later.seconds == 5.0 and later.answered == later.unavailable == 0


def test_first_answer_is_remembered_once_its_outcome_leaves_the_history() -> None:
    windows = ServingWindows()
    windows.window("rev", traffic((1.0, "ok")), now=2.0, window_s=5.0)
    # Later the early outcomes are gone from the router's history; 503s now are real news.
    late = windows.window("rev", traffic((200.0, "unavailable"), (201.0, "unavailable")), now=202.0, window_s=5.0)
    assert late.unavailable == 2


def test_header_columns_line_up_with_the_rows_and_the_legend_names_every_column() -> None:
    status = {
        "phase": "Progressing",
        "stableRevision": "aaaaaaaaaa",
        "canaryRevision": "bbbbbbbbbb",
        "canary": {"step": 0, "weight": 20, "stepStartedAt": "2026-01-01T00:00:00Z"},
        "message": "canary bbbbbbbbbb at 20% (step 1 of 2)",
    }
    stats = {"aaaaaaaaaa": Served(80, 80, 0, 9.0), "bbbbbbbbbb": Served(20, 14, 0, 11.0)}
    line = progress_line(7, status, stats, steps=2)
    assert line.index("bbbbbbbb") == HEADER.index("canary:")
    assert line.index("aaaaaaaa") == HEADER.index("stable:")
    assert line.index("canary bbbbbbbbbb") == HEADER.index("detail")
    assert "16/s" in line and "4/s" in line and "ms" in line
    for column in ("time", "phase", "step", "weight", "stable, canary", "ok", "mean", "rate", "503", "detail"):
        assert column in LEGEND, column
    assert "ms" in LEGEND and "req/s" in LEGEND and f"{WINDOW_S:g}s" in LEGEND


def test_only_events_about_the_inferenceservice_are_printed() -> None:
    assert is_about_the_inferenceservice({"involvedObject": {"kind": "InferenceService", "name": "classifier"}})
    assert not is_about_the_inferenceservice({"involvedObject": {"kind": "Service", "name": "classifier"}})


def test_a_failed_demo_keeps_its_temporary_workdir_and_says_where(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workdirs: list[Path] = []

    async def failing(out: TextIO, workdir: Path) -> list[demo.Check]:
        workdirs.append(workdir)
        (workdir / "operator-1.log").write_text("what happened")
        raise StackError("v1 never became Ready")

    async def passing(out: TextIO, workdir: Path) -> list[demo.Check]:
        workdirs.append(workdir)
        return [demo.Check("fine", True)]

    monkeypatch.setattr(demo, "missing_prerequisites", lambda: [])
    monkeypatch.setattr(demo, "run_demo", failing)
    assert demo.main([]) == 1
    kept = workdirs[-1]
    assert (kept / "operator-1.log").read_text() == "what happened"
    assert f"demo FAILED: v1 never became Ready; logs kept in {kept}" in capsys.readouterr().err
    shutil.rmtree(kept)
    monkeypatch.setattr(demo, "run_demo", passing)
    assert demo.main([]) == 0
    assert not workdirs[-1].exists(), "a passing demo leaves its temporary workdir behind"


def test_analysis_values_carry_their_bound_unit() -> None:
    line = analysis_line(
        [
            {"name": "successRate", "result": "Pass", "value": 1.0, "bound": ">= 0.95"},
            {"name": "latency", "result": "Pass", "value": 0.45, "bound": "<= 100ms"},
            {"name": "latencyIncrease", "result": "NoData", "bound": "<= 20%"},
        ]
    )
    assert (
        line
        == "analysis: successRate Pass 1 (>= 0.95), latency Pass 0.45ms (<= 100ms), latencyIncrease NoData (<= 20%)"
    )
