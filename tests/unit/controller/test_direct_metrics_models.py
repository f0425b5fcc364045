"""DirectMetrics with several models: one scrape per pod, one tally per model (or every model, "*")."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.fake_kube import FakeKube
from tritonop.children import IsvcRef
from tritonop.controller.direct_metrics import DirectMetrics
from tritonop.endpoints import TritonEndpoints

REF = IsvcRef(namespace="ml", name="chain", uid="u1")


def pod(name: str, revision: str, ip: str) -> dict[str, Any]:
    labels = {"serving.tritonop.dev/inferenceservice": "chain", "serving.tritonop.dev/revision": revision}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "labels": labels},
        "status": {"phase": "Running", "podIP": ip},
    }


def text(counts: dict[str, tuple[int, int]]) -> str:
    lines = []
    for model, (success, failure) in counts.items():
        lines.append(f'nv_inference_request_success{{model="{model}",version="1"}} {success}')
        lines.append(f'nv_inference_request_failure{{model="{model}",reason="BACKEND",version="1"}} {failure}')
    return "\n".join(lines) + "\n"


class Pods:
    """Two canary pods and one stable pod answering their metrics from ``counts`` (ip -> model -> counts)."""

    def __init__(self) -> None:
        self.kube = FakeKube()
        for obj in (pod("c-0", "c", "10.0.0.1"), pod("c-1", "c", "10.0.0.2"), pod("s-0", "s", "10.0.0.3")):
            self.kube.put(obj)
        zero = {"pre": (0, 0), "post": (0, 0), "pipeline": (0, 0)}
        self.counts: dict[str, dict[str, tuple[int, int]]] = {ip: dict(zero) for ip in ("10.0.0.1", "10.0.0.2")}
        self.counts["10.0.0.3"] = {"pre": (0, 0), "post": (0, 0)}
        self.asked = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        return httpx.Response(200, text=text(self.counts[str(request.url.host)]))

    def direct(self) -> DirectMetrics:
        return DirectMetrics(self.kube, TritonEndpoints("http://x"), transport=httpx.MockTransport(self.answer))  # type: ignore[arg-type]


async def test_each_listed_model_has_its_own_tally_from_one_scrape_per_pod() -> None:
    pods = Pods()
    direct = pods.direct()
    first = await direct.sample(REF, ("pre", "post", "pipeline"), "c", "s")
    assert first.complete and list(first.tallies) == ["pre", "post", "pipeline"]
    assert pods.asked == 3  # one scrape per pod, whatever the number of models
    pods.counts["10.0.0.1"] = {"pre": (10, 0), "post": (6, 4), "pipeline": (6, 4)}
    pods.counts["10.0.0.2"] = {"pre": (5, 0), "post": (5, 0), "pipeline": (5, 0)}
    pods.counts["10.0.0.3"] = {"pre": (50, 0), "post": (50, 0)}
    second = await direct.sample(REF, ("pre", "post", "pipeline"), "c", "s")
    tallies = second.tallies
    assert [(m, t.canary.requests, t.canary.failures) for m, t in tallies.items()] == [
        ("pre", 15, 0),
        ("post", 15, 4),
        ("pipeline", 15, 4),
    ]
    assert (tallies["pre"].stable.requests, tallies["pipeline"].stable.requests) == (50, 0)
    assert second.tally is tallies["pre"] and tallies["post"] is first.tallies["post"]
    third = await direct.sample(REF, ("pre", "post", "pipeline"), "c2", "s")
    assert all(t.canary.requests == 0 for t in third.tallies.values())  # another canary starts afresh
    await direct.aclose()


async def test_every_model_is_what_the_pods_report() -> None:
    pods = Pods()
    direct = pods.direct()
    await direct.sample(REF, ("*",), "c", "s")
    pods.counts["10.0.0.1"]["pipeline"] = (3, 1)
    sample = await direct.sample(REF, ("*",), "c", "s")
    assert sorted(sample.tallies) == ["pipeline", "post", "pre"]
    # "pipeline" is only on the canary's pods: the stable side reads as zeros.
    assert (sample.tallies["pipeline"].canary.requests, sample.tallies["pipeline"].stable.requests) == (4, 0)
    await direct.aclose()
