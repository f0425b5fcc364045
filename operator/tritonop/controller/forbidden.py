"""A 403 from the API server, said to the user: which verb on which resource RBAC refused.

The operator's permissions come from the chart's ClusterRole (or, with watchNamespaces, a
Role per namespace). When one is missing, every pass that needs it fails the same way; the
InferenceService says so in its conditions (reason `Forbidden`) and in a Warning Event,
instead of only in the operator's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tritonop.kube.client import KubeError

REASON = "Forbidden"
# Back-off between the timer's retries of a forbidden pass: 1 s, 2 s, 4 s ... at most this.
MAX_BACKOFF_S = 60.0

# The API server's RBAC refusal: ... cannot patch resource "services" in API group "" in the namespace "ml"
_REFUSAL = re.compile(
    r'cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)
_VERB_OF_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Our own client's message: "<METHOD> <path>: <server message>".
_REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S+?):")


def is_forbidden(err: BaseException) -> bool:
    return isinstance(err, KubeError) and err.status == 403


def describe(err: KubeError, namespace: str) -> str:
    """One line: what was refused and where to grant it."""
    verb, resource, where = _refused(err.message, namespace)
    return (
        f"forbidden: tritonop cannot {verb} {resource} in namespace {where}: grant it in the chart's "
        f"ClusterRole (or the Role in this namespace with watchNamespaces); the API server said: {_server_said(err)}"
    )


def _refused(message: str, namespace: str) -> tuple[str, str, str]:
    found = _REFUSAL.search(message)
    if found:
        group = found["group"]
        resource = f"{found['resource']}.{group}" if group else found["resource"]
        return found["verb"], resource, found["namespace"] or namespace
    request = _REQUEST.match(message)
    if request:
        verb = _VERB_OF_METHOD.get(request["method"], request["method"].lower())
        parts = request["path"].split("/")
        resource = parts[parts.index("namespaces") + 2] if "namespaces" in parts[:-2] else "an object"
        if "namespaces" in parts[:-2] and parts[1] == "apis":
            resource = f"{resource}.{parts[2]}"
        if verb == "get" and parts[-1] == resource.split(".")[0]:
            verb = "list"
        return verb, resource, namespace
    return "access", "an object", namespace


def _server_said(err: KubeError) -> str:
    request = _REQUEST.match(err.message)
    return err.message[request.end() :].strip() if request else err.message


@dataclass
class Backoff:
    """When a forbidden object's next retry may run: doubling from 1 s up to MAX_BACKOFF_S."""

    failures: int = 0
    not_before: datetime | None = None

    def failed(self, now: datetime) -> None:
        self.failures += 1
        self.not_before = now + timedelta(seconds=min(2.0 ** (self.failures - 1), MAX_BACKOFF_S))

    def due(self, now: datetime) -> bool:
        return self.not_before is None or now >= self.not_before
