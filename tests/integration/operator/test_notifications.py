"""Notifications from the real operator process (`--notifications-file`) on a real API server:
a canary start and an abort reach a local webhook sink, with the revision each is about, and a
reason the sink did not subscribe to never arrives."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.real_cluster import RealCluster

NS = "ml"
NAME = "notified"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": NAME, "namespace": NS},
    "spec": {"model": {"storageUri": "s3://models/notified"}, "triton": {"gpus": 0}},
}


async def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll ``check`` until it returns a truthy value (a KeyError or TypeError counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except (KeyError, TypeError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


class Sink:
    """A local webhook: records every JSON body it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=204)

    def reasons(self) -> list[str]:
        return [p["reason"] for p in self.received]

    async def wait_for(self, reason: str, timeout: float = 30) -> dict[str, Any]:
        def arrived() -> dict[str, Any] | None:
            return next((p for p in self.received if p["reason"] == reason), None)

        found: dict[str, Any] = await eventually(arrived, timeout=timeout, what=f"a {reason} notification")
        return found


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()
    app.router.add_post("/hooks/{token}", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    s.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/t0ken"
    yield s
    await runner.cleanup()


async def test_canary_start_and_abort_are_notified(kube: RealCluster, run_operator, sink: Sink, tmp_path: Path) -> None:
    config = tmp_path / "notifications.yaml"
    # Default reasons (CanaryStarted, Promoted, RolledBack, Aborted, RolloutFailed): the first
    # deploy's RevisionReady and any CanaryStep are not among them.
    config.write_text(json.dumps({"cluster": "it", "sinks": [{"name": "hook", "type": "webhook", "url": sink.url}]}))
    run_operator("--notifications-file", str(config))
    await kube.apply_isvc(copy.deepcopy(ISVC))
    first = await eventually(
        lambda: kube.status(NS, NAME).get("phase") == "Ready" and kube.status(NS, NAME)["stableRevision"], timeout=40
    )

    spec = copy.deepcopy(ISVC["spec"])
    spec["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"
    await kube.replace_spec(NS, NAME, spec)
    second = await eventually(lambda: kube.status(NS, NAME).get("canaryRevision"), timeout=30, what="canary")
    started = await sink.wait_for("CanaryStarted")
    assert started["namespace"] == NS and started["name"] == NAME and started["cluster"] == "it"
    assert started["type"] == "Normal" and started["revision"] == second
    assert started["stableRevision"] == first and started["canaryRevision"] == second
    assert started["uid"] == kube.isvc(NS, NAME)["metadata"]["uid"]

    await kube.annotate(NS, NAME, {"serving.tritonop.dev/abort": second})
    aborted = await sink.wait_for("Aborted")
    assert aborted["type"] == "Warning" and aborted["revision"] == second
    assert aborted["stableRevision"] == first and aborted["failedRevision"] == second
    assert aborted["phase"] == "RolledBack" and "aborted by annotation" in aborted["message"]
    # The Kubernetes Event is posted too, as before.
    await eventually(
        lambda: [e for e in kube.events(NAME) if e.get("reason") == "Aborted" and e.get("type") == "Warning"],
        what="the Aborted Event",
    )
    assert sink.reasons() == ["CanaryStarted", "Aborted"]  # nothing filtered out arrived
