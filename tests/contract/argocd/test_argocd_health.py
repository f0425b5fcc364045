"""Argo CD health checks under argocd/resource_customizations, run in a real Lua 5.1 VM.

Cases and expectations come from each check's health_test.yaml in Argo CD's upstream
layout, so the folders can be submitted to argo-cd's resource_customizations as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO_ROOT = Path(__file__).resolve().parents[3]
CUSTOMIZATIONS = REPO_ROOT / "argocd" / "resource_customizations"
CHECK_DIRS = sorted(path.parent for path in CUSTOMIZATIONS.glob("*/*/health.lua"))
ISVC_DIR = CUSTOMIZATIONS / "serving.tritonop.dev" / "InferenceService"
ARGO_HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Argo CD's VM offers base, table, string, math and a reduced os; nothing that reaches the host.
UNSAFE_GLOBALS = ("io", "os", "debug", "require", "dofile", "loadfile", "load", "loadstring", "module", "package")


def cases_of(check_dir: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load((check_dir / "health_test.yaml").read_text())["tests"])


def run_health(check_dir: Path, obj: dict[str, Any]) -> dict[str, Any]:
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua_globals = runtime.globals()
    for name in UNSAFE_GLOBALS:
        lua_globals[name] = None
    lua_globals.obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((check_dir / "health.lua").read_text())
    return dict(result.items())


ALL_CASES = [(check_dir, case) for check_dir in CHECK_DIRS for case in cases_of(check_dir)]


def test_checks_exist() -> None:
    assert [d.relative_to(CUSTOMIZATIONS).as_posix() for d in CHECK_DIRS] == [
        "argoproj.io/Application",
        "serving.tritonop.dev/InferenceService",
    ]


@pytest.mark.parametrize(
    ("check_dir", "case"),
    ALL_CASES,
    ids=[f"{d.name}-{Path(c['inputPath']).stem}" for d, c in ALL_CASES],
)
def test_health_of_each_testdata_file(check_dir: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((check_dir / case["inputPath"]).read_text())
    health = run_health(check_dir, obj)
    assert health == {"status": case["healthStatus"]["status"], "message": case["healthStatus"]["message"]}


@pytest.mark.parametrize("check_dir", CHECK_DIRS, ids=lambda d: d.name)
def test_every_testdata_file_has_a_case(check_dir: Path) -> None:
    listed = {Path(c["inputPath"]).name for c in cases_of(check_dir)}
    on_disk = {p.name for p in (check_dir / "testdata").glob("*.yaml")}
    assert listed == on_disk


@pytest.mark.parametrize("check_dir", CHECK_DIRS, ids=lambda d: d.name)
def test_testdata_are_of_the_checked_kind(check_dir: Path) -> None:
    group, kind = check_dir.parent.name, check_dir.name
    for case in cases_of(check_dir):
        obj = yaml.safe_load((check_dir / case["inputPath"]).read_text())
        assert obj["apiVersion"].split("/")[0] == group
        assert obj["kind"] == kind


@pytest.mark.parametrize("check_dir", CHECK_DIRS, ids=lambda d: d.name)
def test_script_avoids_syntax_gopher_lua_lacks(check_dir: Path) -> None:
    code = re.sub(r"--[^\n]*", "", (check_dir / "health.lua").read_text())  # comments may say anything
    assert not re.search(r"\bgoto\b", code)
    assert "//" not in code
    assert not re.search(r"<<|>>|[^~=<>]~[^=]|&|\|", code)


def test_inference_service_cases_cover_every_status_it_returns() -> None:
    expected = {c["healthStatus"]["status"] for c in cases_of(ISVC_DIR)}
    assert expected <= ARGO_HEALTH_STATUSES
    assert expected == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_newer_generation_wins_over_ready_status() -> None:
    obj = yaml.safe_load((ISVC_DIR / "testdata" / "healthy.yaml").read_text())
    assert run_health(ISVC_DIR, obj)["status"] == "Healthy"
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert run_health(ISVC_DIR, obj)["status"] == "Progressing"


def test_rollback_message_names_the_failed_check() -> None:
    obj = yaml.safe_load((ISVC_DIR / "testdata" / "rolled-back.yaml").read_text())
    health = run_health(ISVC_DIR, obj)
    assert health["status"] == "Degraded"
    assert "success-rate" in health["message"]
