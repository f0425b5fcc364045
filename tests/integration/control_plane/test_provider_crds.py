"""Every child the operator writes is admitted by the providers' REAL CRDs on a real
kube-apiserver: Gateway API HTTPRoute/GRPCRoute, Istio VirtualService, KEDA ScaledObject
(and the built-in Ingress, Deployment, Service, HPA, PDB, NetworkPolicy), each fetched
from its own Go module by scripts/fetch-crds (tests/support/provider_crds.py).

For every example in manifests/examples and every traffic provider, the children are
server-side applied with --dry-run=server in two states: as rendered (one revision at
100%) and mid-canary (a second revision at 25%, then scaled to 0 as after a rollback).
Negative cases prove the real schemas and their CEL rules are the ones judging.

Skipped when the binaries or CRDs are missing (`scripts/build-control-plane`,
`scripts/fetch-crds`), failed instead with TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.control_plane import REPO_ROOT, APIError, ControlPlane, eventually
from tests.support.provider_crds import FETCH_SCRIPT, PROVIDER_CRDS, install_provider_crds, provider_crd_files
from tritonop import KIND
from tritonop.api.models import TrafficTarget
from tritonop.children import IsvcRef, build_entry_service, build_revision, parse_spec, revision_of
from tritonop.children.variants import variant_specs
from tritonop.config import OperatorConfig
from tritonop.render import render
from tritonop.traffic import provider_for
from tritonop.traffic.routing import Mirror, Routing

pytestmark = pytest.mark.slow

TRITONOP_CRD = "inferenceservices.serving.tritonop.dev"
# As tests/contract/children: the defaults, plus the node folder local-file.yaml mounts.
CONFIG = OperatorConfig(allowed_file_paths=("/var/lib/tritonop",))
EXAMPLE_PATHS = sorted((REPO_ROOT / "manifests" / "examples").glob("*.yaml"))

# One traffic section per provider; an example already on that provider keeps its own.
PROVIDERS: dict[str, dict[str, Any]] = {
    "gateway-api": {
        "provider": "gateway-api",
        "gateway": {
            "parentRefs": [{"name": "inference-gateway", "namespace": "gateways", "sectionName": "http"}],
            "hostnames": ["models.example.com"],
            "grpc": True,
        },
    },
    "istio": {
        "provider": "istio",
        "istio": {"hosts": ["models.example.com"], "gateways": ["istio-ingress/public", "mesh"]},
    },
    "nginx": {"provider": "nginx", "nginx": {"host": "models.example.com", "ingressClassName": "nginx"}},
    "service": {"provider": "service"},
}
# The kinds each provider must write: a matrix that never built them would prove nothing.
PROVIDER_KINDS = {
    "gateway-api": {"HTTPRoute", "GRPCRoute"},
    "istio": {"VirtualService"},
    "nginx": {"Ingress"},
    "service": {"Service"},
}


def load_example(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == KIND]
    assert len(docs) == 1, f"{path} must hold exactly one {KIND}"
    return dict(docs[0])


def with_provider(isvc: dict[str, Any], provider: str) -> dict[str, Any]:
    obj = copy.deepcopy(isvc)
    if obj["spec"].get("traffic", {}).get("provider", "service") != provider:
        obj["spec"]["traffic"] = copy.deepcopy(PROVIDERS[provider])
    experiment = obj["spec"].get("rollout", {}).get("experiment") or {}
    if provider == "nginx" and experiment.get("variants"):
        del experiment["variants"]  # refused with nginx (one canary Ingress): its A/B stays
    return obj


def canary_children(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """Mid-canary: a second revision (other Triton args) at 25% beside the first, and an A/B/n
    experiment's variants beyond it at their weights (the first gets the rest), the entry
    Service over all, the provider's weighted routes, and the second revision scaled to 0 as
    after a rollback."""
    ref = IsvcRef.from_object(isvc)
    spec = parse_spec(isvc)
    stable = revision_of(spec)
    canary_spec = spec.model_copy(
        update={"triton": spec.triton.model_copy(update={"args": [*spec.triton.args, "--log-verbose=1"]})}
    )
    canary = revision_of(canary_spec)
    assert canary != stable
    provider = provider_for(spec)
    variants = variant_specs(canary_spec, None)
    weights = (
        {v.revision: w.weight for v, w in zip(variants, spec.rollout.experiment.variants, strict=True)}
        if (variants and spec.rollout.experiment is not None)
        else {}
    )
    targets = [
        TrafficTarget(revision=stable, percent=75 - sum(weights.values())),
        TrafficTarget(revision=canary, percent=25),
        *(TrafficTarget(revision=r, percent=w) for r, w in weights.items()),
    ]
    return [
        *build_revision(ref, canary_spec, canary, CONFIG, replicas=provider.canary_replicas(2, 25)),
        *(c for v in variants for c in build_revision(ref, v.spec, v.revision, CONFIG)),
        build_entry_service(ref, spec, CONFIG, revisions=[t.revision for t in targets]),
        *provider.build(ref, spec, Routing(targets), CONFIG),
        *build_revision(ref, canary_spec, canary, CONFIG, replicas=0),
    ]


def dry_run_apply(cp: ControlPlane, objs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """kubectl apply --server-side --dry-run=server of a List: real schema, CEL and admission."""
    doc = {"apiVersion": "v1", "kind": "List", "items": objs}
    return cp.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=tritonop", "-f", "-",
        input=json.dumps(doc), check=False, timeout=120,
    )  # fmt: skip


PLURALS = {
    "HTTPRoute": "httproutes",
    "GRPCRoute": "grpcroutes",
    "VirtualService": "virtualservices",
    "ScaledObject": "scaledobjects",
    "PodMonitor": "podmonitors",
    "Ingress": "ingresses",
}


def server_create(cp: ControlPlane, obj: dict[str, Any]) -> Any:
    """A create (POST) with dryRun=All, straight to the API server: no kubectl client-side
    validation in between, and no apply type conversion ahead of the schema (which answers
    a wrong type with a 500); the admitted object, or APIError with the schema's message."""
    path = f"/apis/{obj['apiVersion']}/namespaces/{obj['metadata']['namespace']}/{PLURALS[obj['kind']]}"
    return cp.request_json(
        "POST", path, obj, params={"dryRun": "All", "fieldManager": "tritonop", "fieldValidation": "Strict"},
        timeout=60,
    )  # fmt: skip


