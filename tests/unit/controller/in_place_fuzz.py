"""A stateful fuzz of rollout.strategy InPlace in the real Controller: random users, pods and
faults; invariant I8 (docs/rollout.md) after every step.

Emulated, as in rollout_fuzz.py: the Kubernetes API (FakeKube, whose Deployments get this
module's pods), Triton in each pod (the versions it holds, loads that fail, pods that do not
answer, Triton's unreadiness while a version loads) and the pods' metrics (a healthy or a
failing candidate). The in-place logic, the canary machine, status writing and the
orchestrator are the operator's own.

- I8a a load never jumps between disjoint version sets, and never leaves a pod without a
  ready version: every pod that held a version holds one after every step;
- I8b at most one pod holds a version that was never stored as ``status.inPlace.version``
  (the candidate, on the canary pod), besides what pods start with (the repository's policy);
- I4 (as in rollout_fuzz.py) a status written by an operator acting on a stale object is refused;
- I8c a pod is evicted only while Kubernetes counts it not Ready (and its Triton says so too); a
  wedged pod (an unload that never finishes) is, within minutes;
- I6 (as in rollout_fuzz.py) a promote or abort acts only on the version switch it was set for;
- no exception but an API error escapes reconcile or tick.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import tritonop.controller.in_place as in_place_module
from tests.support.controller_harness import NAME, NAMESPACE, Harness, model_spec
from tests.support.fake_kube import Crash
from tests.unit.controller.rollout_fuzz import ManualActionsCheck
from tritonop.analysis.triton_metrics import DirectTally, PodCounters
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.refs import IsvcRef
from tritonop.controller.direct_metrics import DirectSample
from tritonop.kube.client import KubeError
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION
from tritonop.triton.model_control import ModelControlError
from tritonop.triton.results import AcceptanceResult

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
VERSIONS = ("1", "2", "3")
STARTS_WITH = ("1",)  # what a new pod loads: the repository's own version policy


class _Steps:
    total = 0


STEPS = _Steps()
# What the runs reached, over all machines: so a fuzz that never switched a version fails.
REACHED: Counter[str] = Counter()


def spec_for(version: str, replicas: int = 3) -> dict[str, Any]:
    return model_spec(
        model={"storageUri": "s3://models/repo", "version": version},
        autoscaling={"minReplicas": replicas, "maxReplicas": replicas},
        rollout={"strategy": "InPlace", "interval": "10s", "failureThreshold": 2},
    )


class FakePods:
    """Each Deployment's pods and the Triton in each: the versions it holds, and its faults."""

    def __init__(self) -> None:
        self.versions: dict[str, tuple[str, ...]] = {}  # pod -> versions ready
        self.unready: set[str] = set()  # a version load made Triton unready until the next probe
        self.wedged: set[str] = set()  # an unload that never finishes: unready until replaced
        self.wedge_next = False  # the next load wedges its pod
        self.evictions: list[str] = []  # I8c violations: pods evicted while Kubernetes counted them Ready
        self.unreachable: set[str] = set()
        self.failing: set[str] = set()  # versions whose load fails
        self.generation = 0
        self.jumps: list[str] = []  # I8a violations seen by a load

    def sync(self, h: Harness) -> None:
        """The Deployment controller and kubelet: running pods for every Deployment's replicas."""
        for pod in [p for p in self.versions if ("v1", "Pod", NAMESPACE, p) not in h.kube.objects]:
            # Evicted by the operator (pod_restarts removes both at once).
            if pod not in self.unready:
                self.evictions.append(f"pod {pod} evicted while Ready")
            REACHED["evicted wedged" if pod in self.wedged else "evicted"] += 1
            del self.versions[pod]
            self.wedged.discard(pod)
        wanted: dict[str, str] = {}
        for name, deployment in h.deployments().items():
            status = deployment.get("status") or {}
            revision = name.removeprefix(f"{NAME}-")
            ready = status.get("readyReplicas") or 0
            existing = sorted(p for p in self.versions if p.startswith(f"{name}-"))
            for pod in existing[:ready]:
                wanted[pod] = revision
            for i in range(len(existing), ready):
                self.generation += 1
                pod = f"{name}-{self.generation}-{i}"
                self.versions[pod] = STARTS_WITH
                wanted[pod] = revision
        for pod in [p for p in self.versions if p not in wanted]:
            del self.versions[pod]
            h.kube.objects.pop(("v1", "Pod", NAMESPACE, pod), None)
        for pod, revision in wanted.items():
            h.kube.objects[("v1", "Pod", NAMESPACE, pod)] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod,
                    "namespace": NAMESPACE,
                    "labels": {ISVC_LABEL: NAME, REVISION_LABEL: revision},
                    "resourceVersion": "1",
                },
                "status": {
                    "phase": "Running",
                    "podIP": "10.0.0.1",
                    "containerStatuses": [{"name": "triton", "ready": pod not in self.unready}],
                },
            }

    # what controller/in_place.py calls, by URL "pod://NAME"

    async def ready_versions(self, url: str, model: str, *, key: str | None, timeout_s: float = 5.0) -> list[str]:
        pod = url.removeprefix("pod://")
        if pod in self.unreachable or pod not in self.versions:
            raise ModelControlError("Triton unreachable")
        return sorted(self.versions[pod], key=int)

    async def load_versions(self, url: str, model: str, versions: Sequence[str], *, key: str | None) -> None:
        pod = url.removeprefix("pod://")
        if pod in self.unreachable or pod not in self.versions:
            raise ModelControlError("Triton unreachable")
        before, after = set(self.versions[pod]), set(versions)
        if before and not (after <= before or after >= before):
            self.jumps.append(f"pod {pod}: {sorted(before)} -> {sorted(after)}")
        if after - before & self.failing:
            raise ModelControlError(f"loading versions {sorted(after)} failed")  # what was ready stays
        self.versions[pod] = tuple(sorted(after, key=int))
        self.unready.add(pod)
        if self.wedge_next:
            self.wedge_next = False
            self.wedged.add(pod)
        REACHED["load"] += 1

    def server_ready_answer(self, pod: str) -> bool:
        return pod not in self.unready and pod not in self.wedged

    async def server_ready(self, url: str, *, key: str | None, timeout_s: float = 5.0) -> bool | None:
        pod = url.removeprefix("pod://")
        if pod in self.unreachable or pod not in self.versions:
            return None
        return self.server_ready_answer(pod)

    def probe(self) -> None:
        """The kubelet's readiness probes: a pod whose load finished is Ready again, unless wedged."""
        self.unready = set(self.wedged)

    async def acceptance(self, url: str, model: str, version: str | None, acceptance: Any, *, key: str | None) -> Any:
        return AcceptanceResult(True, "AcceptancePassed", "ok")


