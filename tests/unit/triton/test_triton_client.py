"""Operator URLs to tritonclient addresses."""

from __future__ import annotations

import pytest

from tritonop.triton.client import ClientTarget, client_target


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://isvc-abc.ml.svc:8000", ClientTarget("isvc-abc.ml.svc:8000", ssl=False)),
        ("http://127.0.0.1:8000/", ClientTarget("127.0.0.1:8000", ssl=False)),
        ("https://triton.example.com", ClientTarget("triton.example.com", ssl=True)),
        ("https://gw.example.com:8443/triton/", ClientTarget("gw.example.com:8443/triton", ssl=True)),
        ("localhost:8000", ClientTarget("localhost:8000", ssl=False)),
    ],
)
def test_client_target(url: str, target: ClientTarget) -> None:
    assert client_target(url) == target


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("grpc://host:8001", "http:// or https://"),
        ("http://", "no host"),
        ("http://host:8000/?x=1", "query or fragment"),
    ],
)
def test_unusable_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        client_target(url)
