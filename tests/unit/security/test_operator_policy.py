"""Operator-level restrictions (no SSRF through prometheusUrl, no file:// unless allowed) and URI redaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.controller_harness import Harness, model_spec
from tritonop.analysis.prometheus import PrometheusClients
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import BuildError
from tritonop.config import OperatorConfig
from tritonop.operator_policy import check_spec, prometheus_url_allowed
from tritonop.redact import redact_uri
from tritonop.render import render

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
OPERATOR_PROMETHEUS = "http://prometheus.monitoring:9090"


class Listener:
    """A local HTTP server that counts requests and answers like an empty Prometheus."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append(self.path)
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def spec(**analysis: object) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate(model_spec(rollout={"analysis": analysis}))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (OPERATOR_PROMETHEUS, True),
        (OPERATOR_PROMETHEUS + "/", True),
        ("http://prometheus.monitoring:9090/sub/path", True),
        ("http://prometheus.monitoring:9091", False),
        ("https://prometheus.monitoring:9090", False),
        ("http://prometheus.monitoring.evil:9090", False),
        ("http://user:pw@prometheus.monitoring:9090", False),
        ("http://prometheus.monitoring:9090/?x=1", False),
        ("http://prometheus.monitoring:9090/a/../../admin", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://team-prom.ml:9090/", True),
    ],
)
def test_prometheus_urls_allowed_only_by_the_allowlist(url: str, allowed: bool) -> None:
    config = OperatorConfig(prometheus_url=OPERATOR_PROMETHEUS, allowed_prometheus_urls=("http://team-prom.ml:9090",))
    assert prometheus_url_allowed(url, config) is allowed


def test_file_storage_is_refused_unless_under_an_allowed_prefix() -> None:
    host_spec = InferenceServiceSpec.model_validate({"model": {"storageUri": "file:///var/lib/kubelet/pods"}})
    with pytest.raises(BuildError) as refused:
        check_spec(host_spec, OperatorConfig())
    assert refused.value.reason == "FileStorageNotAllowed"
    with pytest.raises(BuildError):
        check_spec(host_spec, OperatorConfig(allowed_file_paths=("/models",)))
    models = InferenceServiceSpec.model_validate({"model": {"storageUri": "file:///models/resnet"}})
    check_spec(models, OperatorConfig(allowed_file_paths=("/models",)))
    sneaky = InferenceServiceSpec.model_validate({"model": {"storageUri": "file:///models/../etc"}})
    with pytest.raises(BuildError):
        check_spec(sneaky, OperatorConfig(allowed_file_paths=("/models",)))


def test_render_applies_the_same_policy() -> None:
    obj = {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "resnet"},
        "spec": {"model": {"storageUri": "file:///etc"}},
    }
    with pytest.raises(BuildError, match=r"--allow-file-path"):
        render(obj, OperatorConfig())


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("s3://AKIA:secret@bucket/models", "s3://REDACTED@bucket/models"),
        ("https://host/model.tar.gz?X-Amz-Signature=abc&X-Amz-Credential=k", "https://host/model.tar.gz?REDACTED"),
        ("https://u:p@host/m.zip?sig=1#frag", "https://REDACTED@host/m.zip?REDACTED#REDACTED"),
        ("gs://bucket/plain", "gs://bucket/plain"),
    ],
)
def test_uris_are_redacted(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


def test_build_errors_never_echo_userinfo_or_query() -> None:
    bad = InferenceServiceSpec.model_validate({"model": {"storageUri": "https://u:pw@host/model.bin?sig=s3cr3t"}})
    from tritonop.children.storage import storage_for

    with pytest.raises(BuildError) as err:
        storage_for(bad.model, OperatorConfig())
    assert "pw" not in str(err.value) and "s3cr3t" not in str(err.value)
    assert "REDACTED" in str(err.value)


def _rollout_harness(listener: Listener, *, allow: bool) -> Harness:
    config = OperatorConfig(
        triton_image="tritonserver:test",
        prometheus_url=OPERATOR_PROMETHEUS,
        allowed_prometheus_urls=(listener.url,) if allow else (),
    )
    h = Harness(T0, config=config)
    h.controller.prometheus = PrometheusClients(timeout_s=2)
    return h


async def _canary_analysis(h: Harness, url: str) -> None:
    rollout = {"steps": [20, 50], "interval": "10s", "analysis": {"prometheusUrl": url}}
    h.apply(model_spec("s3://models/v1", traffic=GATEWAY, rollout=rollout))
    await h.reconcile()
    await h.tick()
    h.apply(model_spec("s3://models/v2", traffic=GATEWAY, rollout=rollout))
    await h.reconcile()
    await h.tick()
    h.advance(10)
    await h.tick()


async def test_a_foreign_prometheus_url_stalls_and_is_never_queried(listener: Listener) -> None:
    h = _rollout_harness(listener, allow=False)
    await _canary_analysis(h, listener.url + "/")
    assert listener.requests == []
    stalled = next(c for c in h.status()["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "PrometheusUrlNotAllowed"
    assert "PrometheusUrlNotAllowed" in h.reasons()


async def test_an_allowed_prometheus_url_is_queried(listener: Listener) -> None:
    h = _rollout_harness(listener, allow=True)
    await _canary_analysis(h, listener.url + "/")
    assert listener.requests, "the allowed Prometheus was never asked"
    await h.controller.aclose()
