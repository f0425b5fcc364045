"""tests/support/helm.py: where helm comes from, and what happens without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import helm


@pytest.fixture
def no_helm_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HELM", raising=False)
    monkeypatch.delenv("TRITONOP_REQUIRE_TOOLS", raising=False)
    monkeypatch.setattr(helm, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def test_helm_env_var_wins(no_helm_anywhere: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-helm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HELM", str(fake))
    assert helm.helm_binary() == str(fake)


def test_repo_tools_folder_is_used(no_helm_anywhere: None, tmp_path: Path) -> None:
    tool = tmp_path / ".tools" / "bin" / "helm"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert helm.helm_binary() == str(tool)


def test_missing_helm_skips(no_helm_anywhere: None) -> None:
    with pytest.raises(pytest.skip.Exception, match=r"install-helm\.sh"):
        helm.helm_binary()


def test_missing_helm_fails_when_tools_are_required(no_helm_anywhere: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITONOP_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="helm not found"):
        helm.helm_binary()
