"""Reading several models from Triton's repository index and an ensemble's config (pure)."""

from __future__ import annotations

from typing import Any

from tritonop.triton import Readiness, Reason
from tritonop.triton.repository import (
    ensemble_steps,
    judge_index,
    loaded_models,
    model_label,
    not_ready_models,
    repository_models,
)

FAILED_REASON = "Internal: TritonModelException: refused to load"
# What tritonserver 2.51 reports when an ensemble's composing model "post" fails to load:
# the ensemble has neither a version nor a reason of its own.
INDEX: list[dict[str, Any]] = [
    {"name": "pipeline"},
    {"name": "post", "version": "1", "state": "UNAVAILABLE", "reason": FAILED_REASON},
    {"name": "pre", "version": "1", "state": "READY"},
    {"name": "pre", "version": "2", "state": "LOADING"},
    {"name": "idle"},
]


def not_ready(reason: str, message: str) -> Readiness:
    return Readiness(False, reason, message)


def test_the_repositorys_models_and_the_loaded_ones() -> None:
    assert repository_models(INDEX) == ["pipeline", "post", "pre", "idle"]
    assert loaded_models(INDEX) == ["pre"]


def test_an_ensembles_steps_with_their_pinned_versions() -> None:
    config = {
        "platform": "ensemble",
        "ensemble_scheduling": {
            "step": [
                {"model_name": "pre", "model_version": -1},
                {"model_name": "resnet", "model_version": 3},
                {"model_name": "pre", "model_version": -1},  # used twice, checked once
                {"model_name": "post"},
            ]
        },
    }
    assert ensemble_steps(config) == [("pre", None), ("resnet", "3"), ("post", None)]
    assert ensemble_steps({"platform": "", "backend": "python"}) == []
    assert ensemble_steps({"platform": "ensemble"}) == []


def test_a_step_is_labelled_with_its_ensemble() -> None:
    assert model_label("pre") == "model 'pre'"
    assert model_label("resnet", "3", "pipeline") == "model 'resnet' version 3 (a step of ensemble 'pipeline')"
    verdict = judge_index(INDEX, "post", None, label=model_label("post", None, "pipeline"))
    assert verdict == not_ready(
        Reason.MODEL_LOAD_FAILED,
        f"model 'post' (a step of ensemble 'pipeline') failed to load: version 1: {FAILED_REASON}",
    )


def test_the_most_telling_verdict_leads_and_the_others_are_named() -> None:
    problems = [
        ("idle", not_ready(Reason.MODEL_NOT_READY, "model 'idle' is not loaded")),
        ("resnet", not_ready(Reason.VERSION_NOT_LOADED, "model 'resnet' version 3 is not loaded")),
        ("post", not_ready(Reason.MODEL_LOAD_FAILED, "model 'post' failed to load: boom")),
    ]
    verdict = not_ready_models(INDEX, problems, {"idle", "resnet", "post"})
    assert verdict == not_ready(
        Reason.MODEL_LOAD_FAILED, "model 'post' failed to load: boom; also not ready: 'resnet', 'idle'"
    )


def test_a_model_merely_not_loaded_names_the_model_that_failed_beside_it() -> None:
    problems = [("pipeline", not_ready(Reason.MODEL_NOT_READY, "model 'pipeline' is not loaded"))]
    verdict = not_ready_models(INDEX, problems, {"pipeline"})
    assert verdict == not_ready(
        Reason.MODEL_LOAD_FAILED,
        f"model 'pipeline' is not loaded; model 'post' failed to load: version 1: {FAILED_REASON}",
    )
    # A model still loading says so, with nothing failed beside it.
    loading = [("pre", not_ready(Reason.MODEL_NOT_READY, "model 'pre' is loading (version 2)"))]
    index = [entry for entry in INDEX if entry["name"] != "post"]
    assert not_ready_models(index, loading, {"pre"}) == loading[0][1]
