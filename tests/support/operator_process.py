"""The real operator process for tests, and waiting on what it is seen doing.

``OperatorProcess`` runs ``python -m tritonop run`` against a kubeconfig (a real API
server's, through the fault proxy: tests/support/real_cluster.py). The helpers below wait
for the operator's Events, requests and passes (its tritonop_passes metric) instead of sleeping: a test never sleeps and then
asserts that something did (or did not) happen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.real_cluster import RealCluster, Request, Resource


class OperatorProcess:
    """The real operator (`python -m tritonop run`) as a subprocess pointed at a kubeconfig."""

    def __init__(self, kubeconfig: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None):
        self.kubeconfig = kubeconfig
        self.args = list(args)
        self.env = env or {}
        self.log_path = log or Path(tempfile.mkstemp(prefix="tritonop-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open for the process's life; closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tritonop", "run", *self.args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    async def astop(self, timeout: float = 15) -> int | None:
        """stop() from async code: waiting in a thread keeps the event loop (and the test's
        own loops on it) running while the operator shuts down."""
        return await asyncio.to_thread(self.stop, timeout)

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a crash or node loss would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (KeyError, IndexError, TypeError, AssertionError) as err:
            last_error = err
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last_error!r}")


NOWHERE = "http://127.0.0.1:9"  # nothing listens: Prometheus and Triton calls fail fast


def operator_flags(
    work: Path, *, tick: str = "0.3", prometheus_url: str = NOWHERE, triton_url: str = NOWHERE
) -> list[str]:
    """The flags tests run the operator with: every namespace, a fast tick, a free metrics
    port, Prometheus and Triton where nothing listens unless given (cluster DNS names would
    not resolve here), and an endpoints file under ``work``."""
    return [
        "--all-namespaces",
        "--tick-seconds", tick,
        "--metrics-port", str(free_port()),
        "--prometheus-url", prometheus_url,
        "--triton-url-template", triton_url,
        "--triton-endpoints-file", str(work / "endpoints.json"),
    ]  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ waiting on observed state
#
# A test never sleeps and then asserts that something did (or did not) happen: it waits for
# the operator to be seen doing the work, bounded, and fails saying what it saw instead.


def _event_line(event: dict[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return (
        f"{involved.get('namespace')}/{involved.get('name')} {event.get('type')} {event.get('reason')}: "
        f"{event.get('message')}"
    )


async def wait_for_event(
    kube: RealCluster,
    namespace: str,
    name: str,
    reason: str,
    *,
    type: str | None = None,
    message: str | None = None,
    timeout: float = 30,
    interval: float = 0.1,
) -> dict[str, Any]:
    """The first Event about object `name` in `namespace` with `reason` (and `type`, and `message`
    as a substring, when given), once it exists.

    The operator posts Events with kopf.event(), which only queues them: one can land after the
    status write it goes with, so reading Events right after a status change races. This waits,
    at most `timeout` seconds, and fails listing every Event about the object it did see.
    """

    def matching() -> list[dict[str, Any]]:
        return [
            e
            for e in kube.events(name)
            if (e.get("involvedObject") or {}).get("namespace") in (namespace, None)
            and e.get("reason") == reason
            and (type is None or e.get("type") == type)
            and (message is None or message in (e.get("message") or ""))
        ]

    deadline = time.monotonic() + timeout
    while True:
        found = matching()
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            seen = [_event_line(e) for e in kube.events(name)] or ["(none)"]
            wanted = " ".join(f"{k}={v!r}" for k, v in (("type", type), ("message~", message)) if v is not None)
            raise AssertionError(
                f"timed out after {timeout}s waiting for Event {reason} {wanted} about {namespace}/{name}; "
                "Events seen:\n  " + "\n  ".join(seen)
            )
        await asyncio.sleep(interval)


def operator_requests(
    kube: RealCluster,
    *,
    since: int = 0,
    method: str | None = None,
    plural_path: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> list[Request]:
    """Requests made by the operator's own client (User-Agent tritonop/…) since request number
    `since`, filtered by method, resource ('apps/v1/deployments'), namespace and name. kopf's
    requests (kopf/…) and the tests' own are left out."""
    resource = Resource.of(plural_path) if plural_path else None
    return [
        r
        for r in kube.api.all_requests[since:]
        if r.headers.get("User-Agent", "").startswith("tritonop/")
        and (method is None or str(getattr(r.method, "value", r.method)).upper() == method.upper())
        and (resource is None or r.resource == resource)
        and (namespace is None or r.namespace == namespace)
        and (name is None or r.name == name)
    ]


def operator_metric(op: OperatorProcess, metric: str, **labels: str) -> float:
    """The sum of the operator's samples of ``metric`` whose labels include ``labels``."""
    port = op.args[op.args.index("--metrics-port") + 1]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def passes(op: OperatorProcess, namespace: str, name: str, kind: str | None = None) -> int:
    """Finished passes (reconciles and ticks, or one ``kind``) the operator ran over one object."""
    labels = {"namespace": namespace, "name": name, **({"pass": kind} if kind else {})}
    return int(operator_metric(op, "tritonop_passes_total", **labels))


async def wait_for_passes(
    op: OperatorProcess, namespace: str, name: str, count: int, *, since: int, timeout: float = 30
) -> int:
    """Wait until the operator has finished ``count`` passes over one object after the ``since``
    it had run before (``passes``); return the total. Counts passes that actually ran, where a
    sleep would only assume them."""
    target = since + count
    seen = await eventually(
        lambda: (n := passes(op, namespace, name)) >= target and n,
        timeout=timeout,
        interval=0.05,
        what=f"{count} passes over {namespace}/{name} (from {since})",
    )
    return int(seen)


def reconciled(kube: RealCluster, namespace: str, name: str, spec: dict[str, Any]) -> bool:
    """The operator has reconciled ``spec``: the object holds it and its status reports the
    object's generation as observed."""
    obj = kube.isvc(namespace, name) or {}
    status = obj.get("status") or {}
    return obj.get("spec") == spec and status.get("observedGeneration") == obj["metadata"]["generation"]
