"""The watch cache's projections are compact (issue 13, memory per object): they share their
strings with every other projection and hold none of the parsed event's containers, and still
read the same as the event."""

from __future__ import annotations

import json
from typing import Any

from tritonop import API_VERSION, KIND
from tritonop.kube.cache import compact, project_deployment, project_metadata, project_pod


def child(name: str, owner: str = "resnet") -> dict[str, Any]:
    # Each a separate parse, as each watch event is.
    return json.loads(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": "ml",
                    "uid": f"uid-{name}",
                    "resourceVersion": "7",
                    "labels": {"serving.tritonop.dev/inferenceservice": owner, "app.kubernetes.io/part-of": owner},
                    "annotations": {"serving.tritonop.dev/applied-hash": "abc"},
                    "ownerReferences": [
                        {"apiVersion": API_VERSION, "kind": KIND, "name": owner, "uid": "isvc-uid", "controller": True}
                    ],
                },
                "spec": {"ports": [{"port": 8000}]},
            }
        )
    )


def containers(value: Any) -> list[int]:
    """The ids of every dict and list in ``value``."""
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in containers(v))]
    return []


def test_projections_read_as_the_event_did() -> None:
    event = child("resnet-abc")
    projected = project_metadata(event)
    assert projected["apiVersion"] == "v1" and projected["kind"] == "Service"
    for key in ("name", "namespace", "uid", "resourceVersion", "labels", "annotations", "ownerReferences"):
        assert projected["metadata"][key] == event["metadata"][key], key
    assert "spec" not in projected


def test_projections_share_strings_and_hold_no_container_of_the_event() -> None:
    events = [child("resnet-abc"), child("resnet")]
    first, second = (project_metadata(e) for e in events)
    owner = [p["metadata"]["ownerReferences"][0] for p in (first, second)]
    assert owner[0]["uid"] is owner[1]["uid"] and owner[0]["name"] is owner[1]["name"]
    label_keys = [next(iter(p["metadata"]["labels"])) for p in (first, second)]
    assert label_keys[0] is label_keys[1]
    for event, projected in zip(events, (first, second), strict=True):
        assert not set(containers(projected)) & set(containers(event))


def test_deployment_status_and_pod_state_are_copies() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child("resnet-abc")["metadata"],
        "spec": {"replicas": 2},
        "status": {"conditions": [{"type": "Available", "status": "True"}], "readyReplicas": 2},
    }
    projected = project_deployment(deployment)
    assert projected["status"] == deployment["status"] and projected["spec"] == {"replicas": 2}
    assert projected["status"]["conditions"] is not deployment["status"]["conditions"]
    waiting = {"waiting": {"reason": "ImagePullBackOff"}}
    pod = {"metadata": {"name": "p", "namespace": "ml"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "triton", "ready": False, "state": waiting}]}}  # fmt: skip
    state = project_pod(pod)["status"]["containerStatuses"][0]["state"]
    assert state == waiting and state is not waiting


def test_compact_keeps_values_and_long_strings() -> None:
    value = {"a": [1, 2.5, None, True, {"b": "x" * 500}], "c": "short"}
    assert compact(value) == value
