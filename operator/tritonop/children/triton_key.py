"""Triton's control API, closed by default: the per-InferenceService key, its Secret, its flags.

tritonserver answers everything on its HTTP and gRPC ports to anyone who can reach them;
its control categories (load and unload models, model config, shared memory, trace and
log settings) would let any pod on the cluster network unload the model or load one from
a file override, running code in a pod that holds the storage credentials. Every revision
therefore starts Triton with those categories restricted to requests carrying the header
``KEY_HEADER`` with this InferenceService's key; inference, health, metadata and
statistics stay open.

The key is derived, never stored by the operator: HMAC-SHA256(operator secret, object
uid), hex. The pod gets it from the Secret ``NAME-triton-key`` (owned by the
InferenceService) through the env var ``KEY_ENV``, and the tritonserver args refer to it
as ``$(KEY_ENV)``, which the kubelet expands: the key never appears in the Deployment,
in status, in Events or in logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tritonop.children.labels import isvc_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.refs import IsvcRef

# The header Triton checks on restricted requests (lowercase: gRPC metadata keys must be).
KEY_HEADER = "tritonop-key"
# What a gRPC caller sends: Triton (2.51) prefixes the configured header name on gRPC.
GRPC_KEY_HEADER = f"triton-grpc-protocol-{KEY_HEADER}"
# The Triton container's env var holding the key, and the Secret's data key it comes from.
KEY_ENV = "TRITONOP_API_KEY"
SECRET_DATA_KEY = "key"
SECRET_SUFFIX = "-triton-key"
# Triton's (2.51) category names; health, metadata, inference and statistics stay open.
RESTRICTED_APIS = ("model-repository", "model-config", "shared-memory", "trace", "logging")


def derive_key(operator_secret: bytes, uid: str) -> str:
    """The key of the InferenceService with ``uid``: 64 hex characters, stable per uid."""
    return hmac.new(operator_secret, uid.encode(), hashlib.sha256).hexdigest()


def key_secret_name(ref: IsvcRef) -> str:
    return f"{ref.name}{SECRET_SUFFIX}"


def restricted_api_args() -> list[str]:
    """tritonserver flags restricting the control categories on HTTP and gRPC to the key."""
    restriction = f"{','.join(RESTRICTED_APIS)}:{KEY_HEADER}=$({KEY_ENV})"
    return [f"--http-restricted-api={restriction}", f"--grpc-restricted-protocol={restriction}"]


def key_env(ref: IsvcRef) -> dict[str, Any]:
    """The container env entry that brings the key from the Secret (for ``$(KEY_ENV)``)."""
    return {
        "name": KEY_ENV,
        "valueFrom": {"secretKeyRef": {"name": key_secret_name(ref), "key": SECRET_DATA_KEY}},
    }


def build_key_secret(ref: IsvcRef, key: str) -> dict[str, Any]:
    """The Secret ``NAME-triton-key`` holding ``key``, owned by the InferenceService."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_metadata(ref, key_secret_name(ref), isvc_labels(ref.name)),
        "type": "Opaque",
        "data": {SECRET_DATA_KEY: base64.b64encode(key.encode()).decode()},
    }
