"""The real helm binary for contract tests: find it, run it, parse what it renders."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "tritonop"
INSTALL_HINT = "run scripts/install-helm.sh, or set HELM to a helm binary"


def helm_binary() -> str:
    """Path of helm: $HELM, then .tools/bin/helm, then helm on PATH.

    Missing helm skips the calling test, unless TRITONOP_REQUIRE_TOOLS=1 (CI), where it fails.
    """
    candidates = [os.environ.get("HELM"), str(REPO_ROOT / ".tools" / "bin" / "helm"), shutil.which("helm")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    message = f"helm not found ({INSTALL_HINT})"
    if os.environ.get("TRITONOP_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _helm_env(home: str) -> dict[str, str]:
    # Keep helm's config, cache and plugin folders out of the user's home.
    env = dict(os.environ)
    env.update(HELM_CONFIG_HOME=f"{home}/config", HELM_CACHE_HOME=f"{home}/cache", HELM_DATA_HOME=f"{home}/data")
    return env


def run_helm(args: Iterable[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run helm with args; the caller checks returncode (a rejection can be the expected outcome)."""
    with tempfile.TemporaryDirectory(prefix="tritonop-helm-") as home:
        return subprocess.run(
            [helm_binary(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_helm_env(home),
            check=False,
        )


def template_args(
    *,
    release: str = "tritonop",
    namespace: str = "tritonop-system",
    values_files: Iterable[Path] = (),
    include_crds: bool = False,
    chart: Path = CHART_DIR,
) -> list[str]:
    args = ["template", release, str(chart), "--namespace", namespace]
    for values_file in values_files:
        args += ["--values", str(values_file)]
    if include_crds:
        args.append("--include-crds")
    return args


def helm_template(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "tritonop",
    namespace: str = "tritonop-system",
    include_crds: bool = False,
    chart: Path = CHART_DIR,
) -> list[dict[str, Any]]:
    """Objects `helm template` renders with these values; fails the test when helm fails."""
    with tempfile.TemporaryDirectory(prefix="tritonop-values-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values or {})))
        result = run_helm(
            template_args(
                release=release,
                namespace=namespace,
                values_files=[values_file],
                include_crds=include_crds,
                chart=chart,
            )
        )
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def objects_of_kind(
    objects: Iterable[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None
) -> list[dict[str, Any]]:
    """Rendered objects of a kind, optionally with this name and namespace."""
    return [
        o
        for o in objects
        if o["kind"] == kind
        and name in (None, o["metadata"]["name"])
        and namespace in (None, o["metadata"].get("namespace"))
    ]


def the_object(
    objects: Iterable[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """The one rendered object of a kind (and name, namespace); fails the test unless exactly one."""
    matches = objects_of_kind(objects, kind, name, namespace)
    if len(matches) != 1:
        pytest.fail(f"expected one {kind} {name or ''} {namespace or ''}, found {len(matches)}")
    return matches[0]
