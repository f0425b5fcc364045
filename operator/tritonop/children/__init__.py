"""Pure builders: an InferenceService spec and a revision in, child manifests out. No I/O, no clock."""

from tritonop.children.errors import BuildError
from tritonop.children.labels import isvc_labels, revision_labels, selector_labels
from tritonop.children.names import triton_model_name, triton_models
from tritonop.children.refs import IsvcRef
from tritonop.children.revision import revision_of
from tritonop.children.revision_set import build_revision
from tritonop.children.service import build_entry_service
from tritonop.children.spec import parse_spec

__all__ = [
    "BuildError",
    "IsvcRef",
    "build_entry_service",
    "build_revision",
    "isvc_labels",
    "parse_spec",
    "revision_labels",
    "revision_of",
    "selector_labels",
    "triton_model_name",
    "triton_models",
]
