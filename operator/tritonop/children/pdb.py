"""The PodDisruptionBudget of a revision running more than one pod."""

from __future__ import annotations

from typing import Any

from tritonop.children.labels import revision_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import revision_child_name
from tritonop.children.refs import IsvcRef


def build_pdb(ref: IsvcRef, revision: str) -> dict[str, Any]:
    """PDB NAME-REV: drains evict one Triton pod at a time.

    maxUnavailable (not minAvailable) so a drain is never blocked outright.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(ref, revision_child_name(ref, revision), revision_labels(ref.name, revision)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(ref.name, revision)}},
    }
