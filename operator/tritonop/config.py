"""Operator-wide settings: the flags and environment variables of `tritonop run`.

Per-object fields in the InferenceService override these defaults.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from tritonop.selectors import parse_selector

DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    triton_image: str = DEFAULT_TRITON_IMAGE
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    # Operator -> Triton address; placeholders {name} {revision} {namespace}.
    triton_url_template: str = "http://{name}-{revision}.{namespace}.svc:8000"
    # How the gate reaches one pod of a revision that is not ready yet (the Service reaches
    # ready pods only), to report Triton's own reason (e.g. the model failed to load).
    triton_pod_url_template: str = "http://{pod_ip}:8000"
    # Optional JSON file {"namespace/service": URL, "namespace/pod/NAME": URL} overriding both.
    triton_endpoints_file: str | None = None
    # Label names under which Prometheus stores the pod labels of Triton series.
    label_namespace: str = "namespace"
    label_isvc: str = "inferenceservice"
    label_revision: str = "revision"
    metrics_port: int = 8080
    # How often the rollout timer wakes up to check whether a step is due (seconds).
    tick_seconds: float = 5.0
    prometheus_timeout_seconds: float = 10.0
    # How the operator authenticates to every Prometheus it queries and verifies it
    # (analysis/prometheus.py PrometheusAccess, docs/prometheus.md): credentials only from
    # files, read again when they change (the username may be a flag); headers are "Name: value".
    prometheus_bearer_token_file: str | None = None
    prometheus_basic_auth_username: str | None = None
    prometheus_basic_auth_username_file: str | None = None
    prometheus_basic_auth_password_file: str | None = None
    prometheus_ca_file: str | None = None
    prometheus_cert_file: str | None = None
    prometheus_key_file: str | None = None
    prometheus_insecure_skip_verify: bool = False
    prometheus_tls_server_name: str | None = None
    prometheus_headers: tuple[str, ...] = ()
    # Kubernetes API requests in flight at once (kube/client.py); the rest wait their turn.
    api_concurrency: int = 32
    init_image: str = "curlimages/curl:8.10.1"  # fetches http(s):// model archives
    # File holding the operator secret each InferenceService's Triton control-API key derives
    # from (HMAC-SHA256 of the object's uid). None, or a missing file: a random secret per
    # process, with a warning (keys change on restart). See docs/security.md.
    api_key_secret_file: str | None = None
    # Prometheus URLs (prefixes) a spec's rollout.analysis.prometheusUrl may name, besides
    # prometheus_url itself; anything else is refused (SSRF). See operator_policy.py.
    allowed_prometheus_urls: tuple[str, ...] = ()
    # Node directories (prefixes) file:// storage may mount; empty: file:// is refused.
    allowed_file_paths: tuple[str, ...] = ()
    # Let spec.triton's security contexts take Triton pods out of Pod Security "restricted"
    # (children/security.py); off: such a spec is Stalled (SecurityContextNotRestricted).
    allow_unrestricted_security_context: bool = False
    # A NetworkPolicy per InferenceService (spec.networkPolicy.enabled overrides this default):
    # inference ports open to the cluster, the metrics port only to the pods these select.
    # Equality-based label selectors "key=value,..." (see selectors.py); an empty namespace
    # selector means every namespace, an empty pod selector every pod of those namespaces.
    network_policy: bool = True
    metrics_namespace_selector: str = "kubernetes.io/metadata.name=monitoring"
    metrics_pod_selector: str = ""
    # Where the operator itself runs (the chart sets both): its pods may reach the metrics port
    # too, since sequential analysis reads Triton's counters directly. "" for neither.
    operator_namespace: str = ""
    operator_pod_selector: str = ""
    # YAML/JSON file listing notification sinks (webhook, Slack, Teams), re-read when it
    # changes; None: no notifications. docs/notifications.md.
    notifications_file: str | None = None

    def __post_init__(self) -> None:
        # Fail at start, not at the first NetworkPolicy built or the first tick: the flags are
        # checked by the CLI's parser, but TRITONOP_* variables only reach here.
        parse_selector(self.metrics_namespace_selector)
        parse_selector(self.metrics_pod_selector)
        parse_selector(self.operator_pod_selector)
        if not (self.tick_seconds > 0 and math.isfinite(self.tick_seconds)):
            raise ValueError(f"tick_seconds must be a positive number of seconds, not {self.tick_seconds}")
        if not (self.prometheus_timeout_seconds > 0 and math.isfinite(self.prometheus_timeout_seconds)):
            raise ValueError(f"prometheus_timeout_seconds must be positive, not {self.prometheus_timeout_seconds}")
        if self.api_concurrency < 1:
            raise ValueError(f"api_concurrency must be at least 1, not {self.api_concurrency}")
        if not 1 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be in 1..65535, not {self.metrics_port}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> OperatorConfig:
        """Defaults, then TRITONOP_<FIELD> environment variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"TRITONOP_{f.name.upper()}")
            if raw is None:
                continue
            if f.name in ("namespaces", "allowed_prometheus_urls", "allowed_file_paths"):
                values[f.name] = tuple(item for item in raw.split(",") if item)
            elif f.name == "prometheus_headers":  # one per line: a header value may hold commas
                values[f.name] = tuple(line for line in raw.splitlines() if line.strip())
            elif f.type in ("int", int, "float", float):
                try:
                    values[f.name] = int(raw) if f.type in ("int", int) else float(raw)
                except ValueError:
                    raise ValueError(f"TRITONOP_{f.name.upper()}={raw!r} is not a number") from None
            elif f.type in ("bool", bool):
                values[f.name] = _parse_bool(f.name, raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _parse_bool(name: str, raw: str) -> bool:
    """An environment variable's boolean: true/false, 1/0, yes/no, on/off (any case)."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"TRITONOP_{name.upper()}={raw!r} is not a boolean (true or false)")
