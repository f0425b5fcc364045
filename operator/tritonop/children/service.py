"""Services: one per revision (NAME-REV) and the stable entry Service (NAME) clients call."""

from __future__ import annotations

from typing import Any

from tritonop import GROUP
from tritonop.api.models import InferenceServiceSpec
from tritonop.children.labels import isvc_labels, revision_labels, selector_labels
from tritonop.children.metadata import child_metadata
from tritonop.children.names import GRPC_PORT, HTTP_PORT, METRICS_PORT, revision_child_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig

SERVICE_PORTS = (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))
# On the entry Service: the stable revision when it was last written (what recovery trusts first).
STABLE_ANNOTATION = f"{GROUP}/stable-revision"


def build_revision_service(ref: IsvcRef, revision: str) -> dict[str, Any]:
    """Service NAME-REV over the pods of one revision: the backend routers weight."""
    return _service(
        ref,
        revision_child_name(ref, revision),
        revision_labels(ref.name, revision),
        selector_labels(ref.name, revision),
    )


def build_entry_service(
    ref: IsvcRef,
    spec: InferenceServiceSpec,
    config: OperatorConfig,
    *,
    revisions: list[str],
    stable: str | None = None,
) -> dict[str, Any]:
    """Service NAME, the stable in-cluster address.

    With one revision it selects that revision's pods. With several (the `service`
    traffic provider during a canary) it selects every revision's pods, so traffic
    splits by ready-pod count. ``stable`` is written down as an annotation: with status
    lost, it is what names the stable when the selector names no single revision (I3).
    """
    if not revisions:
        raise ValueError("build_entry_service needs at least one revision")
    revision = revisions[0] if len(revisions) == 1 else None
    annotations = {STABLE_ANNOTATION: stable} if stable is not None else None
    return _service(ref, ref.name, isvc_labels(ref.name), selector_labels(ref.name, revision), annotations)


def _service(
    ref: IsvcRef,
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(ref, name, labels, annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
                for port_name, port in SERVICE_PORTS
            ],
        },
    }
