"""The tritonserver command line."""

from __future__ import annotations

from tritonop.children.triton_args import tritonserver_args


def test_explicit_mode_loads_the_model_and_keeps_the_server_up_on_load_errors(make_spec) -> None:
    spec = make_spec(triton={"gpus": 1, "args": ["--log-verbose=1"]})
    assert tritonserver_args(spec, ("resnet50",), "s3://b/repo") == [
        "--model-repository=s3://b/repo",
        "--model-control-mode=explicit",
        "--load-model=resnet50",
        "--strict-readiness=true",
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
        "--http-restricted-api=model-repository,model-config,shared-memory,trace,logging:tritonop-key=$(TRITONOP_API_KEY)",
        "--grpc-restricted-protocol=model-repository,model-config,shared-memory,trace,logging:tritonop-key=$(TRITONOP_API_KEY)",
        "--exit-on-error=false",
        "--log-verbose=1",
    ]


def test_poll_mode_cpu_summaries_and_lenient_readiness(make_spec) -> None:
    spec = make_spec(triton={"gpus": 0, "modelControlMode": "poll", "strictReadiness": False, "summaryLatencies": True})
    args = tritonserver_args(spec, ("m",), "/mnt/models")
    assert "--model-control-mode=poll" in args
    assert not [a for a in args if a.startswith("--load-model")]
    assert "--strict-readiness=false" in args
    assert "--allow-gpu-metrics=false" in args
    assert "--metrics-config=summary_latencies=true" in args
    assert args[-1] == "--exit-on-error=false"


def test_explicit_mode_loads_every_listed_model_in_order(make_spec) -> None:
    spec = make_spec(model={"storageUri": "s3://b/repo", "models": ["preprocess", "resnet", "ensemble"]})
    args = tritonserver_args(spec, ("preprocess", "resnet", "ensemble"), "s3://b/repo")
    assert [a for a in args if a.startswith("--load-model")] == [
        "--load-model=preprocess",
        "--load-model=resnet",
        "--load-model=ensemble",
    ]
    assert args.index("--load-model=ensemble") < args.index("--strict-readiness=true")


def test_every_model_is_tritons_own_star(make_spec) -> None:
    spec = make_spec(model={"storageUri": "s3://b/repo", "models": ["*"]})
    args = tritonserver_args(spec, ("*",), "s3://b/repo")
    assert [a for a in args if a.startswith("--load-model")] == ["--load-model=*"]
