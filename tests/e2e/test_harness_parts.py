"""The local harness' pieces: reading pod templates and Pods, the Pod status the kubelet
stand-in reports, weighting routes, progress lines.

The pure ones are fast and tool-free (no Triton, no Prometheus), so not marked slow: they
guard the stand-ins the slow end-to-end suite relies on. One slow test runs the pod-level
kubelet stand-in (e2e/local/pod_kubelet.py) on a real control plane: what it reports is
what the real Deployment controller computes the operator's readiness from.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tritonclient.http as triton_http_client

from e2e.local.pod_kubelet import PodKubelet
from e2e.local.podspec import (
    ContainerState,
    PodSpecError,
    command_line,
    container_env,
    local_repository,
    pod_status,
    readiness_path,
    template_plan,
)
from e2e.local.progress import progress_line, revision_cell
from e2e.local.prometheus import LocalPrometheus
from e2e.local.router import (
    HTTPROUTES,
    ISVCS,
    REVISION_LABEL,
    SERVICES,
    Router,
    WeightedRoundRobin,
    WindowStats,
    choose_rule,
    mirror_percent,
    rule_weights,
)
from e2e.scenario import PROFILES, inference_service, write_variant
from tests.support.control_plane import ControlPlane, eventually
from tests.support.triton import TritonServer, write_model
from tritonop.api.models import InferenceServiceSpec
from tritonop.children.deployment import build_deployment
from tritonop.children.refs import IsvcRef
from tritonop.children.triton_key import build_key_secret, derive_key
from tritonop.config import OperatorConfig


def operator_deployment(storage_uri: str, replicas: int | None = 1) -> dict:
    """A Deployment exactly as the operator builds it."""
    spec = InferenceServiceSpec.model_validate(
        {"model": {"name": "classifier", "storageUri": storage_uri}, "triton": {"gpus": 0}}
    )
    return build_deployment(
        IsvcRef(name="isvc", namespace="e2e", uid="u1"), spec, "rev1", OperatorConfig(), replicas=replicas
    )


def test_a_file_uri_deployment_runs_from_its_host_path() -> None:
    plan = template_plan(operator_deployment("file:///srv/models/v2")["spec"]["template"])
    assert plan.repository == Path("/srv/models/v2")
    assert plan.args[0] == "tritonserver" and "--load-model=classifier" in plan.args
    assert plan.labels["serving.tritonop.dev/revision"] == "rev1"


def test_a_pod_of_that_deployment_runs_the_same_way() -> None:
    template = operator_deployment("file:///srv/models/v2")["spec"]["template"]
    pod = {"metadata": {**template["metadata"], "name": "isvc-rev1-abc12"}, "spec": template["spec"]}
    plan, from_deployment = template_plan(pod), template_plan(template)
    assert plan.args == from_deployment.args and plan.repository == from_deployment.repository
    assert plan.secret_env == from_deployment.secret_env == {"TRITONOP_API_KEY": ("isvc-triton-key", "key")}
    assert readiness_path(pod) == "/v2/health/ready"  # the container's own readinessProbe
    assert readiness_path({"spec": {"containers": [{"name": "c"}]}}) == "/v2/health/ready"


def _statuses(status: dict) -> tuple[str, dict, dict]:
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    (container,) = status["containerStatuses"]
    return status["phase"], conditions, container


def test_pod_status_follows_the_container_as_a_kubelet_reports_it() -> None:
    pod = {"metadata": {"uid": "u1"}, "spec": {"containers": [{"name": "triton", "image": "tritonserver:x"}]}}
    t0, t1 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"

    # A Secret the env needs is missing: Pending, never started, the kubelet's reason.
    waiting = ContainerState(None, False, 0, waiting=("CreateContainerConfigError", 'secret "k" not found'))
    phase, conditions, container = _statuses(pod_status(pod, waiting, start_time=t0, ready_since=t0))
    assert phase == "Pending" and conditions["Ready"] == "False" and conditions["PodScheduled"] == "True"
    assert container["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": 'secret "k" not found'}
    }
    assert container["started"] is False and container["restartCount"] == 0

    # Running and passing the probe: Ready since the probe first passed, at the loopback IP.
    status = pod_status(pod, ContainerState(t0, True, 0), start_time=t0, ready_since=t1)
    phase, conditions, container = _statuses(status)
    assert phase == "Running" and conditions["Ready"] == conditions["ContainersReady"] == "True"
    assert status["podIP"] == "127.0.0.1" and status["startTime"] == t0
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == t1
    assert container["state"] == {"running": {"startedAt": t0}} and container["ready"] and container["started"]
    assert container["name"] == "triton" and container["image"] == "tritonserver:x"

    # Running, failing the probe (a model that does not load): Running, not Ready.
    _, conditions, container = _statuses(pod_status(pod, ContainerState(t0, False, 0), start_time=t0, ready_since=t0))
    assert conditions["Ready"] == "False" and container["started"] and not container["ready"]

    # Exited, waiting out the back-off: still Running (it ran), not ready, the last exit kept.
    crashed = ContainerState(None, True, 2, waiting=("CrashLoopBackOff", "back-off"), last_exit=(137, t1))
    phase, conditions, container = _statuses(pod_status(pod, crashed, start_time=t0, ready_since=t1))
    assert phase == "Running" and conditions["Ready"] == "False" and not container["ready"]
    assert container["restartCount"] == 2 and container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["lastState"] == {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": t1}}


def test_storage_that_is_not_a_host_path_cannot_run_locally() -> None:
    with pytest.raises(PodSpecError, match="persistentVolumeClaim, not hostPath"):
        template_plan(operator_deployment("pvc://claim/models")["spec"]["template"])
    with pytest.raises(PodSpecError, match="remote storage"):
        template_plan(operator_deployment("s3://bucket/models")["spec"]["template"])


def test_the_control_api_key_comes_from_the_operators_secret_into_the_command_line() -> None:
    plan = template_plan(operator_deployment("file:///srv/models/v2")["spec"]["template"])
    key = derive_key(b"e2e-operator-secret-0123456789abcdef", "u1")
    secret = build_key_secret(IsvcRef(name="isvc", namespace="e2e", uid="u1"), key)
    env = container_env(plan, {"isvc-triton-key": secret}.get)
    assert env["TRITONOP_API_KEY"] == key
    restricted = [a for a in command_line(plan, env) if a.startswith("--http-restricted-api=")]
    assert restricted and restricted[0].endswith(f":tritonop-key={key}")
    assert key not in " ".join(plan.args)
    with pytest.raises(PodSpecError, match="secret 'isvc-triton-key' not found"):
        container_env(plan, {}.get)
    with pytest.raises(PodSpecError, match="couldn't find key key"):
        container_env(plan, {"isvc-triton-key": {"data": {}}}.get)


def test_the_longest_mount_containing_the_path_wins() -> None:
    container = {
        "volumeMounts": [
            {"name": "outer", "mountPath": "/mnt"},
            {"name": "inner", "mountPath": "/mnt/models"},
        ]
    }
    volumes = [{"name": "outer", "hostPath": {"path": "/a"}}, {"name": "inner", "hostPath": {"path": "/b"}}]
    assert local_repository("/mnt/models/repo", container, volumes) == Path("/b/repo")
    assert local_repository("/mnt/modelsX", container, volumes) == Path("/a/modelsX")


def test_weighted_round_robin_honours_weights_exactly() -> None:
    balancer = WeightedRoundRobin()
    picks = Counter(balancer.pick({"stable": 80, "canary": 20}) for _ in range(100))
    assert picks == {"stable": 80, "canary": 20}
    # Spread out, not in runs: every 5 picks hold exactly one canary.
    balancer = WeightedRoundRobin()
    runs = [[balancer.pick({"stable": 4, "canary": 1}) for _ in range(5)].count("canary") for _ in range(10)]
    assert runs == [1] * 10
    assert WeightedRoundRobin().pick({"stable": 0}) is None


def test_rule_weights_read_gateway_api_defaults() -> None:
    rule = {"backendRefs": [{"name": "a", "weight": 70}, {"name": "b"}, {"kind": "Other", "name": "x", "weight": 5}]}
    assert rule_weights(rule) == {"a": 70, "b": 1}


# The HTTPRoute the operator writes at a step with traffic.match (a header and a cookie) and
# traffic.sessionAffinity, and a shadow phase's mirror, as the router reads them.
COOKIE_RULE = {"type": "RegularExpression", "name": "cookie", "value": r"^(.*;\s*)?beta=always(;.*)?$"}
ROUTED = {
    "metadata": {"namespace": "ns", "name": "isvc"},
    "spec": {
        "rules": [
            {
                "matches": [
                    {"path": {"type": "PathPrefix", "value": "/v2/models"}},
                    {"path": {"type": "Exact", "value": "/v2"}},
                ],
                "filters": [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {"backendRef": {"name": "isvc-canary", "port": 8000}, "percent": 50},
                    }
                ],
                "backendRefs": [{"kind": "Service", "name": "isvc-stable", "port": 8000, "weight": 100}],
            },
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": "/v2/models"},
                        "headers": [{"type": "Exact", "name": "x-canary", "value": "1"}],
                    },
                    {"path": {"type": "PathPrefix", "value": "/v2/models"}, "headers": [COOKIE_RULE]},
                ],
                "backendRefs": [{"kind": "Service", "name": "isvc-canary", "port": 8000}],
            },
        ]
    },
}
INFER = "/v2/models/m/infer"


@pytest.mark.parametrize(
    ("path", "headers", "rule", "by_header"),
    [
        (INFER, {}, 0, False),
        (INFER, {"X-Canary": "1"}, 1, True),  # header names are case-insensitive
        (INFER, {"x-canary": "2"}, 0, False),
        (INFER, {"cookie": "session=7; beta=always"}, 1, True),
        (INFER, {"cookie": "beta=always2"}, 0, False),
        ("/v2", {"x-canary": "1"}, 0, False),  # an Exact path outranks the header rule's prefix
        ("/v2/modelsx", {}, None, False),  # prefixes match whole segments
        ("/v2/repository/index", {"x-canary": "1"}, None, False),
    ],
)
def test_choose_rule_ranks_as_gateway_api(path, headers, rule, by_header) -> None:
    chosen = choose_rule(ROUTED, path, headers)
    assert (chosen[0], chosen[2]) == (rule, by_header) if rule is not None else chosen is None


def test_mirror_share_from_percent_or_fraction() -> None:
    assert mirror_percent({"backendRef": {}, "percent": 20}) == 20
    assert mirror_percent({"backendRef": {}, "fraction": {"numerator": 1, "denominator": 8}}) == 12.5
    assert mirror_percent({"backendRef": {}, "fraction": {"numerator": 3}}) == 3
    assert mirror_percent({"backendRef": {}}) == 100


@pytest.mark.slow
@pytest.mark.triton
async def test_the_router_mirrors_and_matches_through_real_triton(tmp_path: Path) -> None:
    """Two real tritonservers behind the route above: requests without the header or cookie
    reach the stable, and half of them are copied to the canary; requests with either reach
    the canary alone. Each Triton's own statistics count exactly what the router says it sent."""
    write_model(tmp_path, "m")
    revisions = {"isvc-stable": "stable-rev", "isvc-canary": "canary-rev"}
    services = [
        {"metadata": {"namespace": "ns", "name": name}, "spec": {"selector": {REVISION_LABEL: revision}}}
        for name, revision in revisions.items()
    ]
    isvc = {"metadata": {"namespace": "ns", "name": "isvc"}, "spec": {"model": {"name": "m"}}}
    objects = {HTTPROUTES: [ROUTED], SERVICES: services, ISVCS: [isvc]}

    async def lister(plural_path: str) -> list[dict[str, Any]]:
        return objects[plural_path]

    with TritonServer(tmp_path, ["m"]) as stable_server, TritonServer(tmp_path, ["m"]) as canary_server:
        for server in (stable_server, canary_server):
            assert await asyncio.to_thread(server.wait_ready, 60), server.recent_output()
        urls = {"isvc-stable": [stable_server.http_url], "isvc-canary": [canary_server.http_url]}
        headers = ({}, {"x-canary": "1"}, {"Cookie": "session=7; beta=always"})
        router = Router(lister, lambda _ns, service: urls[service], rate=60, batch_s=0.05, headers=headers)
        stop = asyncio.Event()
        running = asyncio.create_task(router.run(stop))
        deadline = time.monotonic() + 60
        while router.traffic("ns", "isvc", "stable-rev").requests < 30:
            assert time.monotonic() < deadline and not running.done(), "the router sent too little"
            await asyncio.sleep(0.1)
        stop.set()
        await running  # waits for the requests in flight

        stable, canary = router.traffic("ns", "isvc", "stable-rev"), router.traffic("ns", "isvc", "canary-rev")
        assert router.shed == router.unrouted == 0
        assert stable.successes == stable.requests and stable.matched == stable.mirrored == 0
        assert canary.successes == canary.requests == canary.matched  # only the header and cookie requests
        assert abs(canary.matched - 2 * stable.requests) <= 2  # two of every three requests
        assert canary.mirrored == stable.requests // 2 and canary.mirror_failures == 0
        served = {
            name: await asyncio.to_thread(_successes, server.http_url, "m")
            for name, server in (("stable", stable_server), ("canary", canary_server))
        }
        assert served == {"stable": stable.successes, "canary": canary.successes + canary.mirrored}


