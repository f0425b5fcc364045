"""PrometheusClient's answers where access goes wrong: refused credentials, TLS alerts, a URL's
own userinfo. (The settings against a real HTTPS listener: tests/integration/analysis.)"""

from __future__ import annotations

import base64
import ssl

import httpx

from tritonop.analysis.prometheus import PrometheusAccess, PrometheusClient
from tritonop.analysis.result import QueryResult

ONE = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "1"]}}


async def test_a_refusal_that_is_not_prometheus_talking_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="no org id")

    async with PrometheusClient("https://u:pw@mimir.test/prometheus", transport=httpx.MockTransport(refuse)) as client:
        result = await client.query("up")
    assert result == QueryResult.error(
        "Prometheus at https://REDACTED@mimir.test/prometheus refused the request (HTTP 401): check the "
        "operator's Prometheus credentials and tenant header (docs/prometheus.md)"
    )


async def test_a_tls_alert_on_read_is_an_error_result_not_an_exception() -> None:
    # anyio hands a TLS alert received after the handshake (a server refusing the client
    # certificate) up as a bare ssl.SSLError, not an httpx error.
    def alert(request: httpx.Request) -> httpx.Response:
        raise ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")

    async with PrometheusClient("https://prometheus.test", transport=httpx.MockTransport(alert)) as client:
        result = await client.query("up")
    assert result.status == "error"
    assert result.message.startswith("TLS with Prometheus at https://prometheus.test failed: ")


async def test_without_credential_files_a_urls_userinfo_still_authenticates() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ONE)

    transport = httpx.MockTransport(record)
    async with PrometheusClient("http://user:pw@prometheus.test", transport=transport) as client:
        assert await client.query("up") == QueryResult.of(1.0)
    assert seen[0].headers["authorization"] == f"Basic {base64.b64encode(b'user:pw').decode()}"


async def test_headers_are_sent_and_redirects_not_followed() -> None:
    seen: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "http://elsewhere.test/api/v1/query"})

    access = PrometheusAccess(headers=(("X-Scope-OrgID", "team-a"),))
    async with PrometheusClient("http://prometheus.test", access=access, transport=httpx.MockTransport(redirect)) as c:
        result = await c.query("up")
    assert result.status == "error"
    assert [str(r.url) for r in seen] == ["http://prometheus.test/api/v1/query"]  # credentials go nowhere else
    assert seen[0].headers["x-scope-orgid"] == "team-a"
