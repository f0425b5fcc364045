"""The local harness' pure pieces: reading pod templates, weighting routes, progress lines.

Fast and tool-free (no Triton, no Prometheus), so not marked slow: they guard the
stand-ins the slow end-to-end suite relies on.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from e2e.local.podspec import (
    PodSpecError,
    command_line,
    container_env,
    deployment_status,
    desired_replicas,
    local_repository,
    pod_plan,
)
from e2e.local.progress import progress_line, revision_cell
from e2e.local.router import WeightedRoundRobin, WindowStats, route_weights
from e2e.scenario import PROFILES, inference_service
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
    plan = pod_plan(operator_deployment("file:///srv/models/v2"))
    assert plan.repository == Path("/srv/models/v2")
    assert plan.args[0] == "tritonserver" and "--load-model=classifier" in plan.args
    assert plan.labels["serving.tritonop.dev/revision"] == "rev1"


def test_storage_that_is_not_a_host_path_cannot_run_locally() -> None:
    with pytest.raises(PodSpecError, match="persistentVolumeClaim, not hostPath"):
        pod_plan(operator_deployment("pvc://claim/models"))
    with pytest.raises(PodSpecError, match="remote storage"):
        pod_plan(operator_deployment("s3://bucket/models"))


def test_the_control_api_key_comes_from_the_operators_secret_into_the_command_line() -> None:
    plan = pod_plan(operator_deployment("file:///srv/models/v2"))
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


def test_replicas_default_to_one_and_status_follows_ready_pods() -> None:
    assert desired_replicas(operator_deployment("file:///m", replicas=None)) == 1
    assert desired_replicas(operator_deployment("file:///m", replicas=0)) == 0
    waiting = deployment_status(generation=2, desired=1, running=1, ready=0)
    assert waiting["conditions"][0]["status"] == "False" and waiting["readyReplicas"] == 0
    assert deployment_status(generation=2, desired=1, running=1, ready=1)["conditions"][0]["status"] == "True"
    assert deployment_status(generation=2, desired=0, running=0, ready=0)["conditions"][0]["status"] == "True"


def test_weighted_round_robin_honours_weights_exactly() -> None:
    balancer = WeightedRoundRobin()
    picks = Counter(balancer.pick({"stable": 80, "canary": 20}) for _ in range(100))
    assert picks == {"stable": 80, "canary": 20}
    # Spread out, not in runs: every 5 picks hold exactly one canary.
    balancer = WeightedRoundRobin()
    runs = [[balancer.pick({"stable": 4, "canary": 1}) for _ in range(5)].count("canary") for _ in range(10)]
    assert runs == [1] * 10
    assert WeightedRoundRobin().pick({"stable": 0}) is None


def test_route_weights_read_every_rule_with_gateway_api_defaults() -> None:
    route = {
        "spec": {
            "rules": [
                {"backendRefs": [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}]},
                {"backendRefs": [{"name": "a"}, {"kind": "Other", "name": "x", "weight": 5}]},
            ]
        }
    }
    assert route_weights(route) == {"a": 71, "b": 30}


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
