"""The revision hash: what makes a spec change a new canary."""

from __future__ import annotations

import hashlib
import json

from tritonop.api.models import InferenceServiceSpec, RolloutStrategy

REVISION_LENGTH = 10


def revision_of(spec: InferenceServiceSpec, default_image: str | None = None) -> str:
    """10 hex characters of the sha256 of spec.model and spec.triton as canonical JSON.

    Only the pod-template-relevant parts count: autoscaling, rollout and traffic
    changes apply in place to the current revisions instead of starting a canary.
    The effective image counts, not the field: when triton.image is unset, a change of
    the operator's default image is a new revision too, rolled out as a canary. With
    rollout.strategy InPlace, model.version does not count: the running pods switch
    versions through Triton's repository API (controller/in_place.py).
    """
    triton = spec.triton.dump()
    if default_image is not None:
        triton.setdefault("image", default_image)
    model = spec.model.dump()
    if spec.rollout.strategy == RolloutStrategy.in_place:
        model.pop("version", None)
    pod_relevant = {"model": model, "triton": triton}
    canonical = json.dumps(pod_relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:REVISION_LENGTH]
