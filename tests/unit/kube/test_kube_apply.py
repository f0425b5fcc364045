"""kube.apply: every write of a child is a server-side apply, creation included; a child whose
hash matches is not written; a child another owner holds is never touched."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.fake_kube import FakeKube
from tritonop.kube.apply import HASH_ANNOTATION, ChildConflict, apply, manifest_hash

UID = "5f0c6b1e-0000-4000-8000-000000000001"


def child(env: str = "1", uid: str = UID) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "resnet-abc",
            "namespace": "ml",
            "ownerReferences": [
                {
                    "apiVersion": "serving.tritonop.dev/v1alpha1",
                    "kind": "InferenceService",
                    "name": "resnet",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "triton", "env": [{"name": "X", "value": env}]}]}}},
    }


def writes(kube: FakeKube) -> list[str]:
    return [c.verb for c in kube.writes()]


async def test_an_absent_child_is_created_by_server_side_apply_never_by_post() -> None:
    kube = FakeKube()
    result = await apply(kube, child())  # type: ignore[arg-type]
    assert result.action == "created"
    assert writes(kube) == ["apply"]
    live = kube.body("apps/v1", "Deployment", "ml", "resnet-abc")
    assert live["metadata"]["annotations"][HASH_ANNOTATION] == manifest_hash(child())


async def test_an_unchanged_child_is_not_written_and_a_changed_one_is_applied() -> None:
    kube = FakeKube()
    await apply(kube, child())  # type: ignore[arg-type]
    assert (await apply(kube, child())).action == "unchanged"  # type: ignore[arg-type]
    assert writes(kube) == ["apply"]
    assert (await apply(kube, child(env="2"))).action == "updated"  # type: ignore[arg-type]
    assert (await apply(kube, child(env="2"), force=True)).action == "updated"  # type: ignore[arg-type]
    assert writes(kube) == ["apply", "apply", "apply"]


async def test_a_child_owned_by_another_object_is_never_written() -> None:
    kube = FakeKube()
    foreign = copy.deepcopy(child(uid="someone-else"))
    kube.put(foreign)
    with pytest.raises(ChildConflict):
        await apply(kube, child())  # type: ignore[arg-type]
    assert writes(kube) == []
