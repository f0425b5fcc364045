"""Where Triton reads its model repository from: volumes, env and init containers per storageUri scheme.

See docs/storage.md for what each scheme needs from the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tritonop.api.models import ModelSource
from tritonop.children.errors import BuildError
from tritonop.children.security import container_security_context
from tritonop.config import OperatorConfig
from tritonop.redact import redact_uri

MODEL_MOUNT = "/mnt/models"
MODEL_VOLUME = "model-repository"
CREDENTIALS_VOLUME = "storage-credentials"
CREDENTIALS_MOUNT = "/var/run/secrets/tritonop/storage"
GCS_CREDENTIALS_FILE = f"{CREDENTIALS_MOUNT}/credentials.json"
FETCH_CONTAINER = "fetch-model"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
# Schemes tritonserver reads itself; credentials come from the environment.
NATIVE_SCHEMES = ("s3", "gs", "as")
CLAIM_NAME = re.compile(r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class StorageMount:
    """What the pod template needs so that ``repository`` is readable by tritonserver."""

    repository: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    env_from: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def storage_for(model: ModelSource, config: OperatorConfig) -> StorageMount:
    """The StorageMount for model.storageUri; BuildError for URIs the builders cannot serve."""
    uri = model.storage_uri
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest:
        raise BuildError("UnsupportedStorageUri", f"storageUri {redact_uri(uri)!r} has no scheme://")
    if model.storage_secret_name and scheme not in NATIVE_SCHEMES:
        raise BuildError(
            "UnsupportedStorageSecret",
            f"storageSecretName is used only with s3://, gs:// and as:// storage, not {scheme}://",
        )
    if scheme in ("s3", "as"):
        return _native(uri, model.storage_secret_name)
    if scheme == "gs":
        return _gcs(uri, model.storage_secret_name)
    if scheme == "pvc":
        return _pvc(rest)
    if scheme in ("http", "https"):
        return _archive(uri, config)
    if scheme == "file":
        return _host_path(rest)
    raise BuildError("UnsupportedStorageUri", f"storageUri scheme {scheme}:// is not supported")


def _native(uri: str, secret_name: str | None) -> StorageMount:
    env_from = [{"secretRef": {"name": secret_name}}] if secret_name else []
    return StorageMount(repository=uri, env_from=env_from)


def _gcs(uri: str, secret_name: str | None) -> StorageMount:
    # Google's client libraries read a key file, not key values from the environment.
    if not secret_name:
        return StorageMount(repository=uri)
    return StorageMount(
        repository=uri,
        volumes=[{"name": CREDENTIALS_VOLUME, "secret": {"secretName": secret_name}}],
        volume_mounts=[{"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_MOUNT, "readOnly": True}],
        env=[{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": GCS_CREDENTIALS_FILE}],
    )


def _pvc(rest: str) -> StorageMount:
    claim, _, sub_path = rest.partition("/")
    if not CLAIM_NAME.match(claim) or len(claim) > 253:
        raise BuildError("InvalidStorageUri", f"pvc:// claim name {claim!r} is not a valid claim name")
    segments = _path_segments(sub_path, f"pvc://{rest}")
    return StorageMount(
        repository="/".join([MODEL_MOUNT, *segments]),
        volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        volume_mounts=[_model_mount(read_only=True)],
    )


def _archive(uri: str, config: OperatorConfig) -> StorageMount:
    path = urlsplit(uri).path.lower()
    suffix = next((s for s in ARCHIVE_SUFFIXES if path.endswith(s)), None)
    if suffix is None:
        raise BuildError(
            "UnsupportedStorageUri",
            f"http(s) storageUri must point to a .tar.gz, .tgz or .zip archive: {redact_uri(uri)}",
        )
    archive = f"{MODEL_MOUNT}/.archive"
    extract = f"unzip -q -o {archive} -d {MODEL_MOUNT}" if suffix == ".zip" else f"tar -xzf {archive} -C {MODEL_MOUNT}"
    # The URL travels in an env var, never inside the script, so no URL can inject shell.
    script = f'set -eu; curl -fsSL --retry 3 -o {archive} "$MODEL_ARCHIVE_URL"; {extract}; rm -f {archive}'
    fetch = {
        "name": FETCH_CONTAINER,
        "image": config.init_image,
        "command": ["sh", "-c", script],
        "env": [{"name": "MODEL_ARCHIVE_URL", "value": uri}],
        "securityContext": container_security_context(),
        "volumeMounts": [_model_mount(read_only=False)],
    }
    return StorageMount(
        repository=MODEL_MOUNT,
        volumes=[{"name": MODEL_VOLUME, "emptyDir": {}}],
        volume_mounts=[_model_mount(read_only=True)],
        init_containers=[fetch],
    )


def _host_path(rest: str) -> StorageMount:
    segments = _path_segments(rest, f"file://{rest}")
    if not rest.startswith("/") or not segments:
        raise BuildError("InvalidStorageUri", f"file:// storageUri needs an absolute directory: file://{rest}")
    return StorageMount(
        repository=MODEL_MOUNT,
        volumes=[{"name": MODEL_VOLUME, "hostPath": {"path": "/" + "/".join(segments), "type": "Directory"}}],
        volume_mounts=[_model_mount(read_only=True)],
    )


def _path_segments(path: str, uri: str) -> list[str]:
    segments = [s for s in path.split("/") if s and s != "."]
    if ".." in segments:
        raise BuildError("InvalidStorageUri", f"storageUri {redact_uri(uri)} must not contain '..'")
    return segments


def _model_mount(*, read_only: bool) -> dict[str, Any]:
    return {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": read_only}
