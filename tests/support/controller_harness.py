"""The real Controller, in process, over FakeKube with a test clock.

Emulated here, because a unit test runs no servers: Triton (the gate asks FakeTriton,
which answers from the Deployment's readiness and a `triton_ready` switch) and
Prometheus (FakePrometheus answers tritonop's own queries by their shape with the
numbers a healthy, failing or unreachable canary would give). Everything else is the
operator's own code: plan/advance, the children builders, apply, status writing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tests.support.fake_kube import FakeKube
from tritonop import API_VERSION, KIND
from tritonop.analysis.result import QueryResult
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus, ModelFacts
from tritonop.children import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.controller import Controller
from tritonop.controller.direct_metrics import DirectSample
from tritonop.controller.triton_checks import TritonChecks
from tritonop.endpoints import TritonEndpoints
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION, Event, GateResult
from tritonop.status import DeploymentReadiness

NAMESPACE = "ml"
NAME = "resnet"
UID = "0b1c5a3e-0000-4000-8000-00000000beef"
PrometheusMode = Literal["pass", "fail", "down"]


class FakeTriton(TritonChecks):
    """The gate without Triton: open when the canary's Deployment is available and Triton is 'ready'."""

    def __init__(self, kube: FakeKube) -> None:
        super().__init__(kube, TritonEndpoints("http://{service}.{namespace}:8000"))  # type: ignore[arg-type]
        self.triton_ready = True

    async def gate(self, ref: IsvcRef, spec: InferenceServiceSpec, canary: str) -> GateResult:
        deployment = await self.readiness(ref, canary)
        assert deployment is not None
        if not deployment.available:
            return GateResult(False, "DeploymentNotAvailable", deployment.message)
        if not self.triton_ready:
            return GateResult(False, "ModelNotReady", "model is not ready")
        return GateResult(True, "Ready", "", acceptance_passed=True if spec.rollout.acceptance else None)

    async def stable_model_facts(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        status: InferenceServiceStatus,
        stable: DeploymentReadiness | None,
    ) -> tuple[ModelFacts | None, list[ModelFacts] | None]:
        return status.model, status.models


@dataclass(frozen=True)
class VariantAnswers:
    """What Prometheus says of one revision's series (experiments): a query naming this revision
    alone gets its figure by shape; one naming no Triton metric (a custom metric) gets ``metric``."""

    requests: float
    success_rate: float
    latency_ms: float
    metric: float = 0.0


@dataclass
class FakePrometheus:
    mode: PrometheusMode = "pass"
    queries: list[str] = field(default_factory=list)
    variants: dict[str, VariantAnswers] = field(default_factory=dict)  # revision -> its answers
    failing: set[str] = field(default_factory=set)  # revisions whose success rate is 0.5 whatever the mode

    async def for_url(self, url: str) -> FakePrometheus:
        return self

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        self.queries.append(promql)
        if self.mode == "down":
            return QueryResult.error("Prometheus at http://prometheus:9090 unreachable: connection refused")
        named = sorted((r for r in self.variants if f'revision="{r}"' in promql), key=lambda r: promql.index(r))
        if len(named) == 2 and "_over_time(" in promql:  # paired latency, first named minus second
            first, second = (self.variants[r] for r in named)
            answers = {"avg": first.latency_ms - second.latency_ms, "stddev": 0.5, "count": 30.0}
            return QueryResult.of(answers[promql.split("_", 1)[0]])
        if len(named) == 1:
            answer = self.variants[named[0]]
            if "nv_inference" not in promql:
                return QueryResult.of(answer.metric)
            if "duration" in promql:
                return QueryResult.of(answer.latency_ms)
            return QueryResult.of(answer.success_rate if " / (" in promql else answer.requests)
        if " / (" in promql and any(f'revision="{r}"' in promql for r in self.failing):
            return QueryResult.of(0.5)
        if "duration" in promql:  # latency
            return QueryResult.of(12.0)
        if " / (" in promql:  # success rate
            return QueryResult.of(1.0 if self.mode == "pass" else 0.5)
        return QueryResult.of(1000.0)  # request count

    async def aclose(self) -> None:
        pass


DirectMode = Literal["off", "pass", "fail"]


