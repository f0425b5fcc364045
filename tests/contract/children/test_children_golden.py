"""Golden files: `render()` of every example, byte for byte.

A builder change that alters any child shows up here as a diff to review. After an
intended change, regenerate with:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/contract/children/test_children_golden.py

and commit the changed files under tests/contract/children/golden/ with the change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.contract.children.conftest import EXAMPLES_CONFIG
from tritonop.render import render

GOLDEN_DIR = Path(__file__).parent / "golden"


def golden_text(example: Any) -> str:
    header = (
        f"# render() of manifests/examples/{example.path.name} with the default OperatorConfig"
        + (" (file:// allowed under /var/lib/tritonop).\n" if example.name == "local-file" else ".\n")
        + "# Generated: UPDATE_GOLDEN=1 pytest tests/contract/children/test_children_golden.py\n"
    )
    return header + yaml.safe_dump_all(render(example.isvc, EXAMPLES_CONFIG), sort_keys=False)


def test_rendered_children_match_golden_file(example: Any) -> None:
    golden = GOLDEN_DIR / f"{example.name}.yaml"
    text = golden_text(example)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {example.name}: run with UPDATE_GOLDEN=1"
    assert golden.read_text() == text, f"{golden.name} differs from render(); review, then UPDATE_GOLDEN=1"


def test_every_golden_file_has_an_example(examples: list[Any]) -> None:
    stale = {p.stem for p in GOLDEN_DIR.glob("*.yaml")} - {e.name for e in examples}
    assert not stale, f"golden files without an example (delete them): {sorted(stale)}"
