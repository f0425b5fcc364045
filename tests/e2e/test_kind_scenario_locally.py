"""The real-cluster scenario script (e2e/kind/scenario) run unchanged against the local stack.

There is no kind here (no Docker), but the script runs unchanged against the stack's real
kube-apiserver: kubectl applies the scenario's manifests (validated against the server's
OpenAPI schema and the CRD's), waits with `kubectl wait --for=jsonpath=...`, and asserts
promotion and rollback on the routes, Deployments and Events the real operator wrote,
while the real controllers and scheduler make the Pods, and the kubelet and router
stand-ins play the containers and the Gateway.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from e2e.local.harness import NAMESPACE, LocalStack

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]

SCENARIO = Path(__file__).resolve().parents[2] / "e2e" / "kind" / "scenario"


async def test_the_kind_scenario_passes_against_the_local_stack(stack: LocalStack) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found")
    env = {
        **os.environ,
        "KUBECONFIG": str(stack.cluster.kubeconfig),
        "NAMESPACE": NAMESPACE,
        "NODE_MODEL_ROOT": str(stack.models_root),  # the "node" is this machine
        "PROFILE": "local",
        "TIMEOUT": "90s",
    }
    process = await asyncio.create_subprocess_exec(
        str(SCENARIO), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 240)
    except TimeoutError:
        process.kill()
        raise
    text = output.decode(errors="replace")
    shown = text
    assert process.returncode == 0, shown
    assert "ok: HTTPRoute backends at step 1 = " in shown and "=80 classifier-" in shown
    assert "ok: event Promoted" in shown and "ok: event RolledBack (successRate)" in shown
    assert shown.rstrip().endswith("== scenario passed =="), shown
    assert stack.status()["phase"] == "RolledBack"