def _successes(url: str, model: str) -> int:
    """Successful inferences Triton counted for ``model``."""
    client = triton_http_client.InferenceServerClient(url.removeprefix("http://"))
    try:
        stats = client.get_inference_statistics(model)
    finally:
        client.close()
    return int(stats["model_stats"][0]["inference_stats"]["success"]["count"])


def test_the_scenario_manifest_is_a_valid_inference_service() -> None:
    obj = inference_service(variant="v3", model_root="/models", profile=PROFILES["local"], name="c", namespace="ns")
    spec = InferenceServiceSpec.model_validate(obj["spec"])
    assert spec.model.storage_uri == "file:///models/v3"
    assert spec.rollout.steps == [20, 50] and spec.rollout.interval == "6s"
    assert spec.traffic.gateway.parent_refs == [{"name": "e2e-gateway", "namespace": "ns"}]


def test_progress_lines_show_step_weight_and_revisions() -> None:
    status = {
        "phase": "Progressing",
        "stableRevision": "aaaaaaaaaa",
        "canaryRevision": "bbbbbbbbbb",
        "canary": {"step": 1, "weight": 50, "stepStartedAt": "2026-01-01T00:00:00Z", "waitingFor": "stale"},
        "message": "canary bbbbbbbbbb at 50% (step 2 of 2)",
    }
    stats = {"aaaaaaaaaa": WindowStats(10, 10, 0, 2.0), "bbbbbbbbbb": WindowStats(10, 7, 0, 3.0)}
    line = progress_line(65, status, stats, steps=2)
    assert line.split()[:4] == ["1:05", "Progressing", "2/2", "50%"]
    assert "aaaaaaaa 100.0%    2ms" in line and "bbbbbbbb  70.0%    3ms" in line
    assert line.endswith("canary bbbbbbbbbb at 50% (step 2 of 2)")  # past the gate: the message
    assert revision_cell("cccccccccc", WindowStats(0, 0, 4, None)).endswith("+4x503")


