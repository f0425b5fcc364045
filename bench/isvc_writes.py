"""InferenceService writes per second on the real API server (issue 13's test bed), with the
CRD as generated and with its CEL rules stripped: creates (POST), then a status write
(merge PATCH of /status) for each, 32 in flight, no operator.

    python -m bench.isvc_writes [N]          # N objects (default 1500)

Every object costs the API server at least 4 writes of an InferenceService (the client's
create, kopf's finalizer and last-handled annotation, the operator's status), so this
bounds the objects per second any kopf operator reaches here (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from typing import Any

import httpx
import yaml

from bench.scale import ISVCS, NS, OK, admin_tls, isvc
from tests.support.control_plane import ControlPlane, eventually

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1500


def strip(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("x-kubernetes-validations", None)
        for v in node.values():
            strip(v)
    elif isinstance(node, list):
        for v in node:
            strip(v)


STATUS = {
    "status": {
        "phase": "Pending",
        "message": "deploying revision abc",
        "stableRevision": "abcdef0123",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Deploying",
                "message": "x",
                "lastTransitionTime": "2026-11-30T12:00:00Z",
            }
        ],
    }
}


async def run(cp: ControlPlane, label: str) -> None:
    async with httpx.AsyncClient(base_url=cp.url, verify=admin_tls(cp), timeout=60) as client:
        slots = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with slots:
                r = await client.post(ISVCS, json=isvc(f"o-{i}"))
                assert r.status_code in OK, r.text[:300]

        async def status(i: int) -> None:
            async with slots:
                r = await client.patch(
                    f"{ISVCS}/o-{i}/status",
                    content=json.dumps(STATUS),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                assert r.status_code in OK, r.text[:300]

        t = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(N)))
        c = N / (time.monotonic() - t)
        t = time.monotonic()
        await asyncio.gather(*(status(i) for i in range(N)))
        s = N / (time.monotonic() - t)
        print(f"{label}: creates {c:.0f}/s, status writes {s:.0f}/s ({N} each)", flush=True)


def main() -> None:
    with open("crds/serving.tritonop.dev_inferenceservices.yaml") as f:
        crd = yaml.safe_load(f)
    bare = copy.deepcopy(crd)
    strip(bare)
    rules = json.dumps(crd).count("x-kubernetes-validations")
    for label, doc in ((f"CRD as generated ({rules} rule lists)", crd), ("CRD without CEL rules", bare)):
        with ControlPlane(controllers=False, scheduler=False) as cp:
            cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(doc))
            eventually(lambda cp=cp: cp.crd_established("inferenceservices.serving.tritonop.dev"), "crd", timeout=60)
            cp.kubectl("create", "namespace", NS)
            asyncio.run(run(cp, label))


if __name__ == "__main__":
    main()
