"""The restricted Pod Security settings of Triton pods and their init containers."""

from __future__ import annotations

from typing import Any

# The uid of the triton-server user in NVIDIA's tritonserver images.
TRITON_UID = 1000
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": TRITON_UID,
        "runAsGroup": TRITON_UID,
        "fsGroup": TRITON_UID,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": TRITON_UID,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }
