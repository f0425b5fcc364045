"""The chart rendered by the real helm binary: lint, Kubernetes schema validity, and the
behaviour each values scenario promises (hardened pod, HA peering, namespace scope, monitoring)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kopf._cogs.structs import references as kopf_references

from tests.support.helm import CHART_DIR, REPO_ROOT, helm_template, objects_of_kind, run_helm, the_object

Render = Callable[[str], list[dict[str, Any]]]
KUBERNETES_VERSION = "1.30.0"
MONITORING_SCHEMAS = json.loads((Path(__file__).parent / "schemas" / "monitoring.coreos.com_v1.json").read_text())
CHART_CRDS = CHART_DIR / "crds"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
SELECTOR_LABELS = {"app.kubernetes.io/name": "tritonop", "app.kubernetes.io/instance": "tritonop"}


def peering_crd_schemas() -> dict[str, dict[str, Any]]:
    crds = yaml.safe_load_all((CHART_CRDS / "kopf.dev_peerings.yaml").read_text())
    return {crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for crd in crds}


def validate_custom(obj: dict[str, Any]) -> None:
    kind = obj["kind"]
    if kind in ("ServiceMonitor", "PodMonitor"):
        schema = {"$ref": f"#/definitions/{kind}", "definitions": MONITORING_SCHEMAS["definitions"]}
        jsonschema.Draft7Validator(schema).validate(obj)
    elif kind in ("KopfPeering", "ClusterKopfPeering"):
        assert obj["apiVersion"] == "kopf.dev/v1"
        jsonschema.Draft7Validator(peering_crd_schemas()[kind]).validate(obj)
    else:
        pytest.fail(f"no schema for rendered kind {kind}")


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = the_object(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


# ------------------------------------------------------------------ lint and validity


def test_helm_lint_strict(scenario_values: dict[str, Any], tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(scenario_values))
    result = run_helm(["lint", "--strict", str(CHART_DIR), "--values", str(values_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_every_rendered_object_validates(scenario: str, render: Render) -> None:
    objects = render(scenario)
    assert objects
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith(("monitoring.coreos.com/", "kopf.dev/")):
            validate_custom(obj)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} is invalid for Kubernetes {KUBERNETES_VERSION}: {error.message} at {list(error.path)}")


def test_namespaced_objects_live_in_release_or_watched_namespaces(
    scenario: str, render: Render, watched_namespaces: list[str]
) -> None:
    cluster_scoped = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
    for obj in render(scenario):
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, obj["metadata"]["name"]
        elif obj["kind"] in ("Role", "RoleBinding", "KopfPeering"):
            assert namespace in watched_namespaces
        else:
            assert namespace == "tritonop-system", f"{obj['kind']}/{obj['metadata']['name']}"


def test_objects_carry_standard_labels(scenario: str, render: Render) -> None:
    for obj in render(scenario):
        if obj["kind"] == "CustomResourceDefinition":
            continue  # crds/ files are static: helm does not template them
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"


def test_selectors_use_only_name_and_instance(scenario: str, render: Render) -> None:
    objects = render(scenario)
    deployment = the_object(objects, "Deployment")
    assert deployment["spec"]["selector"] == {"matchLabels": SELECTOR_LABELS}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR_LABELS.items() <= pod_labels.items()
    assert the_object(objects, "Service")["spec"]["selector"] == SELECTOR_LABELS
    for pdb in objects_of_kind(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["selector"] == {"matchLabels": SELECTOR_LABELS}


# ------------------------------------------------------------------ the operator Deployment


def test_default_deployment_is_one_hardened_replica(render: Render) -> None:
    objects = render("default")
    deployment = the_object(objects, "Deployment", "tritonop")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == the_object(objects, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(objects)
    assert container["image"] == "ghcr.io/tritonop/tritonop:0.1.0"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "api-key", "mountPath": "/etc/tritonop/api-key", "readOnly": True},  # test_chart_api_key.py
    ]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert not objects_of_kind(objects, "PodDisruptionBudget")
    assert not objects_of_kind(objects, "ClusterKopfPeering")


def test_probes_hit_healthz_on_the_metrics_port(scenario: str, render: Render) -> None:
    container = operator_container(render(scenario))
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_default_args_watch_all_namespaces(render: Render) -> None:
    args = operator_container(render("default"))["args"]
    assert args == [
        "run",
        "--all-namespaces",
        "--network-policy",
        "--metrics-namespace-selector=kubernetes.io/metadata.name=monitoring",
        # Its own pods may read Triton's metrics port through each NetworkPolicy (sequential analysis).
        "--operator-namespace=tritonop-system",
        "--operator-pod-selector=app.kubernetes.io/name=tritonop,app.kubernetes.io/instance=tritonop",
        "--prometheus-url=http://prometheus-operated.monitoring.svc:9090",
        "--api-key-secret-file=/etc/tritonop/api-key/secret",
        "--metrics-port=8080",
    ]


def test_optional_operator_settings_become_flags() -> None:
    values = {
        "operator": {
            "tritonImage": "nvcr.io/nvidia/tritonserver:24.12-py3",
            "tritonUrlTemplate": "http://{name}-{revision}.{namespace}.svc.cluster.local:8000",
            "metricsPort": 9090,
            "verbose": True,
            "extraArgs": ["--log-format=json"],
        },
        "image": {"tag": "0.1.1", "digest": "sha256:" + "ab" * 32},
    }
    container = operator_container(helm_template(values))
    assert container["args"][-5:] == [
        "--triton-image=nvcr.io/nvidia/tritonserver:24.12-py3",
        "--triton-url-template=http://{name}-{revision}.{namespace}.svc.cluster.local:8000",
        "--metrics-port=9090",
        "--verbose",
        "--log-format=json",
    ]
    assert container["ports"][0]["containerPort"] == 9090
    assert container["image"] == "ghcr.io/tritonop/tritonop:0.1.1@sha256:" + "ab" * 32


def test_ha_runs_peered_replicas_with_distinct_priorities(render: Render) -> None:
    objects = render("ha")
    deployment = the_object(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    container = operator_container(objects)
    assert "--peering=tritonop" in container["args"]
    assert "--priority=auto" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    peering = the_object(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "tritonop"
    pdb = the_object(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    anti_affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["labelSelector"]["matchLabels"] == SELECTOR_LABELS


def test_single_replica_does_not_peer(render: Render) -> None:
    args = operator_container(render("namespaced"))["args"]
    assert not [a for a in args if a.startswith(("--peering", "--priority"))]


def test_namespaced_mode_passes_namespace_flags(render: Render, watched_namespaces: list[str]) -> None:
    args = operator_container(render("namespaced"))["args"]
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--namespace")] == [f"--namespace={ns}" for ns in watched_namespaces]


def test_namespaced_ha_peers_in_each_watched_namespace(render: Render, watched_namespaces: list[str]) -> None:
    objects = render("namespaced-ha-monitoring")
    assert not objects_of_kind(objects, "ClusterKopfPeering")
    peerings = objects_of_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(watched_namespaces)
    assert {p["metadata"]["name"] for p in peerings} == {"tritonop"}


# ------------------------------------------------------------------ CRDs


def test_chart_crd_is_the_generated_crd() -> None:
    generated = REPO_ROOT / "crds" / "serving.tritonop.dev_inferenceservices.yaml"
    shipped = CHART_CRDS / generated.name
    assert shipped.read_bytes() == generated.read_bytes(), (
        f"{shipped} drifted from {generated}: copy it over and run scripts/render-install.sh"
    )


def test_crds_are_annotated_for_argo_cd(render: Render) -> None:
    crds = objects_of_kind(render("default"), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == {
        "inferenceservices.serving.tritonop.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    for crd in crds:
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,ServerSideApply=true"


def test_peering_crds_match_what_kopf_looks_for(render: Render) -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in objects_of_kind(render("default"), "CustomResourceDefinition")}
    expected_scope = {"ClusterKopfPeering": "Cluster", "KopfPeering": "Namespaced"}
    selectors = {
        "ClusterKopfPeering": kopf_references.CLUSTER_PEERINGS_K,
        "KopfPeering": kopf_references.NAMESPACED_PEERINGS_K,
    }
    for kind, selector in selectors.items():
        crd = crds[kind]
        assert crd["spec"]["scope"] == expected_scope[kind]
        assert f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}" == f"{selector.group}/{selector.version}"
        assert crd["spec"]["names"]["plural"] == selector.any_name
        status_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status_schema["x-kubernetes-preserve-unknown-fields"] is True
        # kopf patches .status on the main resource; a status subresource would drop those patches.
        assert "subresources" not in crd["spec"]["versions"][0]


# ------------------------------------------------------------------ monitoring


def test_monitoring_is_off_by_default(render: Render) -> None:
    kinds = {o["kind"] for o in render("default")}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "ConfigMap"}


def test_service_monitor_scrapes_the_metrics_service(render: Render) -> None:
    objects = render("monitoring")
    monitor = the_object(objects, "ServiceMonitor")
    service = the_object(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The operator's series carry the InferenceService's namespace; the target's must not replace it.
    assert endpoint["honorLabels"] is True


def test_triton_pod_monitor_labels_series_for_analysis(render: Render, watched_namespaces: list[str]) -> None:
    monitor = the_object(render("monitoring"), "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "tritonop"}
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets["inferenceservice"] == ["__meta_kubernetes_pod_label_serving_tritonop_dev_inferenceservice"]
    assert targets["revision"] == ["__meta_kubernetes_pod_label_serving_tritonop_dev_revision"]
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    scoped = the_object(render("namespaced-ha-monitoring"), "PodMonitor")
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": watched_namespaces}


def test_dashboard_configmap_carries_the_dashboard(render: Render) -> None:
    configmap = the_object(render("monitoring"), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART_DIR / "dashboards" / "tritonop.json").read_text())
    assert json.loads(configmap["data"]["tritonop.json"]) == shipped


def test_rendered_args_are_accepted_by_the_operator_cli(scenario: str, render: Render) -> None:
    from tritonop.cli import _parser

    args = operator_container(render(scenario))["args"]
    parsed = _parser().parse_args(args)
    assert parsed.command == "run"
    assert parsed.prometheus_url == "http://prometheus-operated.monitoring.svc:9090"
    assert parsed.metrics_port == 8080


def test_allowlists_reach_the_operator_as_repeated_flags() -> None:
    from tritonop.cli import _parser

    values = {
        "operator": {
            "allowedPrometheusUrls": ["http://team-prom.ml:9090", "http://other:9090/prom"],
            "allowedFilePaths": ["/var/lib/models"],
        }
    }
    args = operator_container(helm_template(values))["args"]
    parsed = _parser().parse_args(args)
    assert parsed.allowed_prometheus_urls == ["http://team-prom.ml:9090", "http://other:9090/prom"]
    assert parsed.allowed_file_paths == ["/var/lib/models"]
    assert "--allow-file-path" not in " ".join(operator_container(helm_template({}))["args"])


def test_network_policy_values_reach_the_operator() -> None:
    from tritonop.cli import _parser
    from tritonop.config import OperatorConfig

    defaults = _parser().parse_args(operator_container(helm_template({}))["args"])
    assert (defaults.network_policy, defaults.metrics_namespace_selector, defaults.metrics_pod_selector) == (
        True, OperatorConfig().metrics_namespace_selector, None,
    )
    values = {
        "networkPolicy": {
            "enabled": False,
            "metricsNamespaceSelector": "",
            "metricsPodSelector": "app.kubernetes.io/name=prometheus,team=obs",
        }
    }
    parsed = _parser().parse_args(operator_container(helm_template(values))["args"])
    assert parsed.network_policy is False
    assert parsed.metrics_namespace_selector == ""
    assert parsed.metrics_pod_selector == "app.kubernetes.io/name=prometheus,team=obs"


def test_packaged_chart_renders_like_the_source(tmp_path: Path) -> None:
    result = run_helm(["package", str(CHART_DIR), "--destination", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    archive = tmp_path / "tritonop-0.1.0.tgz"
    with tarfile.open(archive) as tar:
        members = set(tar.getnames())
    assert {
        "tritonop/Chart.yaml",
        "tritonop/values.schema.json",
        "tritonop/crds/serving.tritonop.dev_inferenceservices.yaml",
        "tritonop/crds/kopf.dev_peerings.yaml",
        "tritonop/dashboards/tritonop.json",
    } <= members
    values = {"dashboard": {"enabled": True}, "ha": {"enabled": True}}
    values["tritonApiKey"] = {"create": False}  # a generated API key secret differs per render
    assert helm_template(values, chart=archive, include_crds=True) == helm_template(values, include_crds=True)
