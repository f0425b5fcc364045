"""The CRD, the examples and the CEL rules against a real kube-apiserver, and the real
controller-manager and scheduler at work (tests/support/control_plane.py).

Skipped when the binaries are not built (`scripts/build-control-plane`), failed instead
with TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.control_plane import REPO_ROOT, ControlPlane, eventually
from tritonop.kube.client import KubeClient, KubeError, connection_from_credentials
from tritonop.kube.credentials import discover

pytestmark = pytest.mark.slow

CRD_NAME = "inferenceservices.serving.tritonop.dev"
EXAMPLES = sorted((REPO_ROOT / "manifests" / "examples").glob("*.yaml"))
MINIMAL = yaml.safe_load((REPO_ROOT / "manifests" / "examples" / "minimal-cpu.yaml").read_text())


def ensure_namespace(cp: ControlPlane, name: str) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(namespace))


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane) -> ControlPlane:
    """The checked-in CRD applied with kubectl server-side apply, and Established."""
    control_plane.kubectl("apply", "--server-side", "-f", "crds/")
    eventually(lambda: control_plane.crd_established(CRD_NAME), f"{CRD_NAME} Established", timeout=60)
    return control_plane


def isvc(name: str, namespace: str, **spec_overrides: Any) -> dict[str, Any]:
    """The minimal example under another name and namespace, with spec sections replaced."""
    obj: dict[str, Any] = copy.deepcopy(MINIMAL)
    obj["metadata"] = {"name": name, "namespace": namespace}
    obj["spec"].update(spec_overrides)
    return obj


def test_crd_applies_server_side_and_is_established(crd: ControlPlane) -> None:
    got = crd.get_json(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}")
    conditions = {c["type"]: c["status"] for c in got["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    assert got["status"]["acceptedNames"]["shortNames"] == ["tis"]
    # The API server serves the new type: discovery lists it with its subresource.
    resources = crd.get_json("/apis/serving.tritonop.dev/v1alpha1")["resources"]
    assert {r["name"] for r in resources} >= {"inferenceservices", "inferenceservices/status"}
    # Applying again is a no-op (server-side apply, same field manager).
    again = crd.kubectl("apply", "--server-side", "-f", "crds/")
    assert "serverside-applied" in again.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_admitted(crd: ControlPlane, example: Path) -> None:
    for doc in yaml.safe_load_all(example.read_text()):
        if doc and doc.get("metadata", {}).get("namespace"):
            ensure_namespace(crd, doc["metadata"]["namespace"])
    result = crd.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(example), check=False)
    assert result.returncode == 0, result.stderr
    assert "serverside-applied (server dry run)" in result.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 4}},
            "autoscaling.minReplicas must not exceed autoscaling.maxReplicas (default 1)",
        ),
        ({"rollout": {"steps": [50, 25]}}, "rollout.steps must be strictly increasing"),
        (  # the minimal example runs on CPU (gpus: 0)
            {"rollout": {"analysis": {"gpuMemory": {"maxBytes": "20Gi"}}}},
            "rollout.analysis.gpuMemory needs triton.gpus above 0",
        ),
        ({"triton": {"gpus": 1}, "rollout": {"analysis": {"gpuMemory": {}}}}, "gpuMemory needs maxBytes or"),
        (
            {"triton": {"gpus": 1}, "rollout": {"analysis": {"gpuMemory": {"maxBytes": "0.0Gi"}}}},
            "gpuMemory.maxBytes must be above 0",
        ),
        (
            {"triton": {"gpus": 1}, "rollout": {"analysis": {"gpuMemory": {"maxBytes": 0}}}},
            "gpuMemory.maxBytes must be above 0",
        ),
    ],
    ids=[
        "min-above-max-replicas",
        "steps-not-increasing",
        "gpu-memory-on-cpu",
        "gpu-memory-without-bound",
        "gpu-memory-zero-quantity",
        "gpu-memory-zero-bytes",
    ],
)
def test_cel_rule_rejects_at_admission(crd: ControlPlane, spec: dict[str, Any], message: str) -> None:
    ensure_namespace(crd, "cel")
    bad = isvc("bad", "cel", **spec)
    result = crd.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert message in result.stderr
    missing = crd.kubectl("get", "tis", "bad", "-n", "cel", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


@pytest.mark.parametrize("max_bytes", ["20Gi", 21474836480], ids=["quantity", "bytes"])
def test_gpu_memory_bounds_are_admitted(crd: ControlPlane, max_bytes: int | str) -> None:
    ensure_namespace(crd, "cel")
    good = isvc("gpu", "cel", triton={"gpus": 1}, rollout={"analysis": {"gpuMemory": {"maxBytes": max_bytes}}})
    result = crd.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(good), check=False)
    assert result.returncode == 0, result.stderr


def _table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_kubectl_get_tis_prints_the_printer_columns(crd: ControlPlane) -> None:
    ensure_namespace(crd, "columns")
    crd.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(isvc("resnet", "columns")))
    status = {
        "status": {
            "phase": "Progressing",
            "url": "http://resnet.columns.svc:8000",
            "stableRevision": "7f9c2a",
            "canaryRevision": "1d0e44",
            "canary": {"step": 1, "weight": 25},
            "conditions": [{"type": "Ready", "status": "False", "reason": "CanaryInProgress", "message": "step 1"}],
        }
    }
    crd.kubectl("patch", "tis", "resnet", "-n", "columns", "--subresource=status", "--type=merge",
                "-p", json.dumps(status))  # fmt: skip

    header, row = _table(crd.kubectl("get", "tis", "-n", "columns").stdout)
    assert header == ["NAME", "READY", "PHASE", "STABLE", "CANARY", "CANARY %", "AGE"]
    assert row[:6] == ["resnet", "False", "Progressing", "7f9c2a", "1d0e44", "25"]

    header, row = _table(crd.kubectl("get", "tis", "-n", "columns", "-o", "wide").stdout)
    assert header == ["NAME", "READY", "PHASE", "STABLE", "CANARY", "CANARY %", "URL", "AGE"]
    assert row[6] == "http://resnet.columns.svc:8000"

    # The short name and the category reach the same object.
    assert "resnet" in crd.kubectl("get", "tritonop", "-n", "columns", "-o", "name").stdout


def _owned_by(items: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [
        item
        for item in items
        if any(o["kind"] == kind and o["name"] == name for o in item["metadata"].get("ownerReferences", []))
    ]


def test_controllers_and_scheduler_run(control_plane: ControlPlane) -> None:
    """Deployment -> ReplicaSet -> Pods by the real controllers; the real scheduler finds no
    node for them; deleting the Deployment lets the real garbage collector remove the rest."""
    cp, ns = control_plane, "apps"
    ensure_namespace(cp, ns)
    cp.kubectl("create", "deployment", "web", "-n", ns, "--image=registry.invalid/web:1", "--replicas=2")

    def replicasets() -> list[dict[str, Any]]:
        return _owned_by(cp.get_json(f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"], "Deployment", "web")

    (rs,) = eventually(replicasets, "a ReplicaSet owned by Deployment web")
    assert rs["spec"]["replicas"] == 2
    rs_name = rs["metadata"]["name"]

    def pods() -> list[dict[str, Any]]:
        found = _owned_by(cp.get_json(f"/api/v1/namespaces/{ns}/pods")["items"], "ReplicaSet", rs_name)
        return found if len(found) == 2 else []

    eventually(pods, f"2 pods owned by ReplicaSet {rs_name}")

    def unschedulable() -> bool:
        return all(
            any(
                c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                for c in p["status"].get("conditions", [])
            )
            for p in pods()
        ) and bool(pods())

    eventually(unschedulable, "the scheduler to report the pods Unschedulable (there are no nodes)")

    deployment = cp.get_json(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert deployment["status"].get("observedGeneration") == deployment["metadata"]["generation"]

    cp.kubectl("delete", "deployment", "web", "-n", ns, "--wait=false")
    eventually(lambda: not replicasets() and not cp.get_json(f"/api/v1/namespaces/{ns}/pods")["items"],
               "the garbage collector to delete the ReplicaSet and its pods")  # fmt: skip


async def test_kube_client_evicts_a_pod_and_a_budget_can_refuse(control_plane: ControlPlane) -> None:
    """KubeClient.evict (InPlace's wedged pods): the eviction subresource removes the pod; a
    PodDisruptionBudget that allows no disruption (here also not yet observed: this control
    plane runs no disruption controller, and the API server refuses either way) refuses a
    running pod's with 429, unless it lets a pod that is not Ready go whatever the budget says
    (as tritonop's budgets do, children/pdb.py); a pod already gone is False."""
    cp, ns = control_plane, "evictions"
    ensure_namespace(cp, ns)
    for name in ("wedged", "guarded", "unready"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
        }
        cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(pod))
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded", "namespace": ns},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(budget))
    # tritonop's own budgets let a pod that is not Ready go whatever the budget says.
    lenient = copy.deepcopy(budget)
    lenient["metadata"]["name"] = "unready"
    lenient["spec"]["selector"]["matchLabels"]["app"] = "unready"
    lenient["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(lenient))
    # A Pending pod is evicted whatever its budget says: the guarded one runs (no kubelet here:
    # its status is written as a kubelet would).
    running = json.dumps({"status": {"phase": "Running"}})
    for name in ("guarded", "unready"):
        cp.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", running)
    client = KubeClient(connection_from_credentials(discover(kubeconfig=cp.kubeconfig)))
    try:
        assert await client.evict(ns, "wedged") is True
        with pytest.raises(KubeError) as refused:
            await client.evict(ns, "guarded")
        assert refused.value.status == 429, refused.value
        assert await client.evict(ns, "unready") is True  # not Ready: AlwaysAllow
        eventually(
            lambda: (
                "wedged" not in {p["metadata"]["name"] for p in cp.get_json(f"/api/v1/namespaces/{ns}/pods")["items"]}
            ),
            "the evicted pod to go (it never ran: no grace period to wait out)",
        )
        assert await client.evict(ns, "wedged") is False
        assert cp.get_json(f"/api/v1/namespaces/{ns}/pods/guarded")["metadata"]["name"] == "guarded"
    finally:
        await client.aclose()
