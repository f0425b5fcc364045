"""The tritonserver command line of a revision's container."""

from __future__ import annotations

from collections.abc import Sequence

from tritonop.api.models import InferenceServiceSpec, ModelControlMode
from tritonop.children.names import GRPC_PORT, HTTP_PORT, METRICS_PORT
from tritonop.children.triton_key import restricted_api_args


def _flag(value: bool) -> str:
    return "true" if value else "false"


def tritonserver_args(spec: InferenceServiceSpec, models: Sequence[str], model_repository: str) -> list[str]:
    """Arguments for ``tritonserver``: the operator's flags, then spec.triton.args appended last.

    In explicit mode each of ``models`` is loaded at start (``*``: every model in the repository;
    an ensemble's composing models are loaded with it); poll and none load every model anyway.
    """
    triton = spec.triton
    args = [
        f"--model-repository={model_repository}",
        f"--model-control-mode={triton.model_control_mode.value}",
    ]
    if triton.model_control_mode == ModelControlMode.explicit:
        args += [f"--load-model={model}" for model in models]
    args += [
        f"--strict-readiness={_flag(triton.strict_readiness)}",
        f"--http-port={HTTP_PORT}",
        f"--grpc-port={GRPC_PORT}",
        f"--metrics-port={METRICS_PORT}",
        "--allow-metrics=true",
        f"--allow-gpu-metrics={_flag(triton.gpus > 0)}",
    ]
    if triton.summary_latencies:
        args.append("--metrics-config=summary_latencies=true")
    # Loading, unloading and the other control categories need this InferenceService's key.
    args += restricted_api_args()
    # A model that fails to load must leave the server up, so the operator can read
    # the reason from the model repository API instead of watching a crash loop.
    args.append("--exit-on-error=false")
    return args + list(triton.args)
