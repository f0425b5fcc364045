"""Pure builders: an InferenceService spec and a revision in, child manifests out. No I/O, no clock."""

from tritonop.build.children import REVISION_CHILD_KINDS, build_revision
from tritonop.build.errors import BuildError
from tritonop.build.labels import isvc_labels, revision_labels, selector_labels
from tritonop.build.names import status_url, triton_model_name
from tritonop.build.refs import IsvcRef
from tritonop.build.rendering import render
from tritonop.build.revision import revision_of
from tritonop.build.service import build_entry_service
from tritonop.build.spec import parse_spec

__all__ = [
    "REVISION_CHILD_KINDS",
    "BuildError",
    "IsvcRef",
    "build_entry_service",
    "build_revision",
    "isvc_labels",
    "parse_spec",
    "render",
    "revision_labels",
    "revision_of",
    "selector_labels",
    "status_url",
    "triton_model_name",
]
