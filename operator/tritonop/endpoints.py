"""Where the operator reaches a revision's Triton server.

In a cluster: the revision's Service DNS name, from `--triton-url-template`
(placeholders {name}, {revision}, {namespace}, {service}); one pod directly, from
`triton_pod_url_template` ({pod_ip}). Outside a cluster (an operator on a laptop with
`kubectl port-forward`, or the local end-to-end harness), an endpoints file maps
`namespace/service` and `namespace/pod/NAME` to URLs (and `namespace/pod/NAME/metrics` to a
pod's metrics endpoint); it is re-read when it changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS_PORT = 8002


class TritonEndpoints:
    def __init__(self, template: str, endpoints_file: str | None = None, pod_template: str = "") -> None:
        self._template = template
        self._pod_template = pod_template
        self._file = Path(endpoints_file) if endpoints_file else None
        self._mtime: float | None = None
        self._map: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self._file is None:
            return {}
        try:
            mtime = os.stat(self._file).st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._mtime:
            try:
                self._map = {str(k): str(v) for k, v in json.loads(self._file.read_text()).items()}
                self._mtime = mtime
            except (ValueError, OSError):
                pass  # half-written file: keep the last good map, retry next time
        return self._map

    def url_for(self, namespace: str, name: str, revision: str) -> str:
        service = f"{name}-{revision}"
        mapped = self._load().get(f"{namespace}/{service}")
        if mapped:
            return mapped
        return self._template.format(name=name, revision=revision, namespace=namespace, service=service)

    def metrics_url_for_pod(self, namespace: str, pod: str, pod_ip: str | None) -> str | None:
        """Triton's metrics endpoint (port 8002, /metrics) on one pod: ``namespace/pod/NAME/metrics``
        in the endpoints file, else the pod's IP."""
        mapped = self._load().get(f"{namespace}/pod/{pod}/metrics")
        if mapped:
            return mapped
        if not pod_ip:
            return None
        host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
        return f"http://{host}:{METRICS_PORT}/metrics"

    def url_for_pod(self, namespace: str, pod: str, pod_ip: str | None) -> str | None:
        mapped = self._load().get(f"{namespace}/pod/{pod}")
        if mapped:
            return mapped
        if not pod_ip or not self._pod_template:
            return None
        return self._pod_template.format(pod_ip=pod_ip, namespace=namespace, pod=pod)
