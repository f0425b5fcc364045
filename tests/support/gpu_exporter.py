"""A local HTTP exporter serving a Triton pod's metrics text with GPU gauges.

It stands in for Triton's GPU metrics, which no test here can get from a real tritonserver:
this machine has no GPU, and Triton exports ``nv_gpu_*`` only for GPUs it sees (DCGM). The text
is Triton's own format: one ``nv_gpu_utilization``, ``nv_gpu_memory_total_bytes`` and
``nv_gpu_memory_used_bytes`` sample per GPU, labelled ``gpu_uuid``, with HELP and TYPE lines,
next to a model's request counters, so Prometheus and tritonop's parser read it as they read
Triton's port 8002. ``gpus=()`` is a pod on CPU: counters only.

Typical use::

    with MetricsExporter(triton_metrics_text([12 * GIB])) as pod:
        ... ScrapeTarget(pod.address, labels) ... or GET pod.url ...
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = ["GIB", "MetricsExporter", "triton_metrics_text"]

GIB = 2**30
GPU_TOTAL_BYTES = 80 * GIB


def triton_metrics_text(gpus: Sequence[float], *, model: str = "resnet50", pod: str = "pod") -> str:
    """Triton's metrics text for a server with these GPUs (memory used in bytes, one per GPU)."""
    uuids = [f"GPU-{pod}-{index:02d}" for index in range(len(gpus))]
    lines = [
        "# HELP nv_inference_request_success Number of successful inference requests, all batch sizes",
        "# TYPE nv_inference_request_success counter",
        f'nv_inference_request_success{{model="{model}",version="1"}} 0',
        "# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
        "# TYPE nv_inference_request_failure counter",
        f'nv_inference_request_failure{{model="{model}",reason="BACKEND",version="1"}} 0',
    ]
    if gpus:
        gauges = (
            ("nv_gpu_utilization", "GPU utilization rate [0.0 - 1.0)", [0.5] * len(gpus)),
            ("nv_gpu_memory_total_bytes", "GPU total memory, in bytes", [GPU_TOTAL_BYTES] * len(gpus)),
            ("nv_gpu_memory_used_bytes", "GPU used memory, in bytes", list(gpus)),
        )
        for name, help_text, values in gauges:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f'{name}{{gpu_uuid="{uuid}"}} {value:.17g}' for uuid, value in zip(uuids, values, strict=True)]
    return "\n".join(lines) + "\n"


class MetricsExporter:
    """Serves ``text`` at ``/metrics`` on a free 127.0.0.1 port from a background thread."""

    def __init__(self, text: str) -> None:
        self.text = text
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # Prometheus scrapes every second: no log line per scrape

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
