"""StatusStore: our own stale echoes are told from statuses others wrote, with only digests kept.

The store remembers what it wrote as digests (and the newest as JSON), not as the statuses
themselves; these tests pin that it still decides exactly as comparing the statuses would.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tritonop.api.models import InferenceServiceStatus
from tritonop.controller.status_store import DIGEST_SIZE, STATUS_HISTORY, StatusStore, digest


class RecordingKube:
    """Answers status merge-patches as the API server would: a new resourceVersion each."""

    def __init__(self) -> None:
        self.version = 100
        self.patches: list[dict[str, Any]] = []

    async def merge_patch(self, *args: Any, subresource: str | None = None) -> dict[str, Any]:
        self.patches.append(args[-1])
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}


def body(status: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "m", "resourceVersion": version}, "status": status}


def status(weight: int, value: float = 1.0) -> InferenceServiceStatus:
    return InferenceServiceStatus.model_validate(
        {
            "phase": "Progressing",
            "canaryRevision": "abcdef0123",
            "canary": {"step": 0, "weight": weight, "lastAnalysis": [{"name": "successRate", "result": "Pass", "value": value}]},
        }
    )


async def write_chain(store: StatusStore, weights: list[int]) -> list[dict[str, Any]]:
    """Write statuses one after another, each decided on the previous write's echo."""
    written = []
    seen = body({})
    old = store.read(seen)
    for weight in weights:
        new = status(weight)
        await store.write(seen, old, new)
        raw = new.dump()
        written.append(raw)
        seen, old = body(raw, store._ours[("ns", "m")].version), new
    return written


async def test_a_lagging_echo_of_our_write_reads_as_our_newest() -> None:
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    written = await write_chain(store, [10, 20, 30])
    stale = body(written[0], version="2")  # the watch shows our first write after we made the third
    assert store.read(stale).canary is not None
    assert store.read(stale).canary.weight == 30  # type: ignore[union-attr]
    assert not store.is_our_write(stale)


async def test_a_status_someone_else_wrote_is_taken_as_it_is() -> None:
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    await write_chain(store, [10, 20])
    theirs = body(status(55).dump(), version="9")
    assert store.read(theirs).canary.weight == 55  # type: ignore[union-attr]


async def test_the_echo_of_our_newest_write_is_ours_and_current() -> None:
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    written = await write_chain(store, [10, 20])
    echo = body(written[-1], store._ours[("ns", "m")].version)
    assert store.is_our_write(echo)
    assert store.read(echo).canary.weight == 20  # type: ignore[union-attr]


async def test_whole_floats_written_back_as_integers_still_match_our_write() -> None:
    # The API server stores a CheckResult value 1.0 and hands it back as 1: the same status.
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    written = await write_chain(store, [10, 20])
    echoed = copy.deepcopy(written[0])
    echoed["canary"]["lastAnalysis"][0]["value"] = 1
    assert isinstance(written[0]["canary"]["lastAnalysis"][0]["value"], float)
    assert store.read(body(echoed, "2")).canary.weight == 20  # type: ignore[union-attr]


async def test_history_is_bounded_and_an_evicted_write_reads_as_written() -> None:
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    written = await write_chain(store, list(range(1, STATUS_HISTORY + 4)))
    assert len(store._ours[("ns", "m")].history) == STATUS_HISTORY * DIGEST_SIZE
    oldest = body(written[0], "2")  # no longer remembered: taken as someone else's
    assert store.read(oldest).canary.weight == 1  # type: ignore[union-attr]
    recent = body(written[-3], "3")
    assert store.read(recent).canary.weight == STATUS_HISTORY + 3  # type: ignore[union-attr]


async def test_forget_drops_everything_kept_for_the_object() -> None:
    store = StatusStore(RecordingKube())  # type: ignore[arg-type]
    written = await write_chain(store, [10, 20])
    store.forget(body({}))
    assert store.read(body(written[0], "2")).canary.weight == 10  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"x": 1, "y": [1, 2]}, {"y": [1, 2], "x": 1}, True),  # key order does not matter
        ({"x": 1.0}, {"x": 1}, True),
        ({"x": 1.5}, {"x": 1}, False),
        ({"x": [1, 2]}, {"x": [2, 1]}, False),  # list order does
        ({"x": {"y": None}}, {"x": {}}, False),
        ({"x": "1"}, {"x": 1}, False),
    ],
)
def test_digest_equals_exactly_when_the_parsed_statuses_compare_equal(
    a: dict[str, Any], b: dict[str, Any], same: bool
) -> None:
    assert (digest(a) == digest(b)) is same
    assert (a == b) is same
