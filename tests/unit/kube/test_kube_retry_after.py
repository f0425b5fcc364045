"""The client honours Retry-After on 429 and 5xx: it waits that long and sends the request
again, within a bounded total wait; other errors, and longer waits, go to the caller."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tritonop.kube.client import RETRY_AFTER_BUDGET_S, Connection, KubeClient, KubeError, retry_after

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ml"}}


def client(answers: list[httpx.Response]) -> tuple[KubeClient, list[httpx.Request], list[float]]:
    sent: list[httpx.Request] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answers.pop(0)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    connection = Connection(server="http://kube.test", headers={}, verify=True, cert=None)
    return KubeClient(connection, transport=httpx.MockTransport(handler), sleep=sleep), sent, slept


def status(code: int, retry: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry} if retry is not None else {}
    return httpx.Response(code, json={"kind": "Status", "code": code, "message": "busy"}, headers=headers)


OK = httpx.Response(200, json=DEPLOYMENT)


@pytest.mark.parametrize("code", [429, 503, 500])
async def test_a_retry_after_answer_is_retried_after_that_long(code: int) -> None:
    kube, sent, slept = client([status(code, "2"), status(code, "1"), OK])
    assert await kube.server_side_apply(DEPLOYMENT) == DEPLOYMENT
    assert slept == [2.0, 1.0]
    assert len(sent) == 3 and {r.method for r in sent} == {"PATCH"}
    assert sent[0].content == sent[2].content  # the same request again


@pytest.mark.parametrize(
    ("answers", "slept_then_raised"),
    [
        ([status(429)], []),  # no header: the caller retries
        ([status(409, "1")], []),  # a conflict is never retried here: the caller re-reads
        ([status(429, "Wed, 21 Oct 2015 07:28:00 GMT")], []),  # an HTTP-date: ignored
        ([status(429, "30")], []),  # longer than the budget: left to the caller
        ([status(429, "6"), status(429, "6")], [6.0]),  # the second wait would pass the budget
        ([status(503, "0")] * 4, [0.0, 0.0, 0.0]),  # at most three retries
    ],
)
async def test_retries_are_bounded(answers: list[httpx.Response], slept_then_raised: list[float]) -> None:
    kube, sent, slept = client(list(answers))
    with pytest.raises(KubeError) as raised:
        await kube.get("apps/v1", "Deployment", "ml", "web")
    assert slept == slept_then_raised
    assert len(sent) == len(answers)
    assert raised.value.status == answers[-1].status_code
    assert sum(slept) <= RETRY_AFTER_BUDGET_S


async def test_the_error_carries_the_retry_after_it_did_not_wait_for() -> None:
    kube, _, _ = client([status(429, "30")])
    with pytest.raises(KubeError) as raised:
        await kube.list("apps/v1", "Deployment", "ml", "a=b")
    assert raised.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: status(429, "3"), 3.0),
        (lambda: status(429, " 1.5 "), 1.5),
        (lambda: status(504, "2"), 2.0),
        (lambda: status(200, "2"), None),
        (lambda: status(404, "2"), None),
        (lambda: status(429, "-1"), None),
        (lambda: status(429, "inf"), None),
    ],
)
def test_retry_after_parsing(make: Callable[[], httpx.Response], expected: float | None) -> None:
    assert retry_after(make()) == expected
