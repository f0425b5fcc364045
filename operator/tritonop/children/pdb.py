"""The PodDisruptionBudget of a revision running more than one pod."""

from __future__ import annotations

from typing import Any

from tritonop.children.labels import revision_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import revision_child_name
from tritonop.children.refs import IsvcRef


def build_pdb(ref: IsvcRef, revision: str) -> dict[str, Any]:
    """PDB NAME-REV: drains evict one Triton pod at a time.

    maxUnavailable (not minAvailable) so a drain is never blocked outright; and a pod that is
    not Ready may always be evicted (``unhealthyPodEvictionPolicy: AlwaysAllow``, Kubernetes
    1.27+): it serves nothing, and with two such pods the default policy would refuse every
    eviction, a drain's and the operator's of a wedged InPlace pod alike.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(ref, revision_child_name(ref, revision), revision_labels(ref.name, revision)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(ref.name, revision)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
