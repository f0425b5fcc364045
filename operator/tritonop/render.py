"""`tritonop render`: every child a fresh InferenceService becomes, without a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tritonop import API_VERSION, KIND
from tritonop.api.models import TrafficTarget
from tritonop.children import BuildError, IsvcRef, build_entry_service, build_revision, parse_spec, revision_of
from tritonop.children.network_policy import build_network_policy, network_policy_enabled
from tritonop.config import OperatorConfig
from tritonop.operator_policy import check_spec
from tritonop.traffic import Routing, provider_for


def render(obj: Mapping[str, Any], config: OperatorConfig) -> list[dict[str, Any]]:
    """The children of ``obj`` (a raw InferenceService) at 100% on its first revision.

    Revision children, then the NetworkPolicy (when enabled), the entry Service, then the
    traffic provider's objects.
    A missing namespace means "default"; a missing uid, a placeholder.
    """
    if obj.get("apiVersion") != API_VERSION or obj.get("kind") != KIND:
        raise BuildError(
            "InvalidObject",
            f"expected apiVersion {API_VERSION} kind {KIND}, got {obj.get('apiVersion')} {obj.get('kind')}",
        )
    ref = IsvcRef.from_object(obj)
    spec = parse_spec(obj)
    check_spec(spec, config)
    revision = revision_of(spec, config.triton_image)
    return [
        *build_revision(ref, spec, revision, config),
        *([build_network_policy(ref, config)] if network_policy_enabled(spec, config) else []),
        build_entry_service(ref, spec, config, revisions=[revision], stable=revision),
        *provider_for(spec).build(ref, spec, Routing([TrafficTarget(revision=revision, percent=100)]), config),
    ]
