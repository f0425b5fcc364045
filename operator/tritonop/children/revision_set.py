"""Every child of one revision, in the order they are best applied."""

from __future__ import annotations

from typing import Any

from tritonop.api.models import InferenceServiceSpec
from tritonop.children.autoscaling import build_autoscaler, is_autoscaled
from tritonop.children.deployment import build_deployment
from tritonop.children.pdb import build_pdb
from tritonop.children.refs import IsvcRef
from tritonop.children.service import build_revision_service
from tritonop.config import OperatorConfig


def build_revision(
    ref: IsvcRef,
    spec: InferenceServiceSpec,
    revision: str,
    config: OperatorConfig,
    *,
    replicas: int | None = None,
) -> list[dict[str, Any]]:
    """Deployment, Service, autoscaler (HPA or ScaledObject) and PDB of one revision, all NAME-REV.

    An explicit ``replicas`` pins the Deployment and suppresses the autoscaler: the
    `service` traffic provider sizes a canary by replica ratio this way, and a
    rolled-back canary is scaled to 0 with it.
    """
    autoscaled = replicas is None and is_autoscaled(spec)
    deployment_replicas = None if autoscaled else (replicas if replicas is not None else spec.autoscaling.min_replicas)
    children = [
        build_deployment(ref, spec, revision, config, replicas=deployment_replicas),
        build_revision_service(ref, revision),
    ]
    if autoscaled:
        children.append(build_autoscaler(ref, spec, revision, config))
    # The PDB guards the smallest pod count the revision runs with.
    floor = spec.autoscaling.min_replicas if deployment_replicas is None else deployment_replicas
    if floor > 1:
        children.append(build_pdb(ref, revision))
    return children
