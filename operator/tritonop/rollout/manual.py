"""Manual promote/abort through annotations that name the canary revision.

Naming the revision makes an annotation act on that canary only: it is inert for any
later canary, so the operator never has to remove it (metadata belongs to GitOps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from tritonop import GROUP

PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"

ManualAction = Literal["promote", "abort"]


def manual_action(annotations: Mapping[str, str], canary: str | None) -> ManualAction | None:
    """The action the annotations ask for on this canary; abort wins over promote."""
    if canary is None:
        return None
    if annotations.get(ABORT_ANNOTATION, "").strip() == canary:
        return "abort"
    if annotations.get(PROMOTE_ANNOTATION, "").strip() == canary:
        return "promote"
    return None
