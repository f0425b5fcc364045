"""The operator's RBAC as rendered: exactly the API calls the operator makes, no more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.helm import objects_of_kind, the_object
from tests.support.rbac import is_allowed, load_rules
from tritonop.kinds import CHILD_KINDS
from tritonop.kube.cache import WATCHED

Render = Callable[[str], list[dict[str, Any]]]
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

# Children are read, server-side applied and deleted. Creation is a server-side apply as well,
# which the API server authorizes as both `patch` and `create`.
CHILD_VERBS = ("get", "create", "patch", "delete")
# Every kind the operator creates (the registry in tritonop.kinds, which the client's URL
# paths and the prune lists also come from).
CHILDREN = [(kind.group, kind.plural) for kind in CHILD_KINDS]


def grants(*entries: tuple[str, str, tuple[str, ...]]) -> set[Grant]:
    return {(group, resource, verb) for group, resource, verbs in entries for verb in verbs}


# What the operator does inside a namespace it serves (the contract in the chart's brief).
NAMESPACED_GOLDEN = grants(
    ("serving.tritonop.dev", "inferenceservices", ("list", "watch", "patch")),
    ("serving.tritonop.dev", "inferenceservices/status", ("patch",)),
    ("", "events", ("create",)),
    ("", "secrets", ("create", "patch")),  # each InferenceService's Triton key Secret, written blind
    ("", "pods/eviction", ("create",)),  # InPlace: a wedged pod (controller/in_place.py)
    *[(group, resource, CHILD_VERBS) for group, resource in CHILDREN],
    # The watch caches' kinds (tritonop/kube/cache.py: children and tritonop's pods).
    *[(w.kind.group, w.kind.plural, ("list", "watch")) for w in WATCHED],
)
CRD_SCAN = grants(("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")))
CLUSTER_GOLDEN = (
    NAMESPACED_GOLDEN
    | CRD_SCAN
    | grants(
        ("", "namespaces", ("list", "watch")),
        ("kopf.dev", "clusterkopfpeerings", ("list", "watch", "patch")),
    )
)
ROLE_GOLDEN = NAMESPACED_GOLDEN | grants(("kopf.dev", "kopfpeerings", ("list", "watch", "patch")))


def flatten(rules: list[dict[str, Any]]) -> set[Grant]:
    found: set[Grant] = set()
    for rule in rules:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    found.add((group, resource, verb))
    return found


def test_cluster_role_grants_exactly_the_contract(render: Render) -> None:
    objects = render("default")
    role = the_object(objects, "ClusterRole", "tritonop")
    assert flatten(role["rules"]) == CLUSTER_GOLDEN
    assert not objects_of_kind(objects, "Role")


def test_cluster_role_is_bound_to_the_operator_service_account(render: Render) -> None:
    objects = render("default")
    binding = the_object(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "tritonop"}
    account = the_object(objects, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "tritonop-system"}
    ]
    assert flatten(load_rules(objects, account["metadata"]["name"])) == CLUSTER_GOLDEN


def test_namespaced_mode_grants_roles_per_watched_namespace(render: Render, watched_namespaces: list[str]) -> None:
    objects = render("namespaced")
    for namespace in watched_namespaces:
        role = the_object(objects, "Role", "tritonop", namespace)
        assert flatten(role["rules"]) == ROLE_GOLDEN
        binding = the_object(objects, "RoleBinding", "tritonop", namespace)
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] == "tritonop"
        assert binding["subjects"][0]["namespace"] == "tritonop-system"
    # Cluster-wide, only what kopf must read across the cluster.
    assert flatten(the_object(objects, "ClusterRole", "tritonop-crd-scan")["rules"]) == CRD_SCAN


def test_namespaced_mode_allows_nothing_outside_watched_namespaces(
    render: Render, watched_namespaces: list[str]
) -> None:
    rules = load_rules(render("namespaced"), "tritonop")
    for namespace in watched_namespaces:
        assert is_allowed(rules, "patch", "serving.tritonop.dev", "inferenceservices", "status", namespace=namespace)
        assert is_allowed(rules, "create", "apps", "deployments", namespace=namespace)
        assert is_allowed(rules, "patch", "kopf.dev", "kopfpeerings", namespace=namespace)
    assert not is_allowed(rules, "create", "apps", "deployments", namespace="kube-system")
    assert not is_allowed(rules, "list", "serving.tritonop.dev", "inferenceservices")  # all namespaces
    assert not is_allowed(rules, "list", "", "namespaces")
    assert is_allowed(rules, "watch", "apiextensions.k8s.io", "customresourcedefinitions")


def test_operator_never_reads_secrets(render: Render) -> None:
    """Storage credentials go from the Secret to the pod; a missing one is the kubelet's to report."""
    rules = load_rules(render("default"), "tritonop")
    for verb in ("get", "list", "watch"):
        assert not is_allowed(rules, verb, "", "secrets", namespace="ml", name="model-creds")


def test_children_may_be_created_by_server_side_apply(render: Render) -> None:
    """Children are created by a server-side apply (a PATCH), never a POST: a POST makes an
    `Update` manager own the fields it wrote, which a later apply never removes
    (kubernetes#99003). The API server authorizes an apply that creates as `patch` and as
    `create` (tests/integration/control_plane/test_operator_on_real_apiserver.py: without
    `create` it answers 403 "cannot create resource")."""
    rules = load_rules(render("default"), "tritonop")
    for kind in CHILD_KINDS:
        for verb in ("patch", "create"):
            assert is_allowed(rules, verb, kind.group, kind.plural, namespace="ml"), (verb, kind.plural)


def test_operator_never_writes_inference_service_specs_or_pods(render: Render) -> None:
    rules = load_rules(render("default"), "tritonop")
    for verb in ("create", "update", "delete"):
        assert not is_allowed(rules, verb, "serving.tritonop.dev", "inferenceservices", namespace="ml")
    assert not is_allowed(rules, "create", "", "pods", namespace="ml")
    assert not is_allowed(rules, "update", "apps", "deployments", namespace="ml")


def test_user_roles_aggregate_but_are_not_bound_to_the_operator(render: Render) -> None:
    objects = render("default")
    edit = the_object(objects, "ClusterRole", "tritonop-inferenceservice-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    view = the_object(objects, "ClusterRole", "tritonop-inferenceservice-view")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert ("serving.tritonop.dev", "inferenceservices", "create") in flatten(edit["rules"])
    assert flatten(view["rules"]) == grants(
        ("serving.tritonop.dev", "inferenceservices", ("get", "list", "watch")),
        ("serving.tritonop.dev", "inferenceservices/status", ("get", "list", "watch")),
    )
    bound = {b["roleRef"]["name"] for b in objects_of_kind(objects, "ClusterRoleBinding")}
    assert bound == {"tritonop"}


def test_operator_writes_triton_key_secrets_but_never_lists_watches_or_deletes_them(render: Render) -> None:
    rules = load_rules(render("default"), "tritonop")
    for verb in ("create", "patch"):
        assert is_allowed(rules, verb, "", "secrets", namespace="ml", name="resnet-triton-key")
    for verb in ("list", "watch", "update", "delete"):
        assert not is_allowed(rules, verb, "", "secrets", namespace="ml", name="resnet-triton-key")
