"""Fixtures: an emulated Kubernetes API (kmock, extended in tests/support/kube.py) and the
real operator process (`python -m tritonop run`) pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.kube import Cluster, OperatorProcess, cluster as start_cluster, free_port


@pytest.fixture
async def kube() -> AsyncIterator[Cluster]:
    async with start_cluster() as c:
        yield c


@pytest.fixture
def operator_args(tmp_path: Path) -> list[str]:
    return [
        "--all-namespaces",
        "--tick-seconds", "0.3",
        "--metrics-port", str(free_port()),
        "--prometheus-url", "http://127.0.0.1:9",  # nothing listens: analysis sees Error
        # No Triton runs in these tests: a closed local port fails fast (cluster DNS names
        # would not resolve here, and slow lookups would only add noise).
        "--triton-url-template", "http://127.0.0.1:9",
        "--triton-endpoints-file", str(tmp_path / "endpoints.json"),
    ]


@pytest.fixture
def run_operator(kube: Cluster, operator_args: list[str], tmp_path: Path) -> Iterator[callable]:
    started: list[OperatorProcess] = []

    def start(*extra: str) -> OperatorProcess:
        proc = OperatorProcess(kube.kubeconfig, *operator_args, *extra, log=tmp_path / f"operator-{len(started)}.log")
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(f"--- operator log {proc.log_path} (tail) ---\n" + proc.output[-4000:])
