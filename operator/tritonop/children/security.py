"""The security settings of Triton pods and their containers, and the Pod Security "restricted" check.

By default every pod meets the restricted level. ``triton.podSecurityContext`` and
``triton.securityContext`` replace the defaults; what they make of the pod is checked
against restricted (``restricted_violations``) unless the operator runs with
--allow-unrestricted-security-context. The check covers the security contexts only:
the spec offers no host namespaces, host ports or hostPath volumes (``file://`` storage
has its own allowlist, --allow-file-path).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tritonop.api.models import TritonRuntime

# The uid of the triton-server user in NVIDIA's tritonserver images.
TRITON_UID = 1000
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}
# What Pod Security "restricted" allows (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
RESTRICTED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)
RESTRICTED_SECCOMP = ("RuntimeDefault", "Localhost")
RESTRICTED_SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
NOT_RESTRICTED = "SecurityContextNotRestricted"


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


def pod_context_of(triton: TritonRuntime) -> dict[str, Any]:
    """The pod's securityContext: triton.podSecurityContext, else the defaults."""
    if triton.pod_security_context is not None:
        return copy.deepcopy(dict(triton.pod_security_context))
    return pod_security_context()


def container_context_of(triton: TritonRuntime) -> dict[str, Any]:
    """The Triton container's securityContext, also that of containers that set none of their own.

    triton.securityContext, else the defaults; with only a podSecurityContext the defaults
    leave the user to the pod, so its runAsUser is the one that counts (or, without one,
    OpenShift's assigned UID).
    """
    if triton.security_context is not None:
        return copy.deepcopy(dict(triton.security_context))
    context = container_security_context()
    if triton.pod_security_context is not None:
        del context["runAsUser"]
    return context


def restricted_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """What keeps a pod spec's security contexts out of Pod Security restricted, one phrase each.

    Containers with the same problem are named together, so the Triton container and the
    init containers that share its context read as one finding.
    """
    pod = pod_spec.get("securityContext") or {}
    found = [f"podSecurityContext: {problem}" for problem in _common_problems(pod)]
    if pod.get("runAsNonRoot") is False:
        found.append("podSecurityContext: runAsNonRoot must not be false")
    by_problem: dict[str, list[str]] = {}
    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for problem in _container_problems(container.get("securityContext") or {}, pod):
            by_problem.setdefault(problem, []).append(container["name"])
    for problem, names in by_problem.items():
        found.append(f"{'container' if len(names) == 1 else 'containers'} {', '.join(names)}: {problem}")
    return found


def _common_problems(context: Mapping[str, Any]) -> list[str]:
    """What pod-level and container-level contexts are checked alike for."""
    problems = []
    if context.get("runAsUser") == 0:
        problems.append("runAsUser must not be 0 (root)")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in RESTRICTED_SECCOMP:
        problems.append(f"seccompProfile.type must be RuntimeDefault or Localhost, not {seccomp}")
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append("appArmorProfile.type must not be Unconfined")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in RESTRICTED_SELINUX_TYPES:
        problems.append(f"seLinuxOptions.type must be one of {', '.join(RESTRICTED_SELINUX_TYPES[1:])}")
    if selinux.get("user") or selinux.get("role"):
        problems.append("seLinuxOptions must not set user or role")
    return problems


def _container_problems(context: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    problems = _common_problems(context)
    if context.get("privileged") is True:
        problems.append("privileged must not be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities.drop must hold ALL")
    added = [c for c in capabilities.get("add") or [] if c not in RESTRICTED_ADDED_CAPABILITIES]
    if added:
        problems.append(f"capabilities.add may hold only NET_BIND_SERVICE, not {', '.join(added)}")
    # Pod-level runAsNonRoot and seccomp cover the containers that leave them unset.
    run_as_non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot"))
    if run_as_non_root is not True:
        problems.append("runAsNonRoot must be true (in the pod or the container)")
    if "seccompProfile" not in context and "seccompProfile" not in pod:
        problems.append("seccompProfile must be set (RuntimeDefault or Localhost, in the pod or the container)")
    return problems