# ------------------------------------------------------------------ the pod-level kubelet, on a real control plane


def _container(pod: dict[str, Any] | None) -> dict[str, Any]:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


@pytest.mark.slow
@pytest.mark.triton
async def test_the_pod_kubelet_runs_reports_restarts_and_stops_pods_of_a_real_deployment(tmp_path: Path) -> None:
    """The operator's Deployment, made into a Pod by the real ReplicaSet controller and bound by
    the real scheduler: the stand-in waits for the key Secret (CreateContainerConfigError), runs
    tritonserver, reports it Ready (and the real controller counts it in the Deployment's
    status), restarts it when it dies (restartCount), and on scale-down stops it and deletes the
    Pod."""
    write_variant(tmp_path / "models", "v1")
    deployment = operator_deployment(f"file://{tmp_path / 'models' / 'v1'}")
    ref = IsvcRef(name="isvc", namespace="e2e", uid="u1")
    secret = build_key_secret(ref, derive_key(b"e2e-operator-secret-0123456789abcdef", "u1"))
    for obj in (deployment, secret):  # no InferenceService owns them here: the real GC would delete them
        obj["metadata"].pop("ownerReferences", None)
    name, ns = deployment["metadata"]["name"], "e2e"
    prometheus = LocalPrometheus()  # never started: targets are only recorded
    with ControlPlane(
        controllers=True, scheduler=True, extra_apiserver_args=("--disable-admission-plugins=TaintNodesByCondition",)
    ) as cp:
        cp.request_json(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        eventually(lambda: cp.find(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), "ServiceAccount default")
        kubelet = PodKubelet(cp, prometheus, tmp_path / "endpoints.json", tmp_path / "pods", period_s=0.3)
        await kubelet.register()
        stop = asyncio.Event()
        loop = asyncio.create_task(kubelet.run(stop))

        async def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
            deadline = time.monotonic() + timeout
            while not (value := await asyncio.to_thread(check)):
                assert not loop.done(), loop.exception()
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.2)
            return value

        def the_pod() -> dict[str, Any] | None:
            items = cp.request_json("GET", f"/api/v1/namespaces/{ns}/pods")["items"]
            return items[0] if len(items) == 1 else None

        try:
            cp.request_json("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)
            pod = await until(
                lambda: (
                    _container(p := the_pod()).get("state", {}).get("waiting", {}).get("reason")
                    == "CreateContainerConfigError"
                    and p
                ),
                "the pod waiting for its Secret",
            )
            assert pod["spec"]["nodeName"] == kubelet.name and pod["status"]["phase"] == "Pending"
            assert "isvc-triton-key" in _container(pod)["state"]["waiting"]["message"]
            assert not kubelet.pods()

            cp.request_json("POST", f"/api/v1/namespaces/{ns}/secrets", secret)
            await until(lambda: (cp.find(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}") or {}).get("status", {}).get("readyReplicas") == 1, "the real Deployment controller to count the pod ready", 90)  # fmt: skip
            pod = the_pod()
            assert pod is not None and pod["status"]["phase"] == "Running" and pod["status"]["podIP"] == "127.0.0.1"
            (running,) = kubelet.pods(ns, "rev1")
            assert running.name == pod["metadata"]["name"] and running.process is not None
            endpoints = json.loads((tmp_path / "endpoints.json").read_text())
            assert endpoints[f"{ns}/pod/{running.name}"] == running.http_url
            (target,) = prometheus.targets
            assert target.labels == {
                "namespace": ns,
                "inferenceservice": "isvc",
                "revision": "rev1",
                "pod": running.name,
            }
            # The control-API key reached the command line from the real Secret.
            assert any(
                a.endswith(f":tritonop-key={derive_key(b'e2e-operator-secret-0123456789abcdef', 'u1')}")
                for a in running.process.args
            )

            first_pid = running.process.pid
            assert first_pid is not None
            os.killpg(first_pid, signal.SIGKILL)
            restarted = await until(
                lambda: (c := _container(the_pod())).get("restartCount") == 1 and c.get("ready") and c,
                "the container restarted and ready again",
                90,
            )
            assert restarted["lastState"]["terminated"]["exitCode"] != 0
            assert running.process.pid != first_pid

            cp.request_json(
                "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", {"spec": {"replicas": 0}},
                content_type="application/merge-patch+json",
            )  # fmt: skip
            await until(lambda: not cp.request_json("GET", f"/api/v1/namespaces/{ns}/pods")["items"], "the pod deleted")
            assert not kubelet.pods() and not running.process.running()
            assert not prometheus.targets
        finally:
            stop.set()
            await loop
        assert not loop.exception()
        assert not kubelet.errors, kubelet.errors[:5]  # every status it wrote was accepted
