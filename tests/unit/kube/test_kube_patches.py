"""The status merge patch: applying it to the live status must give exactly the new one."""

from __future__ import annotations

from typing import Any

import pytest

from tritonop.kube.apply import replacing_merge_patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


CASES = [
    ({"canary": {"weight": 0, "waitingFor": "Readiness"}}, {"canary": {"weight": 20}}),
    ({"canary": {"weight": 20}, "phase": "Progressing"}, {"phase": "Ready"}),
    ({"traffic": [{"revision": "a", "percent": 100}]}, {"traffic": [{"revision": "b", "percent": 100}]}),
    ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 1}}}),
    ({}, {"phase": "Pending", "canary": {"step": 0}}),
]


@pytest.mark.parametrize(("live", "new"), CASES)
def test_patch_turns_live_into_new(live: dict, new: dict) -> None:
    assert apply_merge_patch(live, replacing_merge_patch(live, new)) == new


def test_nested_keys_the_new_status_lacks_are_nulled() -> None:
    patch = replacing_merge_patch({"canary": {"weight": 0, "waitingFor": "Readiness"}}, {"canary": {"weight": 20}})
    assert patch == {"canary": {"weight": 20, "waitingFor": None}}


def test_unchanged_status_patches_nothing() -> None:
    status = {"phase": "Ready", "canary": {"weight": 0}}
    assert replacing_merge_patch(status, status) == {}
