"""The emulated API server of the local stack: tests/support/kube.py's, made kubectl-friendly.

kubectl's informers (``kubectl wait``) decode LIST responses into typed lists: they need
``kind``/``apiVersion`` on the list and a usable ``metadata.resourceVersion``, which kmock
leaves out. With those, the real-cluster scenario script (e2e/kind/scenario) runs
unchanged against the local stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock

from tests.support.kube import Cluster, Emulator

__all__ = ["KubectlEmulator", "emulated_cluster"]


class KubectlEmulator(Emulator):
    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        resource = request.resource
        assert resource is not None  # a LIST is always of a resource
        group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        info = self.resources.get(f"{group_version}/{resource.plural}")
        kind = getattr(info, "kind", None) or "Unknown"
        result["apiVersion"] = group_version
        result["kind"] = f"{kind}List"
        result["metadata"] = {"resourceVersion": str(next(self.rv))}
        return result


@contextlib.asynccontextmanager
async def emulated_cluster() -> AsyncIterator[Cluster]:
    """Like tests.support.kube.cluster(), on the kubectl-friendly emulator."""
    with tempfile.TemporaryDirectory(prefix="tritonop-kmock-") as tmp:
        async with KubectlEmulator() as emulator, kmock.Server(emulator) as server:
            cluster = Cluster(emulator, str(server.url), Path(tmp))
            stop = asyncio.Event()
            controllers = asyncio.create_task(cluster.run_controllers(stop))
            try:
                yield cluster
            finally:
                stop.set()
                await controllers
                await cluster.close()
