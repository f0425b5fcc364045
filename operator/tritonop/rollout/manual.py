"""Manual promote/abort through annotations that name the canary revision.

Naming the revision makes an annotation act on that canary only: it is inert for any
later canary, so the operator never has to remove it (metadata belongs to GitOps). One
already present when a canary of the same revision starts again is stale: recorded in
status as ignored until it is removed (then set again to act).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from tritonop import GROUP

PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"

ManualAction = Literal["promote", "abort"]


def manual_actions(annotations: Mapping[str, str], revision: str | None) -> tuple[ManualAction, ...]:
    """Every action the annotations ask for on ``revision``, abort first."""
    if revision is None:
        return ()
    named: tuple[tuple[ManualAction, str], ...] = (("abort", ABORT_ANNOTATION), ("promote", PROMOTE_ANNOTATION))
    return tuple(action for action, key in named if annotations.get(key, "").strip() == revision)


def manual_action(
    annotations: Mapping[str, str], canary: str | None, ignored: tuple[ManualAction, ...] = ()
) -> ManualAction | None:
    """The action the annotations ask for on this canary; abort wins over promote.

    ``ignored`` are the actions that were already there when this canary started (I6):
    an annotation acts on the canary instance it was set for, not on a later canary that
    happens to have the same revision (a Git revert back to it).
    """
    return next((a for a in manual_actions(annotations, canary) if a not in ignored), None)
