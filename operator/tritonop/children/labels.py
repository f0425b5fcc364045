"""The labels every child carries, and the selectors that find a revision's pods."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
APP_NAME = "app.kubernetes.io/name"
ISVC_LABEL = "serving.tritonop.dev/inferenceservice"
REVISION_LABEL = "serving.tritonop.dev/revision"
OPERATOR_NAME = "tritonop"


def isvc_labels(name: str) -> dict[str, str]:
    """Labels on every child of InferenceService ``name``."""
    return {MANAGED_BY: OPERATOR_NAME, PART_OF: name, ISVC_LABEL: name}


def revision_labels(name: str, revision: str) -> dict[str, str]:
    """Labels on the children (and pods) of one revision."""
    return {**isvc_labels(name), REVISION_LABEL: revision}


def selector_labels(name: str, revision: str | None) -> dict[str, str]:
    """The smallest label set that selects the pods of one revision, or of every revision when None.

    Deployment selectors are immutable, so this set must never grow.
    """
    selector = {ISVC_LABEL: name}
    if revision is not None:
        selector[REVISION_LABEL] = revision
    return selector
