"""Fixtures: a real Kubernetes control plane per test (etcd, kube-apiserver, the
controller-manager's Deployment, ReplicaSet, GC, EndpointSlice and HPA controllers, the
scheduler; tests/support/real_cluster.py), one stand-in Node whose pods run nothing
(tests/support/node_standin.py), and the real operator process (`python -m tritonop run`)
pointed at it through the request-recording fault proxy (tests/support/fault_proxy.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.operator_process import OperatorProcess, operator_flags
from tests.support.real_cluster import RealCluster, real_cluster
from tests.support.triton import TritonServer, write_model


@pytest.fixture
async def kube() -> AsyncIterator[RealCluster]:
    async with real_cluster() as c:
        yield c
        assert not c.node.errors, f"the node stand-in met API errors: {c.node.errors[:5]}"


@pytest.fixture
def triton(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TritonServer]:
    """A real tritonserver serving the test module's TRITON_MODEL (OUTPUT0 = 2 x INPUT0)."""
    model = request.module.TRITON_MODEL
    write_model(tmp_path / "repo", model)
    with TritonServer(tmp_path / "repo", [model]) as server:
        assert server.wait_ready(60), server.recent_output()
        yield server


@pytest.fixture
def operator_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    # Tests that use the `triton` fixture reach every revision through that real server; the
    # others through a closed local port, which fails fast (cluster DNS names would not
    # resolve here, and slow lookups would only add noise).
    if "triton" in request.fixturenames:
        return operator_flags(tmp_path, triton_url=request.getfixturevalue("triton").http_url)
    return operator_flags(tmp_path)


@pytest.fixture
def run_operator(kube: RealCluster, operator_args: list[str], tmp_path: Path) -> Iterator[callable]:
    started: list[OperatorProcess] = []

    def start(*extra: str) -> OperatorProcess:
        proc = OperatorProcess(kube.kubeconfig, *operator_args, *extra, log=tmp_path / f"operator-{len(started)}.log")
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(f"--- operator log {proc.log_path} (tail) ---\n" + proc.output[-4000:])
