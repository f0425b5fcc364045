"""The real operator process (kopf, `python -m tritonop run`) against a real Kubernetes API
server with the real Deployment, ReplicaSet, HPA and garbage-collector controllers and the
scheduler (tests/support/real_cluster.py). Emulated: the kubelet (the node stand-in reports
pods without running them). Real: the operator, its HTTP client, kopf's watches, handlers and
timers; API faults come from the fault proxy in front of the server. No Triton runs here, so
canaries stay at their readiness gate (ServerUnreachable).
"""

from __future__ import annotations

import copy
import time
import urllib.request

import pytest

from tests.support.control_plane import APIError
from tests.support.operator_process import (
    OperatorProcess,
    eventually,
    operator_metric,
    operator_requests,
    passes,
    reconciled,
    wait_for_event,
    wait_for_passes,
)
from tests.support.real_cluster import RealCluster, Request

NS = "ml"
ISVC = {
    "apiVersion": "serving.tritonop.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "resnet", "namespace": NS},
    "spec": {
        "model": {"name": "resnet50", "storageUri": "s3://models/resnet"},
        "triton": {"gpus": 1},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "cpuUtilization": 70},
    },
}
DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
# Ticks are 0.3 s while time-driven (conftest): passes a test watches the operator finish before
# it concludes that nothing happened.
QUIET_PASSES = 10


def owned_by(obj: dict, owner: dict) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r.get("controller") for r in refs)


def applied_by_operator(obj: dict) -> dict:
    """The fields the operator's server-side apply owns on `obj` (managedFields, fieldsV1)."""
    (entry,) = [
        e
        for e in obj["metadata"]["managedFields"]
        if e["manager"] == "tritonop" and e["operation"] == "Apply" and not e.get("subresource")
    ]
    return entry["fieldsV1"]


def condition(status: dict, type_: str) -> dict:
    """The condition of that type ({} while there is none yet)."""
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def _admits(kube: RealCluster, obj: dict) -> bool:
    """Whether the server now admits `obj` (a server-side dry-run create)."""
    path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices?dryRun=All"
    try:
        kube.control_plane.request_json("POST", path, obj)
    except APIError:
        return False
    return True


def deployment_names(kube: RealCluster) -> set[str]:
    return {d["metadata"]["name"] for d in kube.api.live(DEPLOYMENTS)}


async def settled(op: OperatorProcess, name: str) -> None:
    """Wait until the operator waits for changes only (its tritonop_time_driven gauge is 0 after a
    tick): a Ready object with its pods up, nothing timed left to do."""
    await eventually(
        lambda: (
            passes(op, NS, name, "tick") > 0
            and operator_metric(op, "tritonop_time_driven", namespace=NS, name=name) == 0
        ),
        timeout=30,
        what=f"{name} settled",
    )


def requests_about(kube: RealCluster, name: str, *, since: int) -> list[Request]:
    """The operator's requests since ``since`` about object ``name`` or its children (NAME, NAME-REV)."""
    return [
        r for r in operator_requests(kube, since=since) if r.name and (r.name == name or r.name.startswith(f"{name}-"))
    ]