@dataclass
class FakeDirect:
    """Direct metrics without Triton pods: "off" is an incomplete sample (the analysis falls
    back to Prometheus, as with pods that do not answer), "pass" a canary with 1000 requests
    and no failure, "fail" one with half of them failed (a conclusive sequential Fail)."""

    mode: DirectMode = "off"
    samples: int = 0

    async def sample(self, ref: IsvcRef, models: tuple[str, ...], canary: str, stable: str) -> DirectSample:
        self.samples += 1
        tally = DirectTally(canary, stable)
        if self.mode == "off":
            return DirectSample(tally, complete=False, problem=f"pod {ref.name}-{canary}-0: no metrics answer")
        failures = 0 if self.mode == "pass" else 500
        tally.canary.total = PodCounters(success=1000 - failures, failure=failures)
        tally.stable.total = PodCounters(success=10_000)
        return DirectSample(tally, complete=True, tallies={models[0]: tally})

    def forget(self, namespace: str, name: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


def isvc(
    spec: Mapping[str, Any],
    *,
    name: str = NAME,
    annotations: Mapping[str, str] | None = None,
    uid: str = UID,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "uid": uid}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": copy.deepcopy(dict(spec))}


def model_spec(uri: str = "s3://models/v1", **sections: Any) -> dict[str, Any]:
    """A small spec: CPU Triton, one replica, two canary steps of 10 s, failureThreshold 2."""
    spec: dict[str, Any] = {
        "model": {"storageUri": uri},
        "triton": {"gpus": 0},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
        "rollout": {"steps": [20, 50], "interval": "10s", "failureThreshold": 2},
    }
    spec.update(copy.deepcopy(sections))
    return spec


class Harness:
    """One InferenceService, the cluster it lives in, and the operator(s) acting on it."""

    def __init__(self, start: datetime, *, config: OperatorConfig | None = None) -> None:
        self.kube = FakeKube()
        self.now = start
        self.config = config or OperatorConfig(triton_image="tritonserver:test")
        self.events: list[Event] = []
        # Each change of the promote/abort annotations: (how many events were posted before it,
        # the annotation, its new value or None), for the fuzz's I6 check.
        self.manual_changes: list[tuple[int, str, str | None]] = []
        self.prometheus = FakePrometheus()
        self.direct = FakeDirect()
        self.uid = UID
        self.controller = self.new_controller()

    def new_controller(self) -> Controller:
        """A fresh operator process: no memory of what an earlier one wrote."""
        controller = Controller(self.kube, self.config, post_event=self._post, clock=lambda: self.now)  # type: ignore[arg-type]
        controller.triton = FakeTriton(self.kube)
        controller.prometheus = self.prometheus  # type: ignore[assignment]
        controller.direct = self.direct  # type: ignore[assignment]
        return controller

    def _post(self, body: Mapping[str, Any], event: Event) -> None:
        self.events.append(event)

    # ------------------------------------------------------------------ the user and the cluster

    def apply(self, spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> None:
        """kubectl apply of the spec: status is kept, generation bumps on spec change."""
        key = (API_VERSION, KIND, NAMESPACE, NAME)
        live = self.kube.objects.get(key)
        obj = isvc(spec, annotations=annotations, uid=self.uid)
        if live is not None:
            obj["status"] = copy.deepcopy(live.get("status"))
            if annotations is None and live["metadata"].get("annotations"):
                obj["metadata"]["annotations"] = copy.deepcopy(live["metadata"]["annotations"])
            if obj["status"] is None:
                del obj["status"]
        self.kube.put(obj)
        self._note_manual_changes()

    def annotate(self, annotations: Mapping[str, str | None]) -> None:
        live = self.kube.objects[(API_VERSION, KIND, NAMESPACE, NAME)]
        current = dict(live["metadata"].get("annotations") or {})
        for key, value in annotations.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        obj = copy.deepcopy(live)
        obj["metadata"]["annotations"] = current
        self.kube.put(obj)
        self._note_manual_changes()

    def _note_manual_changes(self) -> None:
        annotations = self.body()["metadata"].get("annotations") or {}
        for key in (PROMOTE_ANNOTATION, ABORT_ANNOTATION):
            before = next((value for _, k, value in reversed(self.manual_changes) if k == key), None)
            if annotations.get(key) != before:
                self.manual_changes.append((len(self.events), key, annotations.get(key)))

    def manual_value(self, key: str, events_before: int) -> tuple[int, str | None]:
        """The annotation's value when ``events_before`` events had been posted, and the index
        in ``manual_changes`` of the change that set it (-1: never set)."""
        last: tuple[int, str | None] = (-1, None)
        for index, (at, k, value) in enumerate(self.manual_changes):
            if k == key and at <= events_before:
                last = (index, value)
        return last

    def delete(self) -> None:
        """kubectl delete: the object goes, the garbage collector takes what it owned, and the
        operator's delete handler forgets it."""
        body = self.body()
        del self.kube.objects[(API_VERSION, KIND, NAMESPACE, NAME)]
        self.kube.collect_garbage(body["metadata"]["uid"])
        self.controller.forget(body)
        self.uid = f"{UID[:-4]}{int(UID[-4:], 16) + len(self.kube.calls) % 4096:04x}"

    def body(self) -> dict[str, Any]:
        return self.kube.body(API_VERSION, KIND, NAMESPACE, NAME)

    def status(self) -> dict[str, Any]:
        return self.body().get("status") or {}

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # ------------------------------------------------------------------ the operator

    async def reconcile(self, body: Mapping[str, Any] | None = None, *, force: bool = False) -> None:
        await self.controller.reconcile(body or self.body(), force=force)
        self.kube.settle()

    async def tick(self, body: Mapping[str, Any] | None = None) -> None:
        await self.controller.tick(body or self.body())
        self.kube.settle()

    # ------------------------------------------------------------------ what a test reads

    def deployments(self) -> dict[str, dict[str, Any]]:
        return self.kube.of_kind("Deployment")

    def route_weights(self) -> dict[str, int]:
        """Service name -> weight of the HTTPRoute (gateway-api specs)."""
        route = self.kube.of_kind("HTTPRoute").get(NAME)
        if route is None:
            return {}
        return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]
