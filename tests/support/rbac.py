"""What a rendered chart's RBAC lets the operator's ServiceAccount do.

Follows (Cluster)RoleBindings to the (Cluster)Roles they grant and evaluates requests
the way the Kubernetes RBAC authorizer does: wildcards, `*/subresource`, resourceNames,
and namespace scope (a RoleBinding grants only inside its namespace).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"


def _is_rbac(obj: dict[str, Any], kind: str) -> bool:
    return obj.get("kind") == kind and str(obj.get("apiVersion", "")).startswith(f"{RBAC_GROUP}/")


def _binds_service_account(binding: dict[str, Any], service_account: str | None) -> bool:
    for subject in binding.get("subjects") or []:
        if subject.get("kind") == "ServiceAccount" and service_account in (None, subject.get("name")):
            return True
    return False


def load_rules(rendered_objects: Iterable[dict[str, Any]], service_account: str | None = None) -> list[dict[str, Any]]:
    """The policy rules bound to a ServiceAccount (any, when service_account is None).

    Each rule is a copy of the Role/ClusterRole rule plus `namespace`: None when granted
    cluster-wide (ClusterRoleBinding), else the namespace of the RoleBinding granting it.
    Roles no binding references (e.g. aggregated user roles) grant nothing and are left out.
    """
    objects = [obj for obj in rendered_objects if obj]
    cluster_roles = {o["metadata"]["name"]: o for o in objects if _is_rbac(o, "ClusterRole")}
    roles = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if _is_rbac(o, "Role")}
    rules: list[dict[str, Any]] = []
    for binding in objects:
        is_cluster_binding = _is_rbac(binding, "ClusterRoleBinding")
        if not (is_cluster_binding or _is_rbac(binding, "RoleBinding")):
            continue
        if not _binds_service_account(binding, service_account):
            continue
        namespace = None if is_cluster_binding else binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = cluster_roles.get(ref["name"]) if ref["kind"] == "ClusterRole" else roles.get((namespace, ref["name"]))
        for rule in (role or {}).get("rules") or []:
            rules.append({**rule, "namespace": namespace})
    return rules


def _resource_matches(rule_resources: list[str], resource: str, subresource: str | None) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for granted in rule_resources:
        if granted in ("*", combined):
            return True
        if subresource and granted == f"*/{subresource}":
            return True
    return False


def is_allowed(
    rules: Iterable[dict[str, Any]],
    verb: str,
    group: str,
    resource: str,
    subresource: str | None = None,
    *,
    namespace: str | None = None,
    name: str | None = None,
) -> bool:
    """Whether any rule allows the request.

    group is "" for the core API. namespace None means a cluster-scoped or all-namespaces
    request, which only cluster-wide grants allow; a namespaced request is allowed by a
    cluster-wide grant or by one in that namespace. name is the object name, if the request
    names one; rules with resourceNames allow only named requests for those names.
    """
    for rule in rules:
        if rule.get("namespace") not in (None, namespace):
            continue
        if not ({"*", verb} & set(rule.get("verbs") or [])):
            continue
        if not ({"*", group} & set(rule.get("apiGroups") or [])):
            continue
        if not _resource_matches(rule.get("resources") or [], resource, subresource):
            continue
        resource_names = rule.get("resourceNames") or []
        if resource_names and name not in resource_names:
            continue
        return True
    return False
