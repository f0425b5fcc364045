"""The examples under manifests/examples, parametrised into every test here that takes `example`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tritonop import KIND
from tritonop.config import OperatorConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES_DIR = REPO_ROOT / "manifests" / "examples"


# The operator settings examples are rendered with: the defaults, plus the node directory
# manifests/examples/local-file.yaml mounts (file:// is refused unless allowed).
EXAMPLES_CONFIG = OperatorConfig(allowed_file_paths=("/var/lib/tritonop",))


@dataclass(frozen=True)
class Example:
    name: str  # the file's stem; also the golden file's stem
    path: Path
    isvc: dict[str, Any]  # the file's one InferenceService document


def load_examples() -> list[Example]:
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        isvcs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == KIND]
        assert len(isvcs) == 1, f"{path} must hold exactly one {KIND}, holds {len(isvcs)}"
        examples.append(Example(name=path.stem, path=path, isvc=isvcs[0]))
    return examples


EXAMPLES = load_examples()


@pytest.fixture(scope="session")
def examples() -> list[Example]:
    return EXAMPLES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "example" in metafunc.fixturenames:
        metafunc.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
