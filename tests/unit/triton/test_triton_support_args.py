"""tests/support/triton.py: making a container's tritonserver args runnable on this machine."""

from __future__ import annotations

from tests.support.triton import expand_env_references, localize_args


def test_localize_args_replaces_repository_and_ports_in_both_spellings() -> None:
    container_args = [
        "tritonserver",
        "--model-repository=/mnt/models",
        "--model-control-mode=explicit",
        "--load-model=m",
        "--http-port",
        "8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
        "--log-verbose=1",
    ]
    assert localize_args(container_args, model_repository="/tmp/repo", http_port=1, grpc_port=2, metrics_port=3) == [
        "tritonserver",
        "--model-control-mode=explicit",
        "--load-model=m",
        "--log-verbose=1",
        "--model-repository=/tmp/repo",
        "--http-port=1",
        "--grpc-port=2",
        "--metrics-port=3",
    ]


def test_localize_args_keeps_flags_that_merely_share_a_prefix() -> None:
    args = ["--http-port-extra=9", "--model-repository-x=y"]
    localized = localize_args(args, model_repository="/r", http_port=1, grpc_port=2, metrics_port=3)
    assert localized[:2] == args


def test_env_references_expand_as_the_kubelet_expands_them() -> None:
    env = {"TRITONOP_API_KEY": "k3y"}
    args = ["--http-restricted-api=logging:tritonop-key=$(TRITONOP_API_KEY)", "$$(TRITONOP_API_KEY)", "$(UNSET)", "$(", "a$"]
    assert expand_env_references(args, env) == [
        "--http-restricted-api=logging:tritonop-key=k3y",
        "$(TRITONOP_API_KEY)",
        "$(UNSET)",
        "$(",
        "a$",
    ]