async def test_create_builds_owned_children_and_reports_ready(kube: RealCluster, run_operator) -> None:
    op = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    status = await eventually(
        lambda: (s := kube.status(NS, "resnet")).get("phase") == "Ready" and s, timeout=40, what="phase Ready"
    )
    isvc = kube.isvc(NS, "resnet")
    revision = status["stableRevision"]
    assert len(revision) == 10

    deployment = kube.api.get(DEPLOYMENTS, NS, f"resnet-{revision}")
    assert deployment is not None and owned_by(deployment, isvc)
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "tritonop"
    assert labels["serving.tritonop.dev/inferenceservice"] == "resnet"
    assert labels["serving.tritonop.dev/revision"] == revision
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    # The HPA owns the replica count: the operator's apply leaves spec.replicas out.
    assert "f:replicas" not in applied_by_operator(deployment)["f:spec"]
    await eventually(
        lambda: kube.api.get(DEPLOYMENTS, NS, f"resnet-{revision}")["spec"]["replicas"] == 2,
        timeout=40,
        what="the real HPA controller raising replicas to minReplicas",
    )
    hpa = kube.api.get("autoscaling/v2/horizontalpodautoscalers", NS, f"resnet-{revision}")
    assert hpa is not None and owned_by(hpa, isvc) and hpa["spec"]["maxReplicas"] == 4
    pdb = kube.api.get("policy/v1/poddisruptionbudgets", NS, f"resnet-{revision}")
    assert pdb is not None and owned_by(pdb, isvc)  # minReplicas > 1
    for name in ("resnet", f"resnet-{revision}"):
        service = kube.api.get(SERVICES, NS, name)
        assert service is not None and owned_by(service, isvc), name
    assert kube.api.get(SERVICES, NS, "resnet")["spec"]["selector"]["serving.tritonop.dev/revision"] == revision

    assert status["observedGeneration"] == isvc["metadata"]["generation"]
    assert status["url"] == "http://resnet.ml.svc.cluster.local:8000"
    assert status["traffic"] == [{"revision": revision, "percent": 100}]
    ready = condition(status, "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Serving"
    assert condition(status, "Stalled")["status"] == "False"
    # kopf.event() only queues an Event: it may land after the status write, so wait for it.
    await wait_for_event(kube, NS, "resnet", "RevisionReady", message=revision)
    # The spec is never written by the operator, and nothing but status is: no finalizer, no
    # annotation (controller/loops.py remembers the handled spec as its generation).
    assert isvc["spec"] == ISVC["spec"]
    assert not isvc["metadata"].get("finalizers")
    assert not [a for a in isvc["metadata"].get("annotations") or {} if "tritonop" in a or "kopf" in a]
    writes = [
        (r.method, r.subresource) for r in kube.api.all_requests
        if r.method not in ("GET", "LIST", "WATCH") and r.resource is not None
        and r.resource.plural == "inferenceservices" and r.headers.get("User-Agent", "").startswith(("kopf/", "tritonop/"))
    ]  # fmt: skip
    assert writes and set(writes) == {("PATCH", "status")}, writes

    port = op.args[op.args.index("--metrics-port") + 1]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'tritonop_reconciles_total{result="success"}' in body
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200


async def test_settled_object_costs_no_request(kube: RealCluster, run_operator) -> None:
    """Issue 13: a settled InferenceService costs no API request however long it stays settled.
    Its ticks wait for changes; reads come from the watch caches. The clock is a second object
    whose pods never become ready (Pending, so its ticks are time-driven): while it is seen to
    finish QUIET_PASSES ticks, nothing is asked about the settled one."""
    kube.never_ready.add("clock-")
    op = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    clock = copy.deepcopy(ISVC)
    clock["metadata"]["name"] = "clock"
    await kube.apply_isvc(clock)
    await eventually(lambda: kube.status(NS, "resnet").get("readyReplicas") == 2, timeout=60, what="2 ready pods")
    await settled(op, "resnet")
    assert operator_metric(op, "tritonop_time_driven", namespace=NS, name="clock") == 1

    mark, ticks = len(kube.api.all_requests), passes(op, NS, "resnet")
    await wait_for_passes(op, NS, "clock", QUIET_PASSES, since=passes(op, NS, "clock"))
    assert requests_about(kube, "resnet", since=mark) == []
    assert passes(op, NS, "resnet") == ticks, "a settled object ticked with nothing changed"
    # The clock's ticks read its children from the caches too: its only requests are status writes.
    asked = {
        (r.method.value, r.resource.plural if r.resource else r.path) for r in requests_about(kube, "clock", since=mark)
    }
    assert asked <= {("PATCH", "inferenceservices")}, asked


async def test_deleted_child_is_restored_from_its_watch_event(kube: RealCluster, run_operator) -> None:
    """A child deleted behind the operator's back wakes its settled owner through the watch
    cache, which puts it back at once. The tick is 60 s here and the object is settled, so no
    timed pass can be what restores it."""
    op = run_operator("--tick-seconds", "60")
    await kube.apply_isvc(copy.deepcopy(ISVC))
    status = await eventually(lambda: (s := kube.status(NS, "resnet")).get("readyReplicas") == 2 and s, timeout=60)
    await settled(op, "resnet")
    name = f"resnet-{status['stableRevision']}"
    old = kube.api.get(SERVICES, NS, name)
    assert old is not None

    mark, deleted_at = len(kube.api.all_requests), time.monotonic()  # the proxy's clock
    await kube.delete(f"/api/v1/namespaces/{NS}/services/{name}")
    restored = await eventually(
        lambda: (
            (s := kube.api.get(SERVICES, NS, name)) is not None and s["metadata"]["uid"] != old["metadata"]["uid"] and s
        ),
        timeout=10,
        what="the revision Service restored",
    )
    assert owned_by(restored, kube.isvc(NS, "resnet"))
    applied = [r for r in requests_about(kube, "resnet", since=mark) if r.method.value == "PATCH" and r.name == name]
    assert applied, "restored by someone other than the operator"
    # The watch event arrives, the owner ticks, the apply is sent: well within a second.
    assert applied[0].at - deleted_at < 1.0, f"restored {applied[0].at - deleted_at:.2f} s after the deletion"


async def test_model_change_creates_a_new_revision_and_leaves_stable_untouched(kube: RealCluster, run_operator) -> None:
    run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    first = await eventually(
        lambda: kube.status(NS, "resnet").get("phase") == "Ready" and kube.status(NS, "resnet")["stableRevision"],
        timeout=40,
    )
    stable_before = copy.deepcopy(kube.api.get(DEPLOYMENTS, NS, f"resnet-{first}")["spec"])

    changed = copy.deepcopy(ISVC)
    changed["spec"]["model"]["storageUri"] = "s3://models/resnet-v2"
    await kube.apply_isvc(changed)
    status = await eventually(
        lambda: (s := kube.status(NS, "resnet")).get("canaryRevision") and s, timeout=30, what="a canary"
    )
    second = status["canaryRevision"]
    assert second != first
    assert f"resnet-{second}" in deployment_names(kube)
    assert status["phase"] == "Progressing" and status["stableRevision"] == first
    # No Triton answers here: the canary waits at its gate with 0% and says why.
    assert status["traffic"] == [{"revision": first, "percent": 100}, {"revision": second, "percent": 0}]
    await eventually(lambda: (kube.status(NS, "resnet").get("canary") or {}).get("waitingFor"), timeout=15)
    assert kube.api.get(DEPLOYMENTS, NS, f"resnet-{first}")["spec"] == stable_before
    assert condition(kube.status(NS, "resnet"), "Ready")["reason"] == "CanaryInProgress"

    # Autoscaling is not part of the revision: no third revision, same canary.
    scaled = copy.deepcopy(changed)
    scaled["spec"]["autoscaling"]["maxReplicas"] = 6
    await kube.apply_isvc(scaled)
    await eventually(
        lambda: (
            kube.api.get("autoscaling/v2/horizontalpodautoscalers", NS, f"resnet-{second}")["spec"]["maxReplicas"] == 6
        ),
        timeout=20,
    )
    # The pass that handled this change has written its status (observedGeneration) by now.
    generation = kube.isvc(NS, "resnet")["metadata"]["generation"]
    await eventually(
        lambda: kube.status(NS, "resnet").get("observedGeneration") == generation,
        timeout=20,
        what="the autoscaling change observed",
    )
    assert kube.status(NS, "resnet")["canaryRevision"] == second
    assert deployment_names(kube) == {f"resnet-{first}", f"resnet-{second}"}

    # Reverting the spec to the stable revision abandons the canary at once.
    await kube.apply_isvc(copy.deepcopy(ISVC))
    await eventually(lambda: f"resnet-{second}" not in deployment_names(kube), timeout=20, what="canary removed")
    status = await eventually(lambda: (s := kube.status(NS, "resnet")).get("phase") == "Ready" and s, timeout=20)
    assert status.get("canaryRevision") is None and status["stableRevision"] == first
    await wait_for_event(kube, NS, "resnet", "CanaryAbandoned")


async def test_invalid_objects_are_reported_and_do_not_block_others(kube: RealCluster, run_operator) -> None:
    """A spec the operator refuses, admitted by an old CRD, is reported and blocks nothing else."""
    run_operator()
    bad = copy.deepcopy(ISVC)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["model"]["storageUri"] = "ftp://models/resnet"
    bad["spec"]["rollout"] = {"steps": [50, 10]}
    # The CRD's schema and CEL rules refuse it at admission, with their messages...
    with pytest.raises(AssertionError, match=r"rollout\.steps must be strictly increasing") as refused:
        await kube.apply_isvc(copy.deepcopy(bad))
    assert "422" in str(refused.value) and "storageUri" in str(refused.value)
    # ...so it takes an older CRD to admit it: the operator's own validation is the last line.
    await kube.relax_crd_schema()
    await eventually(lambda: _admits(kube, bad), timeout=30, what="the relaxed CRD admitting the spec")
    await kube.apply_isvc(bad)
    secretless = copy.deepcopy(ISVC)
    secretless["metadata"]["name"] = "secretless"
    secretless["spec"]["model"]["storageSecretName"] = "s3-creds"
    await kube.apply_isvc(secretless)
    good = copy.deepcopy(ISVC)
    good["metadata"]["name"] = "good"
    await kube.apply_isvc(good)

    await eventually(lambda: kube.status(NS, "good").get("phase") == "Ready", timeout=40, what="good Ready")
    ready = await eventually(lambda: condition(kube.status(NS, "bad"), "Ready"), timeout=20)
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "storageUri" in ready["message"] or "steps" in ready["message"]
    assert "\n" not in ready["message"]
    assert condition(kube.status(NS, "bad"), "Stalled")["status"] == "True"
    assert not [d for d in deployment_names(kube) if d.startswith("bad-")]
    await wait_for_event(kube, NS, "bad", "InvalidSpec", type="Warning")

    # The operator never reads Secrets: the pod references the storage Secret, and the kubelet's
    # CreateContainerConfigError is what says it is missing (the node stand-in reports it for
    # the real Pod the ReplicaSet controller created).
    missing = await eventually(
        lambda: (
            (c := condition(kube.status(NS, "secretless"), "Ready"))
            and "CreateContainerConfigError" in c.get("message", "")
            and c
        ),
        timeout=20,
        what="the kubelet's reason in status",
    )
    assert "s3-creds" in missing["message"] and missing["status"] == "False"
    assert not operator_requests(kube, plural_path="v1/secrets", method="GET"), "the operator read a Secret"
    deployment = next(d for d in kube.api.live(DEPLOYMENTS) if d["metadata"]["name"].startswith("secretless-"))
    env_from = deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom") or []
    assert {"secretRef": {"name": "s3-creds"}} in env_from
    # Creating the Secret is enough: the pod starts, and the object becomes Ready.
    await kube.request(
        "POST", f"/api/v1/namespaces/{NS}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds", "namespace": NS},
         "stringData": {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}},
    )  # fmt: skip
    await eventually(lambda: kube.status(NS, "secretless").get("phase") == "Ready", timeout=40, what="Ready with it")
    assert "AWS_ACCESS_KEY_ID" not in str(kube.status(NS, "secretless"))
    assert not operator_requests(kube, plural_path="v1/secrets", method="GET"), "the operator read a Secret"