class FakeVersionMetrics:
    """Per-version direct metrics: "pass" a healthy candidate, "fail" a failing one, "off" no answer."""

    def __init__(self) -> None:
        self.mode = "pass"

    async def sample_versions(
        self, ref: IsvcRef, model: str, revision: str, canary_pod: str, candidate: str, version: str
    ) -> DirectSample:
        tally = DirectTally(f"{canary_pod}/{candidate}", version)
        if self.mode == "off":
            return DirectSample(tally, complete=False, problem=f"pod {canary_pod}: no metrics answer")
        failures = 0 if self.mode == "pass" else 500
        tally.canary.total = PodCounters(success=1000 - failures, failure=failures)
        tally.stable.total = PodCounters(success=10_000)
        return DirectSample(tally, complete=True)


class PodUrls:
    def url_for_pod(self, namespace: str, pod: str, pod_ip: str | None) -> str:
        return f"pod://{pod}"


class InPlaceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pods = FakePods()
        self.metrics = FakeVersionMetrics()
        self._patched = {
            name: getattr(in_place_module, name)
            for name in ("ready_versions", "load_versions", "run_acceptance", "server_ready")
        }
        in_place_module.ready_versions = self.pods.ready_versions  # type: ignore[assignment]
        in_place_module.load_versions = self.pods.load_versions  # type: ignore[assignment]
        in_place_module.run_acceptance = self.pods.acceptance  # type: ignore[assignment]
        in_place_module.server_ready = self.pods.server_ready  # type: ignore[assignment]
        self.h = Harness(T0)
        self._wire(self.h.controller)
        self.judged: set[str] = set(STARTS_WITH)
        self.i6 = ManualActionsCheck(self.h, named=in_place_module.annotation_key)
        self.seen_events = 0
        self.snapshots: list[dict[str, Any]] = []
        self.h.apply(spec_for("1"))
        self._run(self.h.reconcile())

    def teardown(self) -> None:
        for name, original in self._patched.items():
            setattr(in_place_module, name, original)

    def _wire(self, controller: Any) -> None:
        controller.in_place.endpoints = PodUrls()
        controller.in_place.direct = self.metrics

    def _run(self, call: Any, *, controller_may_die: bool = False) -> None:
        STEPS.total += 1
        self.snapshots = [*self.snapshots, self.h.body()][-6:]
        try:
            asyncio.run(call)
        except KubeError:
            pass  # kopf retries
        except Crash:
            assert controller_may_die
            self.h.controller = self.h.new_controller()
            self._wire(self.h.controller)
            asyncio.run(self.h.reconcile(force=True))
        finally:
            self.h.kube.crash_at = None
        self.h.kube.settle()
        self.pods.sync(self.h)
        for event in self.h.events[self.seen_events :]:
            REACHED[event.reason] += 1
        self.seen_events = len(self.h.events)
        stored = (self.h.status().get("inPlace") or {}).get("version")
        if stored is not None:
            self.judged.add(stored)

    # ------------------------------------------------------------------ the user

    @rule(version=st.sampled_from(VERSIONS))
    def edit_version(self, version: str) -> None:
        self.h.apply(spec_for(version))
        self._run(self.h.reconcile())

    @rule(action=st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION]), version=st.sampled_from(VERSIONS))
    def annotate(self, action: str, version: str) -> None:
        self.h.annotate({action: f"v{version}"})

    @rule(action=st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION]), version=st.sampled_from(VERSIONS))
    def apply_naming_the_version(self, action: str, version: str) -> None:
        """One apply of a manifest with the version and an annotation already naming it: stale for
        the switch it starts (I6), acts once set again."""
        annotations = {**(self.h.body()["metadata"].get("annotations") or {}), action: f"v{version}"}
        self.h.apply(spec_for(version), annotations=annotations)
        self._run(self.h.reconcile())

    @rule()
    def remove_annotations(self) -> None:
        self.h.annotate({PROMOTE_ANNOTATION: None, ABORT_ANNOTATION: None})

    @rule()
    def clear_status(self) -> None:
        body = self.h.body()
        body.pop("status", None)
        self.h.kube.put(body)

    # ------------------------------------------------------------------ the cluster

    @rule(seconds=st.sampled_from([1, 5, 10, 30]))
    def tick(self, seconds: int) -> None:
        self.h.advance(seconds)
        self._run(self.h.tick())

    @rule(ticks=st.integers(min_value=2, max_value=8), metrics=st.sampled_from(["pass", "fail", "off"]))
    def time_passes(self, ticks: int, metrics: str) -> None:
        """Several ticks of 5 s with the kubelet probing in between, the candidate's metrics
        passing, failing or unread throughout: how a switch gets decided either way."""
        self.metrics.mode = metrics
        for _ in range(ticks):
            self.h.advance(5)
            self._run(self.h.tick())
            self.pods.probe()
            self.pods.sync(self.h)

    @rule()
    def readiness_probes(self) -> None:
        """The kubelet probes: a pod whose load finished is Ready again."""
        self.pods.probe()
        self.pods.sync(self.h)

    @rule()
    def an_unload_wedges(self) -> None:
        """The next load leaves its pod's Triton not ready for good (an unload that never ends)."""
        self.pods.wedge_next = True

    @rule(minutes=st.integers(min_value=1, max_value=3))
    def minutes_pass(self, minutes: int) -> None:
        """Ticks of 5 s over minutes, the kubelet probing: a wedged pod is found and replaced."""
        wedged = set(self.pods.wedged)
        for _ in range(minutes * 12):
            self.h.advance(5)
            self._run(self.h.tick())
            self.pods.probe()
            self.pods.sync(self.h)
        if minutes >= 2:  # WEDGED_AFTER and a pass or two
            stuck = wedged & self.pods.wedged - self.pods.unreachable
            assert not stuck, f"I8c: wedged pods never replaced: {sorted(stuck)}"

    @rule(pod=st.integers(min_value=0, max_value=5))
    def pod_restarts(self, pod: int) -> None:
        """A pod replaced (rescheduled, evicted): its successor starts with the repository's policy."""
        names = sorted(self.pods.versions)
        if names:
            del self.pods.versions[names[pod % len(names)]]
            self.h.kube.objects.pop(("v1", "Pod", NAMESPACE, names[pod % len(names)]), None)
            self.pods.sync(self.h)

    @rule(pod=st.integers(min_value=0, max_value=5), reachable=st.booleans())
    def triton_answers(self, pod: int, reachable: bool) -> None:
        names = sorted(self.pods.versions)
        if names:
            (self.pods.unreachable.discard if reachable else self.pods.unreachable.add)(names[pod % len(names)])

    @rule(version=st.sampled_from(VERSIONS), fails=st.booleans())
    def version_loads(self, version: str, fails: bool) -> None:
        (self.pods.failing.add if fails else self.pods.failing.discard)(version)

    @rule(mode=st.sampled_from(["pass", "fail", "off"]))
    def candidate_metrics(self, mode: str) -> None:
        self.metrics.mode = mode

    @rule(status=st.sampled_from([500, 409]), verb=st.sampled_from([None, "merge_patch", "apply"]))
    def failing_write_then_tick(self, status: int, verb: str | None) -> None:
        self.h.kube.fail_next(status, verb)
        self.h.advance(5)
        self._run(self.h.tick())
        self.h.kube._failures.clear()

    @rule(after=st.integers(min_value=1, max_value=25))
    def crash_mid_pass(self, after: int) -> None:
        self.h.kube.crash_at = len(self.h.kube.calls) + after
        self.h.advance(5)
        self._run(self.h.tick(), controller_may_die=True)

    @rule(age=st.integers(min_value=2, max_value=5))
    def second_operator_on_a_stale_body(self, age: int) -> None:
        if len(self.snapshots) < age:
            return
        stale = copy.deepcopy(self.snapshots[-age])
        before = self.h.status()
        current = self.h.body()["metadata"]["resourceVersion"]
        other = self.h.new_controller()
        self._wire(other)
        self.h.advance(5)
        self._run(other.tick(stale))
        if stale["metadata"]["resourceVersion"] != current:
            assert self.h.status() == before, "I4: a decision made on a stale object changed status"

    # ------------------------------------------------------------------ the contract

    @invariant()
    def i8a_no_pod_jumps_or_empties(self) -> None:
        assert not self.pods.jumps, f"I8: {self.pods.jumps}"
        for pod, versions in self.pods.versions.items():
            assert versions, f"I8: pod {pod} holds no version"

    @invariant()
    def i8c_only_wedged_pods_are_evicted(self) -> None:
        assert not self.pods.evictions, f"I8c: {self.pods.evictions}"

    @invariant()
    def i6_annotations_act_only_on_the_switch_they_were_set_for(self) -> None:
        self.i6.check()

    @invariant()
    def i8b_an_unjudged_version_on_one_pod_at_most(self) -> None:
        holders = [pod for pod, versions in self.pods.versions.items() if set(versions) - self.judged]
        assert len(holders) <= 1, (
            f"I8: versions never stored as status.inPlace.version on {holders}: {self.pods.versions}"
        )
