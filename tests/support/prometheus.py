"""A real Prometheus server for tests, scraping local targets with revision labels.

``/usr/bin/prometheus`` comes from ``apt-get install prometheus`` (Debian's service is
not started; we run our own process). Each ``ScrapeTarget`` is a static_configs entry
whose labels stand in for what the chart's PodMonitor relabels from pod labels
(``namespace``, ``inferenceservice``, ``revision``), so queries see the same series
they would in a cluster.

Typical use::

    target = ScrapeTarget(f"127.0.0.1:{triton.metrics_port}", {"namespace": "ml", ...})
    with PrometheusServer([target]) as prometheus:
        prometheus.wait_for_target(target.address)
        ... PrometheusClient(prometheus.url) ...
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import yaml

from tests.support.triton import free_port

__all__ = ["PROMETHEUS_BINARY", "PrometheusServer", "ScrapeTarget", "prometheus_binary"]

PROMETHEUS_BINARY = "/usr/bin/prometheus"
JOB = "triton"


@dataclass(frozen=True)
class ScrapeTarget:
    """One host:port whose /metrics Prometheus scrapes; labels are attached to every series."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


def prometheus_binary() -> str:
    """The prometheus executable; skips the calling test when it is not installed."""
    found = shutil.which("prometheus") or (PROMETHEUS_BINARY if Path(PROMETHEUS_BINARY).is_file() else None)
    if found is None:
        pytest.skip(f"prometheus binary not found at {PROMETHEUS_BINARY} or on PATH: apt-get install -y prometheus")
    return found


class PrometheusServer:
    """A prometheus process on a free 127.0.0.1 port with its own temporary TSDB.

    ``add_target`` rewrites the config and reloads it through ``/-/reload`` (the server
    runs with ``--web.enable-lifecycle``), so a harness can add Triton servers as they
    start. ``stop`` ends the process and deletes the temporary folder.
    """

    def __init__(self, targets: Iterable[ScrapeTarget] = (), scrape_interval: str = "1s") -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle

    def start(self, ready_timeout: float = 30.0) -> Self:
        """Start prometheus and wait until /-/ready answers; returns self."""
        if self._process is not None:
            raise RuntimeError("this PrometheusServer was already started")
        binary = prometheus_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="tritonop-prometheus-"))
        self._write_config()
        with open(self._workdir / "prometheus.log", "wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self._workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self._workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not self._wait_ready(ready_timeout):
            output = self.recent_output()
            self.stop()
            raise RuntimeError(f"prometheus did not become ready within {ready_timeout}s:\n{output}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; removes the temporary folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return None if process is None else process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- targets

    def add_target(self, target: ScrapeTarget) -> None:
        """Scrape one more target; reloads a running server's config."""
        self.targets.append(target)
        if self._process is None:
            return
        self._write_config()
        request = urllib.request.Request(self.url + "/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10.0):
                pass  # 200 means the new config is in effect
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"prometheus rejected the new config: {exc.read().decode(errors='replace')}") from exc

    def wait_for_target(self, address: str, timeout: float = 15.0) -> None:
        """Block until ``address`` has been scraped successfully; raise with the scrape error otherwise."""
        deadline = time.monotonic() + timeout
        last_error = "not among the active targets yet"
        while time.monotonic() < deadline:
            for target in self._get("/api/v1/targets?state=active")["data"]["activeTargets"]:
                if target["labels"].get("instance") != address:
                    continue
                if target["health"] == "up":
                    return
                last_error = target.get("lastError") or f"health {target['health']}"
            time.sleep(0.2)
        raise TimeoutError(f"prometheus did not scrape {address} within {timeout}s: {last_error}")

    # -- state

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def recent_output(self, lines: int = 40) -> str:
        """The last ``lines`` lines of prometheus' log."""
        if self._workdir is None:
            return ""
        text = (self._workdir / "prometheus.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- internals

    def _write_config(self) -> None:
        assert self._workdir is not None
        config = {
            # A scrape timeout may not exceed the interval; Prometheus' default (10s) would.
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in self.targets],
                }
            ],
        }
        staged = self._workdir / "prometheus.yml.new"
        staged.write_text(yaml.safe_dump(config, sort_keys=False))
        staged.replace(self._workdir / "prometheus.yml")  # a reload never reads a half-written file

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2.0) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while the TSDB opens
            time.sleep(0.2)
        return False

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5.0) as response:
            return json.loads(response.read())
