"""What the operator's administrator allows specs to ask for, beyond what the CRD admits.

Two fields would otherwise reach outside the object's namespace: a per-spec Prometheus URL
(the operator would send requests anywhere: SSRF) and `file://` storage (a hostPath onto
any node directory), an experiment variant's storage included. Both are off unless the operator is told otherwise (flags
`--allow-prometheus-url` and `--allow-file-path`, docs/security.md). A spec asking for
more gets Stalled with the reason; no request is sent, no volume mounted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.errors import BuildError
from tritonop.config import OperatorConfig
from tritonop.redact import redact_uri


def check_spec(spec: InferenceServiceSpec, config: OperatorConfig) -> None:
    """BuildError unless every operator-level restriction holds for ``spec``."""
    url = spec.rollout.analysis.prometheus_url
    if url is not None and not prometheus_url_allowed(url, config):
        allowed = ", ".join(redact_uri(u) for u in allowed_prometheus_urls(config))
        raise BuildError(
            "PrometheusUrlNotAllowed",
            f"rollout.analysis.prometheusUrl {redact_uri(url)} is not one the operator may query "
            f"(allowed: {allowed}); ask the operator's administrator to allow it (--allow-prometheus-url)",
        )
    experiment = spec.rollout.experiment
    uris = [("model.storageUri", spec.model.storage_uri)] + [
        (f"rollout.experiment.variants[{v.name}].model.storageUri", v.model.storage_uri)
        for v in (experiment.variants if experiment is not None else [])
        if v.model.storage_uri is not None
    ]
    for field, uri in uris:
        if uri.startswith("file://") and not file_path_allowed(uri.removeprefix("file://"), config):
            allowed = ", ".join(config.allowed_file_paths) or "none"
            raise BuildError(
                "FileStorageNotAllowed",
                f"{field} file:// mounts a node directory, which this operator allows only under "
                f"its --allow-file-path prefixes (allowed: {allowed})",
            )


def allowed_prometheus_urls(config: OperatorConfig) -> tuple[str, ...]:
    return (config.prometheus_url, *config.allowed_prometheus_urls)


def prometheus_url_allowed(url: str, config: OperatorConfig) -> bool:
    """Same scheme, host and port as an allowed URL, its path a prefix; no userinfo, query or fragment."""
    try:
        wanted = urlsplit(url)
        if wanted.username or wanted.password or wanted.query or wanted.fragment:
            return False
        for allowed in allowed_prometheus_urls(config):
            base = urlsplit(allowed)
            same_server = (wanted.scheme, wanted.hostname, wanted.port) == (base.scheme, base.hostname, base.port)
            if same_server and _path_within(wanted.path, base.path):
                return True
    except ValueError:
        return False
    return False


def file_path_allowed(path: str, config: OperatorConfig) -> bool:
    return any(_path_within(path, prefix) for prefix in config.allowed_file_paths)


def _path_within(path: str, prefix: str) -> bool:
    segments = [s for s in path.split("/") if s]
    base = [s for s in prefix.split("/") if s]
    return ".." not in segments and segments[: len(base)] == base
