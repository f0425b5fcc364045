"""manifests/install.yaml and the argocd-cm patch are exactly what scripts/render-install.sh renders now."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

from tests.support.helm import REPO_ROOT, helm_binary

INSTALL_YAML = REPO_ROOT / "manifests" / "install.yaml"
GENERATED = ("install.yaml", "argocd/argocd-cm-patch.yaml")


def test_generated_manifests_match_a_fresh_render(tmp_path: Path) -> None:
    # Render from a copy of the inputs, so the check never rewrites the checkout.
    for folder in ("argocd", "charts", "crds", "scripts"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    fresh = tmp_path / "manifests"
    result = subprocess.run(
        [str(tmp_path / "scripts" / "render-install.sh"), str(fresh)],
        env={**os.environ, "HELM": helm_binary()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in GENERATED:
        committed = (REPO_ROOT / "manifests" / name).read_text()
        assert committed == (fresh / name).read_text(), f"manifests/{name} is stale: run scripts/render-install.sh"


def test_install_yaml_starts_with_a_restricted_namespace_then_crds() -> None:
    objects = [o for o in yaml.safe_load_all(INSTALL_YAML.read_text()) if o]
    namespace = objects[0]
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "tritonop-system"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    kubernetes_validate.validate(namespace, "1.30.0", strict=True)
    kinds = [o["kind"] for o in objects[1:]]
    crd_count = kinds.count("CustomResourceDefinition")
    assert crd_count == 3 and set(kinds[:crd_count]) == {"CustomResourceDefinition"}
    assert {o["metadata"].get("namespace", "tritonop-system") for o in objects[1:]} == {"tritonop-system"}
    assert "Deployment" in kinds
