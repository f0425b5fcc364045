"""Invariants of the operator image, read from the Dockerfile (no Docker engine here)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from tests.support.helm import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
BASE_IMAGE = "python:3.11-slim-bookworm"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|python3?-dev|libc6?-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args_of(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; comments dropped, line continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, f"unparsed FROM {args}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1].instructions.append((instruction, " ".join(args.split())))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def test_multi_stage_on_a_pinned_base() -> None:
    assert len(STAGES) >= 2
    for stage in STAGES:
        assert stage.base == BASE_IMAGE, f"stage {stage.name} is not on {BASE_IMAGE}"
        assert not stage.base.endswith(":latest") and ":" in stage.base


def test_builder_builds_wheels() -> None:
    builder = STAGES[0]
    assert builder.name
    assert any("pip wheel" in run for run in builder.args_of("RUN"))


def test_final_stage_installs_only_the_builder_wheels_into_a_venv() -> None:
    runs = " ".join(FINAL.args_of("RUN"))
    builder = STAGES[0].name
    assert f"from={builder}" in runs, "final stage must take its wheels from the builder"
    assert "-m venv /opt/tritonop" in runs
    assert re.search(r"pip install --no-index --find-links=/wheels tritonop\b", runs)
    assert "pip uninstall --yes pip setuptools" in runs


def test_final_stage_has_no_build_tools() -> None:
    for run in FINAL.args_of("RUN"):
        assert not BUILD_TOOLS.search(run), run
        assert "apt-get install" not in run
        for installed in re.findall(r"pip install ([^&;]*)", run):
            assert not re.search(r"\b(setuptools|wheel|build|cython)\b", installed, re.IGNORECASE), installed


def test_runs_as_numeric_non_root_user() -> None:
    users = FINAL.args_of("USER")
    assert users, "final stage sets no USER"
    user = users[-1]
    assert re.fullmatch(r"[0-9]+(:[0-9]+)?", user), f"USER {user} is not numeric"
    assert all(int(part) == 65532 for part in user.split(":"))
    # Nothing after USER may switch back to root.
    last_user_index = max(i for i, (name, _) in enumerate(FINAL.instructions) if name == "USER")
    assert not [n for n, _ in FINAL.instructions[last_user_index + 1 :] if n == "RUN"]


def test_entrypoint_and_default_command() -> None:
    assert json.loads(FINAL.args_of("ENTRYPOINT")[-1]) == ["tritonop"]
    assert json.loads(FINAL.args_of("CMD")[-1]) == ["run", "--all-namespaces"]


def test_dockerignore_admits_only_the_build_inputs() -> None:
    lines = [
        line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for stage in STAGES:
        for args in stage.args_of("COPY"):
            if "--from=" not in args:
                copied.update(source.rstrip("/") for source in args.split()[:-1])
    assert copied == admitted == {"pyproject.toml", "README.md", "operator"}


def test_parser_sees_continuations_and_stages() -> None:
    stages = parse_dockerfile("FROM a:1 AS b\n# note\nRUN one \\\n  two\nFROM c:2\nUSER 1\n")
    assert [(s.base, s.name) for s in stages] == [("a:1", "b"), ("c:2", None)]
    assert stages[0].instructions == [("RUN", "one two")]
    assert stages[1].args_of("USER") == ["1"]
