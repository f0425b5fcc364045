"""tritonop: a Kubernetes operator for NVIDIA Triton Inference Server."""

GROUP = "serving.tritonop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
PLURAL = "inferenceservices"
SINGULAR = "inferenceservice"
SHORT_NAME = "tis"
CATEGORY = "tritonop"
FIELD_MANAGER = "tritonop"

__version__ = "0.1.0"
