"""What the routers expose of Triton: inference, metadata and health, never its control APIs.

Triton serves its model repository (load/unload), shared-memory registration, trace and
log settings on the same ports as inference. The providers' routes match only the
paths and gRPC methods below, so a request for anything else gets the router's own
"no route" answer (404 / UNIMPLEMENTED) and never reaches Triton. The lists are the one
source for every provider and for docs/traffic.md.
"""

from __future__ import annotations

# HTTP/REST (the KServe v2 protocol as Triton serves it). Path prefixes match whole
# segments (Gateway API PathPrefix, Ingress Prefix): /v2/models covers a model's
# metadata, readiness, config (read-only), statistics, infer and generate(_stream),
# with or without /versions/<v>; /v2/health covers live and ready.
HTTP_PATH_PREFIXES: tuple[str, ...] = ("/v2/models", "/v2/health")
# Server metadata.
HTTP_EXACT_PATHS: tuple[str, ...] = ("/v2",)

# gRPC: methods of Triton's inference.GRPCInferenceService (grpc_service.proto).
GRPC_SERVICE = "inference.GRPCInferenceService"
# Per model: inference, readiness, metadata, config (read-only) and statistics, as HTTP's
# /v2/models exposes them.
GRPC_MODEL_METHODS: tuple[str, ...] = (
    "ModelInfer",
    "ModelStreamInfer",
    "ModelReady",
    "ModelMetadata",
    "ModelConfig",
    "ModelStatistics",
)
# The server: liveness, readiness, metadata.
GRPC_SERVER_METHODS: tuple[str, ...] = ("ServerLive", "ServerReady", "ServerMetadata")
GRPC_METHODS: tuple[str, ...] = (*GRPC_MODEL_METHODS, *GRPC_SERVER_METHODS)
# Never routed: the model repository, shared memory, trace and log settings.
GRPC_CONTROL_METHODS: tuple[str, ...] = (
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
    "SystemSharedMemoryStatus",
    "SystemSharedMemoryRegister",
    "SystemSharedMemoryUnregister",
    "CudaSharedMemoryStatus",
    "CudaSharedMemoryRegister",
    "CudaSharedMemoryUnregister",
    "TraceSetting",
    "LogSettings",
)


def grpc_path(method: str) -> str:
    """The HTTP/2 :path of a gRPC call: /package.Service/Method."""
    return f"/{GRPC_SERVICE}/{method}"
