"""Judging Triton's model repository index (entries shaped as tritonserver 2.51 returns them)."""

from __future__ import annotations

from tritonop.triton.repository import judge_index

FAILURE = "Internal: TritonModelException: weights corrupt\n\nAt:\n  /models/m/1/model.py(4): initialize\n"
INDEX = [
    {"name": "broken", "version": "1", "state": "UNAVAILABLE", "reason": FAILURE},
    {"name": "idle"},
    {"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
    {"name": "m", "version": "2", "state": "READY"},
    {"name": "warming", "version": "3", "state": "LOADING"},
]


def test_ready_model_leaves_the_verdict_to_the_endpoints() -> None:
    assert judge_index(INDEX, "m", None) is None
    assert judge_index(INDEX, "m", "2") is None


def test_failed_load_quotes_tritons_reason_on_one_line() -> None:
    verdict = judge_index(INDEX, "broken", None)
    assert verdict is not None and (verdict.ready, verdict.reason) == (False, "ModelLoadFailed")
    assert verdict.message == (
        "model 'broken' failed to load: version 1: Internal: TritonModelException: weights corrupt "
        "At: /models/m/1/model.py(4): initialize"
    )


def test_loading_is_not_a_failure() -> None:
    verdict = judge_index(INDEX, "warming", None)
    assert verdict is not None and verdict.reason == "ModelNotReady" and "loading" in verdict.message
    pinned = judge_index(INDEX, "warming", "3")
    assert pinned is not None and pinned.reason == "ModelNotReady"


def test_known_but_never_loaded() -> None:
    verdict = judge_index(INDEX, "idle", None)
    assert verdict is not None and verdict.reason == "ModelNotReady"
    assert verdict.message == "model 'idle' is not loaded"


def test_unloaded_version_is_not_a_failure() -> None:
    index = [{"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"}]
    verdict = judge_index(index, "m", None)
    assert verdict is not None and verdict.reason == "ModelNotReady"
    assert "version 1 UNAVAILABLE" in verdict.message


def test_missing_model_names_what_the_repository_has() -> None:
    verdict = judge_index(INDEX, "nope", None)
    assert verdict is not None and verdict.reason == "ModelLoadFailed"
    assert "(models there: broken, idle, m, warming)" in verdict.message


def test_pinned_version_not_loaded_lists_loaded_versions() -> None:
    verdict = judge_index(INDEX, "m", "1")
    assert verdict is not None and verdict.reason == "VersionNotLoaded"
    assert verdict.message == "model 'm' version 1 is not loaded (loaded versions: 2)"


def test_pinned_version_that_failed() -> None:
    index = [
        {"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": FAILURE},
        {"name": "m", "version": "2", "state": "READY"},
    ]
    verdict = judge_index(index, "m", "1")
    assert verdict is not None and verdict.reason == "ModelLoadFailed" and "weights corrupt" in verdict.message


def test_pinned_version_absent_while_the_only_attempt_failed() -> None:
    verdict = judge_index(INDEX, "broken", "4")
    assert verdict is not None and verdict.reason == "ModelLoadFailed"


def test_pinned_version_absent_while_another_loads() -> None:
    verdict = judge_index(INDEX, "warming", "1")
    assert verdict is not None and verdict.reason == "ModelNotReady"
    assert "version 1 is not loaded yet" in verdict.message