def ensure_namespace(cp: ControlPlane, name: str) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(namespace))


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    """A bare API server (no controllers, no scheduler) with the tritonop CRD and every
    pinned provider CRD installed and Established."""
    provider_crd_files()  # skip (or fail) before starting anything when they are missing
    with ControlPlane(controllers=False, scheduler=False) as plane:
        plane.kubectl("apply", "--server-side", "-f", "crds/")
        eventually(lambda: plane.crd_established(TRITONOP_CRD), f"{TRITONOP_CRD} Established", timeout=90)
        install_provider_crds(plane)
        for namespace in ("ml", "gateways"):
            ensure_namespace(plane, namespace)
        yield plane


def test_fetch_script_pins_are_provider_crds() -> None:
    """scripts/fetch-crds and PROVIDER_CRDS name the same modules, versions and files."""
    out = subprocess.run(["bash", str(FETCH_SCRIPT), "--list"], capture_output=True, text=True, check=True, timeout=30)
    listed = [line.split() for line in out.stdout.splitlines() if line.strip()]
    assert listed == [[p.short_name, p.module, p.version, *p.files] for p in PROVIDER_CRDS]


def test_provider_crds_are_established_and_served(cp: ControlPlane) -> None:
    crds = {
        c["metadata"]["name"]: c
        for c in cp.get_json("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    }
    for crd_file in provider_crd_files():
        name = yaml.safe_load(crd_file.read_text())["metadata"]["name"]
        assert name in crds, f"{name} from {crd_file} is not installed"
        conditions = {c["type"]: c["status"] for c in crds[name]["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)
    # The installed Gateway API bundle is the pinned one, from its standard channel.
    gateway = next(p for p in PROVIDER_CRDS if p.short_name == "gateway-api")
    annotations = crds["httproutes.gateway.networking.k8s.io"]["metadata"]["annotations"]
    assert annotations["gateway.networking.k8s.io/bundle-version"] == gateway.version
    assert annotations["gateway.networking.k8s.io/channel"] == "standard"
    # Discovery serves every group/version the operator (or a user's monitor) writes.
    wanted = {
        "/apis/gateway.networking.k8s.io/v1": {"httproutes", "grpcroutes"},
        "/apis/networking.istio.io/v1": {"virtualservices"},
        "/apis/keda.sh/v1alpha1": {"scaledobjects", "triggerauthentications"},
        "/apis/monitoring.coreos.com/v1": {"podmonitors", "servicemonitors"},
    }
    for group_version, resources in wanted.items():

        def served_names(group_version: str = group_version) -> set[str] | None:
            return {str(r["name"]) for r in cp.get_json(group_version)["resources"]} or None

        served = eventually(served_names, f"discovery of {group_version}", timeout=90)
        assert resources <= served, (group_version, served)


MATRIX = [(path, provider) for path in EXAMPLE_PATHS for provider in PROVIDERS]


@pytest.mark.parametrize(("example", "provider"), MATRIX, ids=[f"{p.stem}-{prov}" for p, prov in MATRIX])
def test_every_child_is_admitted_by_the_real_crds(cp: ControlPlane, example: Path, provider: str) -> None:
    isvc = with_provider(load_example(example), provider)
    states = {"rendered": render(isvc, CONFIG), "canary": canary_children(isvc)}
    kinds = {child["kind"] for children in states.values() for child in children}
    assert PROVIDER_KINDS[provider] <= kinds, f"{provider} wrote no {PROVIDER_KINDS[provider] - kinds}"
    for namespace in {c["metadata"]["namespace"] for children in states.values() for c in children}:
        ensure_namespace(cp, namespace)
    for state, children in states.items():
        result = dry_run_apply(cp, children)
        assert result.returncode == 0, f"{example.stem}/{provider} {state}: {result.stderr}"
        applied = [line for line in result.stdout.splitlines() if line.endswith("serverside-applied (server dry run)")]
        assert len(applied) == len(children), f"{state}: {len(children)} children, kubectl said:\n{result.stdout}"
        for child in children:
            assert any(f"/{child['metadata']['name']} " in line for line in applied), (state, child["kind"])


def test_the_matrix_covers_every_provider_kind() -> None:
    """The examples x providers write each CRD-typed kind, KEDA's ScaledObject included."""
    kinds = set()
    for example, provider in MATRIX:
        isvc = with_provider(load_example(example), provider)
        kinds |= {(c["apiVersion"], c["kind"]) for c in [*render(isvc, CONFIG), *canary_children(isvc)]}
    assert kinds >= {
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1", "GRPCRoute"),
        ("networking.istio.io/v1", "VirtualService"),
        ("networking.k8s.io/v1", "Ingress"),
        ("keda.sh/v1alpha1", "ScaledObject"),
    }


def canary_child(example: str, provider: str, kind: str) -> dict[str, Any]:
    isvc = with_provider(load_example(REPO_ROOT / "manifests" / "examples" / f"{example}.yaml"), provider)
    return copy.deepcopy(next(c for c in [*canary_children(isvc), *render(isvc, CONFIG)] if c["kind"] == kind))


def test_weighted_routes_reach_the_server_with_their_weights(cp: ControlPlane) -> None:
    """The canary weights survive admission unchanged (nothing pruned or defaulted away)."""
    route = canary_child("canary-gateway-api", "gateway-api", "HTTPRoute")
    result = cp.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=tritonop", "-o", "json", "-f", "-",
        input=json.dumps(route), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    admitted = json.loads(result.stdout)
    weights = [b["weight"] for rule in admitted["spec"]["rules"] for b in rule["backendRefs"]]
    assert sorted(weights) == [25, 75]
    virtual_service = canary_child("canary-istio", "istio", "VirtualService")
    result = cp.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=tritonop", "-o", "json", "-f", "-",
        input=json.dumps(virtual_service), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    admitted = json.loads(result.stdout)
    assert admitted["spec"] == virtual_service["spec"]


def _http_weight_too_big(route: dict[str, Any]) -> None:
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001


def _http_relative_path(route: dict[str, Any]) -> None:
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "v2/models"


def _grpc_backend_without_port(route: dict[str, Any]) -> None:
    del route["spec"]["rules"][0]["backendRefs"][0]["port"]


def _vs_weight_is_a_string(vs: dict[str, Any]) -> None:
    vs["spec"]["http"][0]["route"][0]["weight"] = "heavy"


def _vs_destination_without_host(vs: dict[str, Any]) -> None:
    del vs["spec"]["http"][0]["route"][0]["destination"]["host"]


def _scaled_object_without_target(so: dict[str, Any]) -> None:
    del so["spec"]["scaleTargetRef"]


def _scaled_object_trigger_without_type(so: dict[str, Any]) -> None:
    del so["spec"]["triggers"][0]["type"]


@pytest.mark.parametrize(
    ("example", "provider", "kind", "breakage", "message"),
    [
        ("canary-gateway-api", "gateway-api", "HTTPRoute", _http_weight_too_big,
         "should be less than or equal to 1000000"),
        ("canary-gateway-api", "gateway-api", "HTTPRoute", _http_relative_path,
         "must be an absolute path"),
        ("canary-gateway-api", "gateway-api", "GRPCRoute", _grpc_backend_without_port,
         "Must have port for Service reference"),
        ("canary-istio", "istio", "VirtualService", _vs_weight_is_a_string, "must be of type integer"),
        ("canary-istio", "istio", "VirtualService", _vs_destination_without_host, "host: Required value"),
        ("keda-queue-time", "service", "ScaledObject", _scaled_object_without_target,
         "spec.scaleTargetRef: Required value"),
        ("keda-queue-time", "service", "ScaledObject", _scaled_object_trigger_without_type, "type: Required value"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)  # fmt: skip
def test_the_real_schemas_reject_broken_children(
    cp: ControlPlane, example: str, provider: str, kind: str, breakage: Any, message: str
) -> None:
    child = canary_child(example, provider, kind)
    assert server_create(cp, child)["kind"] == kind, f"the unbroken {kind} must be admitted"
    breakage(child)
    with pytest.raises(APIError) as refused:
        server_create(cp, child)
    assert refused.value.status == 422, refused.value
    assert message in refused.value.message, refused.value.message


def _monitors(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """A PodMonitor and a ServiceMonitor a user would write for an InferenceService's
    Triton metrics port (the operator itself writes none)."""
    name = isvc["metadata"]["name"]
    selector = {"matchLabels": {"serving.tritonop.dev/inferenceservice": name}}
    meta = {"name": name, "namespace": isvc["metadata"]["namespace"]}
    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta,
         "spec": {"selector": selector, "podMetricsEndpoints": [{"port": "metrics", "interval": "15s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta,
         "spec": {"selector": selector, "endpoints": [{"port": "metrics", "interval": "15s"}]}},
    ]  # fmt: skip


def test_prometheus_operator_monitors_are_served_and_validated(cp: ControlPlane) -> None:
    isvc = load_example(REPO_ROOT / "manifests" / "examples" / "minimal-cpu.yaml")
    monitors = _monitors(isvc)
    result = dry_run_apply(cp, monitors)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("serverside-applied (server dry run)") == 2, result.stdout
    broken = copy.deepcopy(monitors[0])
    broken["spec"]["podMetricsEndpoints"][0]["interval"] = "fifteen seconds"
    with pytest.raises(APIError) as refused:
        server_create(cp, broken)
    assert "interval" in refused.value.message and "should match" in refused.value.message, refused.value


# ---------------------------------------------------------------- mirror, match and sticky splits

FEATURE_EXAMPLES = {"gateway-api": "canary-gateway-api", "istio": "canary-istio", "nginx": "canary-nginx"}


def feature_children(provider: str) -> dict[str, list[dict[str, Any]]]:
    """The provider's routes with traffic.match (header and cookie) and traffic.sessionAffinity
    set, in a shadow phase (the canary mirrored, no weight) and at a step (weighted, matched, sticky)."""
    isvc = with_provider(
        load_example(REPO_ROOT / "manifests" / "examples" / f"{FEATURE_EXAMPLES[provider]}.yaml"), provider
    )
    isvc["spec"]["traffic"]["match"] = {"header": {"name": "x-canary", "value": "yes"}, "cookie": {"name": "beta"}}
    isvc["spec"]["traffic"]["sessionAffinity"] = {"cookieName": "session", "maxAge": "12h"}
    if provider == "gateway-api":
        isvc["spec"]["traffic"]["gateway"]["grpc"] = True
    ref, spec = IsvcRef.from_object(isvc), parse_spec(isvc)
    stable = revision_of(spec)
    canary = revision_of(
        spec.model_copy(update={"triton": spec.triton.model_copy(update={"args": ["--log-verbose=1"]})})
    )
    shadow = Routing(
        [TrafficTarget(revision=stable, percent=100), TrafficTarget(revision=canary, percent=0)],
        mirror=Mirror(canary, 100 if provider == "nginx" else 25),
    )
    step = Routing(
        [TrafficTarget(revision=stable, percent=75), TrafficTarget(revision=canary, percent=25)], matched=canary
    )
    build = provider_for(spec).build
    return {"shadow": build(ref, spec, shadow, CONFIG), "step": build(ref, spec, step, CONFIG)}


def _within(admitted: Any, sent: Any, where: str = "") -> None:
    """Everything sent is in what the server admitted (defaults may be added, nothing pruned)."""
    if isinstance(sent, dict):
        assert isinstance(admitted, dict), where
        for key, value in sent.items():
            assert key in admitted, f"{where}.{key} was pruned"
            _within(admitted[key], value, f"{where}.{key}")
    elif isinstance(sent, list):
        assert isinstance(admitted, list) and len(admitted) == len(sent), where
        for index, (a, b) in enumerate(zip(admitted, sent, strict=True)):
            _within(a, b, f"{where}[{index}]")
    else:
        assert admitted == sent, f"{where}: sent {sent!r}, admitted {admitted!r}"


@pytest.mark.parametrize("provider", sorted(FEATURE_EXAMPLES))
def test_mirror_match_and_sticky_routes_are_admitted_whole(cp: ControlPlane, provider: str) -> None:
    """A create with dryRun and fieldValidation Strict: the real schemas (and their CEL rules)
    admit the RequestMirror/mirror/mirror-target, header and cookie matches and the
    Set-Cookie response headers, and prune none of them."""
    for state, children in feature_children(provider).items():
        for child in children:
            admitted = server_create(cp, child)
            _within(admitted["spec"], child["spec"], f"{provider}/{state}/{child['kind']}/{child['metadata']['name']}")
            _within(admitted["metadata"].get("annotations") or {}, child["metadata"].get("annotations") or {})


def test_the_route_features_are_judged_by_the_real_schemas(cp: ControlPlane) -> None:
    """Not vacuous: a mirror share over 100%, and a sticky cookie header name no HTTP header
    may have, are refused by the real CRDs."""
    route = next(c for c in feature_children("gateway-api")["shadow"] if c["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] = 101
    with pytest.raises(APIError) as refused:
        server_create(cp, route)
    assert "percent" in refused.value.message and "100" in refused.value.message, refused.value.message
    route = next(c for c in feature_children("gateway-api")["step"] if c["kind"] == "HTTPRoute")
    modifier = route["spec"]["rules"][0]["backendRefs"][1]["filters"][0]["responseHeaderModifier"]
    modifier["add"][0]["name"] = "set cookie"
    with pytest.raises(APIError) as refused:
        server_create(cp, route)
    assert "should match" in refused.value.message, refused.value.message
    virtual_service = next(c for c in feature_children("istio")["shadow"])
    virtual_service["spec"]["http"][-1]["mirrorPercentage"] = {"value": "all"}
    with pytest.raises(APIError) as refused:
        server_create(cp, virtual_service)
    assert "mirrorPercentage.value" in refused.value.message, refused.value.message