async def test_api_errors_are_retried(kube: RealCluster, run_operator) -> None:
    kube.api.fail_next("PATCH", "deployments", status=500, times=2)  # creation is an apply
    kube.api.fail_next("PATCH", "inferenceservices", status=409, times=1)
    op = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    await eventually(lambda: kube.status(NS, "resnet").get("phase") == "Ready", timeout=60, what="Ready after errors")
    assert len([d for d in deployment_names(kube) if d.startswith("resnet-")]) == 1
    assert op.proc.poll() is None, "the operator must survive API errors"


async def test_restart_resumes_without_duplicates_and_delete_collects_children(kube: RealCluster, run_operator) -> None:
    first = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    await eventually(lambda: kube.status(NS, "resnet").get("phase") == "Ready", timeout=40)
    changed = copy.deepcopy(ISVC)
    changed["spec"]["triton"]["image"] = "nvcr.io/nvidia/tritonserver:24.11-py3"
    await kube.apply_isvc(changed)
    canary = await eventually(lambda: kube.status(NS, "resnet").get("canaryRevision"), timeout=30)
    started_at = kube.status(NS, "resnet")["canary"]["startedAt"]
    # The change reconciled before the crash; the next operator's first pass over the object
    # re-applies every child (status present: forced).
    await eventually(lambda: reconciled(kube, NS, "resnet", changed["spec"]), timeout=30, what="the change reconciled")
    first.kill()  # a crash, mid-canary

    mark = len(kube.api.all_requests)  # from here on, every operator request is the new one's
    second = run_operator()
    # The new operator resumes: it re-applies the children (server-side apply, PATCH) to repair
    # drift, then its timer runs passes over the object; none of that restarts or copies the canary.
    await eventually(
        lambda: operator_requests(kube, since=mark, method="PATCH", plural_path=DEPLOYMENTS),
        timeout=30,
        what="the restarted operator re-applying the Deployments",
    )
    await wait_for_passes(second, NS, "resnet", 5, since=passes(second, NS, "resnet"))
    status = kube.status(NS, "resnet")
    assert status["canaryRevision"] == canary and status["canary"]["startedAt"] == started_at
    assert len([d for d in deployment_names(kube) if d.startswith("resnet-")]) == 2

    await kube.delete(f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices/resnet")
    await eventually(lambda: kube.isvc(NS, "resnet") is None, timeout=20, what="isvc deleted")
    await eventually(
        lambda: (
            not [
                o
                for o in kube.api.live(DEPLOYMENTS) + kube.api.live(SERVICES)
                if o["metadata"]["name"].startswith("resnet")
            ]
        ),
        # The real garbage collector finds a custom resource's dependents once its discovery
        # resync has picked up the CRD (up to ~30 s after it was installed).
        timeout=90,
        what="children garbage-collected",
    )


async def test_unreadable_status_stops_the_rollout_and_says_so(kube: RealCluster, run_operator) -> None:
    op = run_operator()
    await kube.apply_isvc(copy.deepcopy(ISVC))
    await eventually(lambda: kube.status(NS, "resnet").get("phase") == "Ready", timeout=40)
    other = copy.deepcopy(ISVC)
    other["metadata"]["name"] = "other"
    await kube.apply_isvc(other)

    # Someone edits the status by hand and breaks a timestamp the rollout depends on.
    path = f"/apis/serving.tritonop.dev/v1alpha1/namespaces/{NS}/inferenceservices/resnet/status"
    broken = {"canaryRevision": "0123456789", "canary": {"step": 0, "weight": 10, "startedAt": "yesterday"}}
    await kube.request("PATCH", path, {"status": broken}, "application/merge-patch+json")
    ready = await eventually(
        lambda: (c := condition(kube.status(NS, "resnet"), "Ready")).get("reason") == "InvalidStatus" and c, timeout=20
    )
    assert "startedAt" in ready["message"] or "yesterday" in ready["message"]
    assert condition(kube.status(NS, "resnet"), "Stalled")["status"] == "True"
    await wait_for_event(kube, NS, "resnet", "InvalidStatus")
    await eventually(lambda: kube.status(NS, "other").get("phase") == "Ready", timeout=30, what="others unaffected")
    assert op.proc.poll() is None

    # Clearing the status starts over from the spec: the same revision is Ready again.
    await kube.request("PATCH", path, {"status": None}, "application/merge-patch+json")
    await kube.apply_isvc(copy.deepcopy(ISVC) | {"spec": {**ISVC["spec"], "rollout": {"interval": "2m"}}})
    await eventually(lambda: kube.status(NS, "resnet").get("phase") == "Ready", timeout=30, what="Ready again")
