"""The watch cache keeps each object small (issue 13, memory per object): a projection of the
fields the operator reads, packed (compact JSON deflated against a dictionary of what every
child repeats), and hands out a fresh copy on each read that reads as the event did."""

from __future__ import annotations

import json
import sys
from typing import Any

from tritonop import API_VERSION, KIND
from tritonop.kinds import DEPLOYMENT, SERVICE
from tritonop.kube.cache import CHILDREN, Watched, _Store, project_deployment, project_metadata, project_pod

NS = "ml"


def child(name: str, owner: str = "resnet", kind: str = "Service", version: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1" if kind == "Deployment" else "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"0b1c2d3e-1111-2222-3333-{name[-6:]:0>12}",
            "resourceVersion": version,
            "labels": {
                "app.kubernetes.io/managed-by": "tritonop",
                "app.kubernetes.io/part-of": owner,
                "serving.tritonop.dev/inferenceservice": owner,
                "serving.tritonop.dev/revision": "f0d3368706",
            },
            "annotations": {"serving.tritonop.dev/applied-hash": "9f86d081884c7d659a2feaa0c55ad015"},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": owner,
                    "uid": "6a1e0c55-7777-4444-9999-0123456789ab",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:x": {}}}],
        },
        "spec": {"ports": [{"port": 8000}], "selector": {"serving.tritonop.dev/inferenceservice": owner}},
    }


def deployment(name: str = "resnet-f0d3368706") -> dict[str, Any]:
    obj = child(name, kind="Deployment")
    obj["spec"] = {"replicas": 2, "template": {"spec": {"containers": [{"name": "triton", "image": "x"}]}}}
    obj["status"] = {
        "replicas": 2,
        "readyReplicas": 1,
        "updatedReplicas": 2,
        "observedGeneration": 3,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.", "lastUpdateTime": "2026-12-01T00:00:00Z"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": 'ReplicaSet "resnet-abc" has timed out progressing.', "lastUpdateTime": "2026-12-01T00:00:00Z"},
        ],
    }  # fmt: skip
    return obj


def test_metadata_projections_read_as_the_event_did_after_packing() -> None:
    event = child("resnet-abc")
    projected = CHILDREN.unpack(CHILDREN.pack(project_metadata(event)))
    assert projected["apiVersion"] == "v1" and projected["kind"] == "Service"
    for key in ("name", "namespace", "uid", "resourceVersion", "labels", "annotations", "ownerReferences"):
        assert projected["metadata"][key] == event["metadata"][key], key
    assert "spec" not in projected and "managedFields" not in projected["metadata"]


def test_deployment_projection_keeps_what_readiness_and_apply_read() -> None:
    event = deployment()
    event["metadata"]["managedFields"].append(
        {"manager": "tritonop", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}}
    )
    projected = CHILDREN.unpack(CHILDREN.pack(project_deployment(event)))
    assert projected["spec"] == {"replicas": 2}
    assert projected["status"] == {
        "replicas": 2,
        "readyReplicas": 1,
        # A True condition's message is never read (status.py); a False one's is the reason shown.
        "conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Progressing", "status": "False", "message": 'ReplicaSet "resnet-abc" has timed out progressing.'},
        ],
    }
    assert projected["metadata"]["managedFields"] == [
        {"manager": "tritonop", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    pod = {"metadata": {"name": "p", "namespace": NS}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "triton", "ready": False, "state": waiting, "imageID": "sha"}]}}  # fmt: skip
    assert CHILDREN.unpack(CHILDREN.pack(project_pod(pod)))["status"] == {
        "phase": "Pending",
        "containerStatuses": [{"name": "triton", "ready": False, "state": waiting}],
    }


def test_packed_children_are_a_fraction_of_their_json() -> None:
    service, deploy = project_metadata(child("resnet-abc")), project_deployment(deployment())
    for projected, at_most in ((service, 200), (deploy, 360)):
        packed = CHILDREN.pack(projected)
        as_json = len(json.dumps(projected, separators=(",", ":")))
        assert len(packed) <= at_most and len(packed) * 3 < as_json, (len(packed), as_json)
        assert sys.getsizeof(packed) < sys.getsizeof(projected) + as_json  # bytes, not a tree of dicts


def test_each_read_is_a_fresh_copy() -> None:
    store = _Store(Watched(SERVICE, project_metadata), NS)
    assert store.put(child("resnet-abc"))
    first = store.get(NS, "resnet-abc")
    assert first is not None
    first["metadata"]["labels"]["serving.tritonop.dev/inferenceservice"] = "changed"
    first["metadata"]["ownerReferences"].clear()
    again = store.get(NS, "resnet-abc")
    assert again == CHILDREN.unpack(CHILDREN.pack(project_metadata(child("resnet-abc"))))
    label = "serving.tritonop.dev/inferenceservice"
    assert [o["metadata"]["name"] for o in store.matching(NS, f"{label}=resnet")] == ["resnet-abc"]


def test_only_a_later_version_replaces_what_is_held() -> None:
    store = _Store(Watched(DEPLOYMENT, project_deployment, metadata_only=False), NS)
    later = deployment()
    later["metadata"]["resourceVersion"] = "9"
    assert store.put(later)
    earlier = deployment()
    earlier["status"]["readyReplicas"] = 0
    assert not store.put(earlier)  # resourceVersion 7: an echo that lags
    held = store.get(NS, "resnet-f0d3368706")
    assert held is not None and held["status"]["readyReplicas"] == 1
    store.remove(NS, "resnet-f0d3368706", earlier)  # the deletion of an earlier object of that name
    assert store.get(NS, "resnet-f0d3368706") is not None
    store.remove(NS, "resnet-f0d3368706")
    assert store.get(NS, "resnet-f0d3368706") is None
