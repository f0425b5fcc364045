"""IsvcRef: the identity of the parent InferenceService, for child names and ownerReferences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tritonop import API_VERSION, KIND
from tritonop.children.errors import BuildError

DEFAULT_NAMESPACE = "default"
# `tritonop render` works on files that were never applied, so have no uid yet.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class IsvcRef:
    name: str
    namespace: str
    uid: str
    generation: int | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> IsvcRef:
        """The ref of a raw InferenceService dict; namespace and uid default for unapplied files."""
        metadata = obj.get("metadata") or {}
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise BuildError("InvalidObject", "metadata.name is required")
        return cls(
            name=name,
            namespace=metadata.get("namespace") or DEFAULT_NAMESPACE,
            uid=metadata.get("uid") or PLACEHOLDER_UID,
            generation=metadata.get("generation"),
        )

    def owner_reference(self) -> dict[str, Any]:
        """The controller ownerReference every child carries, so deleting the parent deletes it."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
