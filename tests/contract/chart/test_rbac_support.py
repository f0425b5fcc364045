"""tests/support/rbac.py: the RBAC evaluation the lead's sufficiency check relies on."""

from __future__ import annotations

from typing import Any

from tests.support.rbac import is_allowed, load_rules

RBAC = "rbac.authorization.k8s.io/v1"


def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def role(name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": rules}


def binding(
    kind: str, name: str, role_kind: str, role_name: str, account: str, namespace: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "ops"}],
    }


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def test_cluster_binding_grants_in_every_namespace_and_cluster_wide() -> None:
    objects = [
        cluster_role("op", [rule(["apps"], ["deployments"], ["get", "list"])]),
        binding("ClusterRoleBinding", "op", "ClusterRole", "op", "operator"),
    ]
    rules = load_rules(objects, "operator")
    assert rules == [{**rule(["apps"], ["deployments"], ["get", "list"]), "namespace": None}]
    assert is_allowed(rules, "list", "apps", "deployments")
    assert is_allowed(rules, "get", "apps", "deployments", namespace="ml")
    assert not is_allowed(rules, "delete", "apps", "deployments", namespace="ml")
    assert not is_allowed(rules, "get", "", "deployments", namespace="ml")  # wrong group


def test_role_binding_grants_only_in_its_namespace() -> None:
    objects = [
        role("op", "ml", [rule([""], ["services"], ["create"])]),
        binding("RoleBinding", "op", "Role", "op", "operator", namespace="ml"),
    ]
    rules = load_rules(objects)
    assert is_allowed(rules, "create", "", "services", namespace="ml")
    assert not is_allowed(rules, "create", "", "services", namespace="other")
    assert not is_allowed(rules, "create", "", "services")  # cluster-wide request


def test_role_binding_to_a_cluster_role_is_scoped_to_the_binding_namespace() -> None:
    objects = [
        cluster_role("reader", [rule([""], ["configmaps"], ["get"])]),
        binding("RoleBinding", "op", "ClusterRole", "reader", "operator", namespace="ml"),
    ]
    rules = load_rules(objects)
    assert is_allowed(rules, "get", "", "configmaps", namespace="ml")
    assert not is_allowed(rules, "get", "", "configmaps", namespace="kube-system")


def test_role_of_another_namespace_is_not_granted() -> None:
    objects = [
        role("op", "elsewhere", [rule([""], ["services"], ["create"])]),
        binding("RoleBinding", "op", "Role", "op", "operator", namespace="ml"),
    ]
    assert load_rules(objects) == []


def test_unbound_roles_and_other_accounts_grant_nothing() -> None:
    objects = [
        cluster_role("unbound", [rule(["*"], ["*"], ["*"])]),
        cluster_role("theirs", [rule([""], ["pods"], ["get"])]),
        binding("ClusterRoleBinding", "theirs", "ClusterRole", "theirs", "someone-else"),
    ]
    assert load_rules(objects, "operator") == []
    assert len(load_rules(objects)) == 1  # any service account


def test_subresources_need_their_own_grant() -> None:
    rules = [{**rule(["serving.tritonop.dev"], ["inferenceservices"], ["patch"]), "namespace": None}]
    assert is_allowed(rules, "patch", "serving.tritonop.dev", "inferenceservices")
    assert not is_allowed(rules, "patch", "serving.tritonop.dev", "inferenceservices", "status")
    status_rules = [{**rule(["serving.tritonop.dev"], ["inferenceservices/status"], ["patch"]), "namespace": None}]
    assert is_allowed(status_rules, "patch", "serving.tritonop.dev", "inferenceservices", "status")
    assert not is_allowed(status_rules, "patch", "serving.tritonop.dev", "inferenceservices")


def test_wildcards() -> None:
    any_status = [{**rule(["*"], ["*/status"], ["get"]), "namespace": None}]
    assert is_allowed(any_status, "get", "apps", "deployments", "status")
    assert not is_allowed(any_status, "get", "apps", "deployments")
    everything = [{**rule(["apps"], ["*"], ["*"]), "namespace": None}]
    assert is_allowed(everything, "deletecollection", "apps", "deployments", "scale")
    assert not is_allowed(everything, "get", "batch", "jobs")


def test_resource_names_restrict_to_named_requests() -> None:
    rules = [{**rule([""], ["secrets"], ["get"], resourceNames=["creds"]), "namespace": None}]
    assert is_allowed(rules, "get", "", "secrets", namespace="ml", name="creds")
    assert not is_allowed(rules, "get", "", "secrets", namespace="ml", name="other")
    assert not is_allowed(rules, "get", "", "secrets", namespace="ml")


def test_non_rbac_objects_are_ignored() -> None:
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "operator", "namespace": "ops"}},
        {"apiVersion": "example.com/v1", "kind": "ClusterRole", "metadata": {"name": "fake"}, "rules": []},
    ]
    assert load_rules(objects) == []
