"""A write the API server refuses, said to the user: which verb on which resource, and why.

- **Forbidden** (403 from RBAC): the operator's permissions come from the chart's ClusterRole
  (or, with watchNamespaces, a Role per namespace); one is missing.
- **Rejected** (400 or 422, or a 403 from admission control): the server or a policy of
  the cluster refuses the object itself: a child the API server finds invalid although the
  CRD admitted the spec, a status the CRD's schema refuses, a webhook's denial.

Every pass that needs the write fails the same way until someone acts; the InferenceService
says so in its conditions (the reason above) and in a Warning Event, instead of only in the
operator's log, and the pass is retried with back-off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tritonop.kube.client import KubeError

REASON = "Forbidden"
REJECTED = "Rejected"
REASONS = (REASON, REJECTED)
# Back-off between the timer's retries of a forbidden pass: 1 s, 2 s, 4 s ... at most this.
MAX_BACKOFF_S = 60.0

# The API server's RBAC refusal: ... cannot patch resource "services" in API group "" in the namespace "ml"
_REFUSAL = re.compile(
    r'cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)
_VERB_OF_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# How the API server words an admission denial, a 403 that RBAC did not cause: a webhook's, or
# a ValidatingAdmissionPolicy's whose validation says reason Forbidden (Invalid is a 422).
_ADMISSION = ("admission webhook", "ValidatingAdmissionPolicy")
# Our own client's message: "<METHOD> <path>: <server message>".
_REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S+?):")


def reason(err: BaseException) -> str | None:
    """REASON or REJECTED for a refused request; None for any other error (retried as it is)."""
    if not isinstance(err, KubeError):
        return None
    if err.status == 403:
        return REJECTED if any(words in err.message for words in _ADMISSION) else REASON
    return REJECTED if err.status in (400, 422) else None


def describe(err: KubeError, namespace: str) -> str:
    """One line: what was refused, and where to grant it or why it was refused."""
    verb, resource, where = _refused(err.message, namespace)
    if reason(err) == REJECTED:
        return (
            f"rejected: the API server refused to {verb} {resource} in namespace {where}; it said: {_server_said(err)}"
        )
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
    """When a refused object's next retry may run: doubling from 1 s up to MAX_BACKOFF_S."""

    failures: int = 0
    not_before: datetime | None = None

    def failed(self, now: datetime) -> None:
        self.failures += 1
        self.not_before = now + timedelta(seconds=min(2.0 ** (self.failures - 1), MAX_BACKOFF_S))

    def due(self, now: datetime) -> bool:
        return self.not_before is None or now >= self.not_before
