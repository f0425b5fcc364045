"""The local end-to-end stack (e2e/local/harness.py) as a fixture: one fresh stack per test.

Each test gets its own real control plane (etcd, kube-apiserver, controller-manager,
scheduler; built by scripts/build-control-plane), pod-level kubelet stand-in running
tritonserver processes, Prometheus, router and operator process, with logs under the
test's tmp_path (printed on failure).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.local.harness import LocalStack, StackSettings, local_stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with local_stack(tmp_path / "stack", StackSettings()) as running:
        yield running
        # Shown by pytest only when the test failed.
        print(f"--- operator log (tail), all logs in {running.workdir} ---\n{running.operator_log()}")
