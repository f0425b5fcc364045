"""The revision hash: what makes a spec change a new canary."""

from __future__ import annotations

import hashlib
import json

from tritonop.api.models import InferenceServiceSpec

REVISION_LENGTH = 10


def revision_of(spec: InferenceServiceSpec) -> str:
    """10 hex characters of the sha256 of spec.model and spec.triton as canonical JSON.

    Only the pod-template-relevant parts count: autoscaling, rollout and traffic
    changes apply in place to the current revisions instead of starting a canary.
    """
    pod_relevant = {"model": spec.model.dump(), "triton": spec.triton.dump()}
    canonical = json.dumps(pod_relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:REVISION_LENGTH]
