"""The Argo CD Applications in manifests/argocd and the argocd-cm patch for health checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ARGOCD_MANIFESTS = REPO_ROOT / "manifests" / "argocd"
CM_PATCH = ARGOCD_MANIFESTS / "argocd-cm-patch.yaml"
WAVE = "argocd.argoproj.io/sync-wave"


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def apps() -> dict[str, dict[str, Any]]:
    return {p.stem: load(p) for p in sorted((ARGOCD_MANIFESTS / "apps").glob("*.yaml"))}


def check_application(app: dict[str, Any]) -> None:
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    assert app["kind"] == "Application"
    assert app["metadata"]["namespace"] == "argocd"
    # Deleting the Application deletes what it deployed, not just the Application object.
    assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]
    spec = app["spec"]
    assert spec["project"]
    assert (REPO_ROOT / spec["source"]["path"]).is_dir(), spec["source"]["path"]
    assert spec["destination"]["server"] == "https://kubernetes.default.svc"
    assert spec["destination"]["namespace"]


def test_root_app_syncs_the_apps_folder() -> None:
    root = load(ARGOCD_MANIFESTS / "root-app.yaml")
    check_application(root)
    assert root["spec"]["source"]["path"] == "manifests/argocd/apps"


def test_operator_app_installs_the_chart_server_side() -> None:
    app = apps()["tritonop-operator"]
    check_application(app)
    source = app["spec"]["source"]
    assert source["path"] == "charts/tritonop"
    assert (REPO_ROOT / source["path"] / "Chart.yaml").is_file()
    assert source["helm"]["releaseName"] == "tritonop"
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert "CreateNamespace=true" in options
    assert app["spec"]["destination"]["namespace"] == "tritonop-system"


def test_inference_services_app_syncs_after_the_operator() -> None:
    by_name = apps()
    assert set(by_name) == {"tritonop-operator", "tritonop-inferenceservices"}
    operator, services = by_name["tritonop-operator"], by_name["tritonop-inferenceservices"]
    check_application(services)
    assert int(operator["metadata"]["annotations"][WAVE]) < int(services["metadata"]["annotations"][WAVE])
    assert services["spec"]["source"]["path"] == "manifests/examples"
    options = services["spec"]["syncPolicy"]["syncOptions"]
    assert "SkipDryRunOnMissingResource=true" in options
    assert "ServerSideApply=true" in options


def test_operator_values_are_valid_chart_values() -> None:
    schema = json.loads((REPO_ROOT / "charts" / "tritonop" / "values.schema.json").read_text())
    values = apps()["tritonop-operator"]["spec"]["source"]["helm"]["valuesObject"]
    jsonschema.Draft7Validator(schema).validate(values)


def test_cm_patch_carries_each_health_check_verbatim() -> None:
    data = load(CM_PATCH)["data"]
    checks = sorted((REPO_ROOT / "argocd" / "resource_customizations").glob("*/*/health.lua"))
    expected = {
        f"resource.customizations.health.{lua.parent.parent.name}_{lua.parent.name}": lua.read_text() for lua in checks
    }
    assert data == expected
    assert "resource.customizations.health.serving.tritonop.dev_InferenceService" in data
