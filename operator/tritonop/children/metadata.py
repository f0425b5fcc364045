"""ObjectMeta shared by every child: name, namespace, labels, controller ownerReference."""

from __future__ import annotations

from typing import Any

from tritonop.children.refs import IsvcRef


def child_metadata(
    ref: IsvcRef, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": ref.namespace,
        "labels": dict(labels),
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    metadata["ownerReferences"] = [ref.owner_reference()]
    return metadata
