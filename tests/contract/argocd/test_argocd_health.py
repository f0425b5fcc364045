"""The Argo CD health check for InferenceService, run in a real Lua 5.1 VM.

Cases and expectations come from health_test.yaml in Argo CD's upstream layout, so the
same files can be submitted to argo-cd's resource_customizations as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECK_DIR = REPO_ROOT / "argocd" / "resource_customizations" / "serving.tritonop.dev" / "InferenceService"
SCRIPT = (CHECK_DIR / "health.lua").read_text()
CASES: list[dict[str, Any]] = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"]
ARGO_HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Argo CD's VM offers base, table, string, math and a reduced os; nothing that reaches the host.
UNSAFE_GLOBALS = ("io", "os", "debug", "require", "dofile", "loadfile", "load", "loadstring", "module", "package")


def run_health(obj: dict[str, Any]) -> dict[str, Any]:
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua_globals = runtime.globals()
    for name in UNSAFE_GLOBALS:
        lua_globals[name] = None
    lua_globals.obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT)
    return dict(result.items())


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_of_each_testdata_file(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    health = run_health(obj)
    assert health == {"status": case["healthStatus"]["status"], "message": case["healthStatus"]["message"]}


def test_every_testdata_file_has_a_case() -> None:
    listed = {Path(c["inputPath"]).name for c in CASES}
    on_disk = {p.name for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert listed == on_disk


def test_cases_cover_every_health_status_the_script_returns() -> None:
    expected = {c["healthStatus"]["status"] for c in CASES}
    assert expected <= ARGO_HEALTH_STATUSES
    assert expected == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_testdata_are_inference_services() -> None:
    for case in CASES:
        obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
        assert obj["apiVersion"] == "serving.tritonop.dev/v1alpha1"
        assert obj["kind"] == "InferenceService"


def test_script_avoids_syntax_gopher_lua_lacks() -> None:
    code = re.sub(r"--[^\n]*", "", SCRIPT)  # comments may mention what they like
    assert not re.search(r"\bgoto\b", code)
    assert "//" not in code
    assert not re.search(r"<<|>>|[^~=<>]~[^=]|&|\|", code)


def test_newer_generation_wins_over_ready_status() -> None:
    obj = yaml.safe_load((CHECK_DIR / "testdata" / "healthy.yaml").read_text())
    assert run_health(obj)["status"] == "Healthy"
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert run_health(obj)["status"] == "Progressing"
