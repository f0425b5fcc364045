"""A stateful fuzz of the real Controller: random users, faults and operators; invariants after every step.

The machine drives tritonop's own Controller (tests/support/controller_harness.py: the
Kubernetes API, Triton and Prometheus are emulated; the rollout logic, builders, apply and
status writing are the operator's). After every step it checks the safety contract of
docs/rollout.md ("Safety"):

- I1 every weighted backend of the route has a Deployment with ready pods, and the
  weights add up to 100 (once anything has served, something always serves);
- I2/I3 the revision persisted status names as stable exists;
- I4 an operator acting on a stale object changes no status;
- I5 objects tritonop does not own are never patched or deleted;
- I6 a promote or abort acts only on the canary instance it was set for: the annotation
  naming the revision changed after that canary (or an A/B/n variant) started;
- no exception but an API error (which kopf retries) escapes reconcile or tick;
- an Experiment's B, or a variant beyond it (A/B/n), becomes the stable only by the promote
  annotation naming it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support.controller_harness import NAME, NAMESPACE, Harness, model_spec
from tests.support.fake_kube import Crash
from tests.unit.api.admission import OpenAPIValidator
from tritonop import API_VERSION, KIND
from tritonop.api.crd import generate_crd
from tritonop.api.models import InferenceServiceSpec
from tritonop.children import revision_of
from tritonop.kube.client import KubeError
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATEWAY = {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}}
MODELS = ("s3://models/v1", "s3://models/v2", "s3://models/v3", "s3://models/v4")
EXPERIMENT = {
    "strategy": "Experiment",
    "interval": "10s",
    "failureThreshold": 2,
    "experiment": {"weight": 30, "duration": "20s"},
}
# Two models for the variant beyond B, so that a variant's revision changes between experiments
# and a promote annotation can name one before it runs (I6).
VARIANT_MODELS = ("s3://models/variant-c", "s3://models/variant-d")
# Objects with tritonop's names that someone else owns (I5): they must never change.
FOREIGN: tuple[dict[str, Any], ...] = (
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"hosts": ["someone-else"]},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": f"{NAME}-canary", "namespace": NAMESPACE},
        "spec": {"rules": []},
    },
)


# What the API server checks of a status write: the CRD's status schema (enums, patterns, types).
STATUS_SCHEMA = OpenAPIValidator(
    generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
)


class _Steps:
    total = 0


STEPS = _Steps()  # operator passes run, over all machines (the fuzz's size, reported by its runners)
MIRRORED: set[str] = set()  # revisions a shadow phase mirrored to, over all machines (the fuzz reached one)
PICKED: set[str] = set()  # variants beyond B the promote annotation made the stable (A/B/n)
STOPPED: set[str] = set()  # variants beyond B their analysis stopped


def abn(variant_uri: str) -> dict[str, Any]:
    """A/B/n: a variant beyond B with its own model repository (the same revision whatever B is)."""
    variant = {"name": "c", "weight": 20, "model": {"storageUri": variant_uri}}
    return {**EXPERIMENT, "experiment": {"weight": 30, "duration": "20s", "variants": [variant]}}


SHADOW = {"steps": [20, 50], "interval": "10s", "failureThreshold": 2, "shadow": {"percent": 50, "duration": "10s"}}
ROLLOUTS = {
    "canary": None,
    "shadow": SHADOW,
    "experiment": EXPERIMENT,
    "abn": abn(VARIANT_MODELS[0]),
    "abn-d": abn(VARIANT_MODELS[1]),
}
ACTIONS = ("Promoted", "Aborted", "ExperimentDecided")
# How the operator's Events name a canary's start and an action taken by annotation (I6).
CANARY_STARTED = re.compile(r"(?:revision|version) (\w+) started as canary of ")
BY_ANNOTATION = (
    (re.compile(r"(?:revision|version) (\w+) promoted by annotation"), PROMOTE_ANNOTATION, "canary"),
    (re.compile(r"rolled back (?:revision|version) (\w+): aborted by annotation"), ABORT_ANNOTATION, "canary"),
    (
        re.compile(r"experiment decided for B(?: before its end)?: revision (\w+) promoted by annotation"),
        PROMOTE_ANNOTATION,
        "canary",
    ),
    (
        re.compile(
            r"experiment decided for A(?: before its end)?: revision \w+ kept, revision (\w+) removed by the abort"
        ),
        ABORT_ANNOTATION,
        "canary",
    ),
    (re.compile(r"experiment decided for \S+: revision (\w+) promoted by annotation"), PROMOTE_ANNOTATION, "variant"),
)


def seeded(max_examples: int = 100) -> settings:
    """The default suite's fuzz settings: derandomized, 40 steps per run, no deadline or database."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=40,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def spec_for(uri: str, rollout: str = "canary") -> dict[str, Any]:
    sections = ROLLOUTS[rollout]
    if sections is not None:
        return model_spec(uri, traffic=GATEWAY, rollout=sections)
    return model_spec(uri, traffic=GATEWAY)


class ManualActionsCheck:
    """I6, read from the operator's Events after each step: every promote or abort by annotation
    acts on a canary (or an A/B/n variant) that started before the annotation last changed to
    name it. ``named``: what the annotation says for a revision (``v3`` for InPlace's versions)."""

    def __init__(self, h: Harness, named: Callable[[str], str] = str) -> None:
        self.h = h
        self.named = named
        self.events_read = 0
        self.canary_started: dict[str, int] = {}  # revision -> the index of its last CanaryStarted
        # The canary instance after the last step, and when each of its variants was first seen
        # (how many annotation changes had been made by then).
        self.instance: tuple[str, str | None, str | None] | None = None
        self.variant_seen: dict[tuple[tuple[str, str | None, str | None] | None, str], int] = {}

    def check(self) -> None:
        events = self.h.events
        for index in range(self.events_read, len(events)):
            message = events[index].message
            started = CANARY_STARTED.match(message)
            if events[index].reason == "CanaryStarted" and started is not None:
                self.canary_started[started[1]] = index
            acted = next(((m[1], key, who) for rx, key, who in BY_ANNOTATION if (m := rx.match(message))), None)
            if acted is None:
                assert "annotation" not in message or events[index].reason not in ACTIONS, (
                    f"an action by annotation this check cannot read: {message!r}"
                )
                continue
            revision, key, who = acted
            change, value = self.h.manual_value(key, index)
            assert value == self.named(revision), f"I6: {message!r} while the annotation named {value}"
            if who == "canary":
                start = self.canary_started.get(revision)
                assert start is not None and self.h.manual_changes[change][0] > start, (
                    f"I6: {message!r}: the annotation named it before this canary started"
                )
            else:
                seen = self.variant_seen.get((self.instance, revision))
                assert seen is not None and change >= seen, (
                    f"I6: {message!r}: the annotation named it before this variant started"
                )
        self.events_read = len(events)
        body = self.h.body()
        status = body.get("status") or {}
        canary = status.get("canary") or {}
        self.instance = (body["metadata"]["uid"], status.get("canaryRevision"), canary.get("startedAt"))
        for variant in canary.get("variants") or []:
            self.variant_seen.setdefault((self.instance, variant["revision"]), len(self.h.manual_changes))


class RolloutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(T0)
        self.steps = 0
        self.served = False
        self.snapshots: list[dict[str, Any]] = []
        # (uid, {B and the variants beyond it}) of the experiment running after the last step
        self.experiment_b: tuple[str, set[str]] | None = None
        self.stable: str | None = None
        self.experiment_b_canary: str | None = None
        self.validated: tuple[str, str] | None = None  # the object version whose status was last checked
        self.i6 = ManualActionsCheck(self.h)
        self.foreign = [self.h.kube.put(copy.deepcopy(obj)) for obj in FOREIGN]
        self.h.apply(spec_for(MODELS[0]))
        self._run(self.h.reconcile())

    # ------------------------------------------------------------------ helpers

    def revision(self, uri: str) -> str:
        return revision_of(InferenceServiceSpec.model_validate(spec_for(uri)), self.h.config.triton_image)

    def _run(self, call: Any, *, controller_may_die: bool = False) -> None:
        """Run one handler call as kopf would: API errors are retried later, nothing else may escape."""
        import asyncio

        self.steps += 1
        STEPS.total += 1
        self.snapshots = ([*self.snapshots, self.h.body()])[-6:]
        try:
            asyncio.run(call)
        except KubeError:
            pass  # kopf: TemporaryError, retried with a fresh body
        except Crash:
            assert controller_may_die
            self.h.controller = self.h.new_controller()  # the pod restarts; kopf resumes
            asyncio.run(self.h.reconcile(force=True))
        finally:
            self.h.kube.crash_at = None
        self.h.kube.settle()

    # ------------------------------------------------------------------ the user

    @rule(uri=st.sampled_from(MODELS), rollout=st.sampled_from(sorted(ROLLOUTS)))
    def edit_spec(self, uri: str, rollout: str) -> None:
        self.h.apply(spec_for(uri, rollout))
        self._run(self.h.reconcile())

    @rule(uri=st.sampled_from(MODELS), ticks=st.integers(min_value=1, max_value=4))
    def shadow_rollout(self, uri: str, ticks: int) -> None:
        """A spec change with a shadow phase, and time for its gate to open (mirroring begins)."""
        self.h.apply(spec_for(uri, "shadow"))
        self._run(self.h.reconcile())
        for _ in range(ticks):
            self.h.advance(5)
            self._run(self.h.tick())

    @rule(action=st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION]), uri=st.sampled_from(MODELS))
    def annotate(self, action: str, uri: str) -> None:
        self.h.annotate({action: self.revision(uri)})

    @rule()
    def promote_a_variant(self) -> None:
        """The promote annotation names a variant beyond B (A/B/n), while one runs."""
        variants = (self.h.status().get("canary") or {}).get("variants") or []
        if variants:
            self.h.annotate({PROMOTE_ANNOTATION: variants[0]["revision"]})

    @rule(action=st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION]), uri=st.sampled_from(VARIANT_MODELS))
    def name_a_variant(self, action: str, uri: str) -> None:
        """The annotation names a variant's revision, whether one runs it yet or not."""
        self.h.annotate({action: self.revision(uri)})

    @rule(failing=st.booleans())
    def variant_fails_its_checks(self, failing: bool) -> None:
        """Prometheus says a running variant beyond B fails (B and A unchanged)."""
        variants = (self.h.status().get("canary") or {}).get("variants") or []
        self.h.prometheus.failing = {v["revision"] for v in variants} if failing else set()

    @rule()
    def remove_annotations(self) -> None:
        self.h.annotate({PROMOTE_ANNOTATION: None, ABORT_ANNOTATION: None})

    @rule(uri=st.sampled_from(MODELS))
    def delete_and_create_again(self, uri: str) -> None:
        """kubectl delete, then apply again: a new object (new uid) starts from nothing."""
        self.h.delete()
        self.served = False
        self.h.apply(spec_for(uri))
        self._run(self.h.reconcile())

    @rule()
    def clear_status(self) -> None:
        """`kubectl patch --subresource=status -p '{"status": null}'` (or a lost status)."""
        body = self.h.body()
        body.pop("status", None)
        self.h.kube.put(body)

    # ------------------------------------------------------------------ the cluster

    @rule(seconds=st.sampled_from([1, 5, 10, 30]))
    def tick(self, seconds: int) -> None:
        self.h.advance(seconds)
        self._run(self.h.tick())

    @rule(status=st.sampled_from([500, 409, 503]), verb=st.sampled_from([None, "merge_patch", "apply", "delete"]))
    def failing_write_then_tick(self, status: int, verb: str | None) -> None:
        self.h.kube.fail_next(status, verb)
        self.h.advance(5)
        self._run(self.h.tick())
        self.h.kube._failures.clear()

    @rule(after=st.integers(min_value=1, max_value=25), reconcile=st.booleans())
    def crash_mid_pass(self, after: int, reconcile: bool) -> None:
        self.h.kube.crash_at = len(self.h.kube.calls) + after
        self.h.advance(5)
        self._run(self.h.reconcile() if reconcile else self.h.tick(), controller_may_die=True)

    @rule(mode=st.sampled_from(["pass", "fail", "down"]))
    def prometheus(self, mode: str) -> None:
        self.h.prometheus.mode = mode  # type: ignore[assignment]

    @rule(mode=st.sampled_from(["off", "pass", "fail"]))
    def direct_metrics(self, mode: str) -> None:
        """The canary's pods read directly: unreachable (Prometheus judges), healthy, or conclusively failing."""
        self.h.direct.mode = mode  # type: ignore[assignment]

    @rule(ready=st.booleans())
    def triton(self, ready: bool) -> None:
        for controller_triton in (self.h.controller.triton,):
            controller_triton.triton_ready = ready  # type: ignore[attr-defined]

    @rule(uri=st.sampled_from(MODELS))
    def pods_never_schedule(self, uri: str) -> None:
        """No GPU free for this revision's pods: only for a revision not yet running."""
        name = f"{NAME}-{self.revision(uri)}"
        if name not in self.h.deployments():
            self.h.kube.unschedulable.add(name)

    @rule()
    def gpus_free_again(self) -> None:
        self.h.kube.unschedulable.clear()

    @precondition(lambda self: len(self.snapshots) > 1)
    @rule(age=st.integers(min_value=1, max_value=5), reconcile=st.booleans())
    def second_operator_on_a_stale_body(self, age: int, reconcile: bool) -> None:
        stale = self.snapshots[-min(age, len(self.snapshots))]
        before = self.h.status()
        current_version = self.h.body()["metadata"]["resourceVersion"]
        other = self.h.new_controller()
        self.h.advance(5)
        call = other.reconcile(stale) if reconcile else other.tick(stale)
        self._run(call)
        if stale["metadata"]["resourceVersion"] != current_version:
            assert self.h.status() == before, "I4: a decision made on a stale object changed status"

    # ------------------------------------------------------------------ the contract

    @invariant()
    def i1_weight_only_to_revisions_with_ready_pods(self) -> None:
        weights = self.h.route_weights()
        deployments = self.h.deployments()
        if weights:
            assert sum(weights.values()) == 100, f"I1: weights {weights}"
        for backend, weight in weights.items():
            if weight > 0:
                deployment = deployments.get(backend)
                assert deployment is not None, f"I1: {weight}% to {backend}, which has no Deployment"
                ready = (deployment.get("status") or {}).get("readyReplicas") or 0
                assert ready > 0, f"I1: {weight}% to {backend}, which has no ready pods"
        if any(
            ((d.get("status") or {}).get("readyReplicas") or 0) > 0 and d["spec"].get("replicas") != 0
            for d in deployments.values()
        ):
            self.served = self.served or bool(weights)
        if self.served:
            assert weights, "I1/I2: something served before, now the route is gone"

    @invariant()
    def i1_mirrors_only_to_revisions_with_ready_pods(self) -> None:
        route = self.h.kube.of_kind("HTTPRoute").get(NAME)
        filters = [f for rule in (route or {}).get("spec", {}).get("rules", []) for f in rule.get("filters", [])]
        for mirror in (f["requestMirror"] for f in filters if f.get("type") == "RequestMirror"):
            backend = mirror["backendRef"]["name"]
            deployment = self.h.deployments().get(backend)
            assert deployment is not None, f"I1: requests mirrored to {backend}, which has no Deployment"
            assert (deployment.get("status") or {}).get("readyReplicas"), (
                f"I1: mirrored to {backend} without ready pods"
            )
            MIRRORED.add(backend)

    @invariant()
    def i3_the_persisted_stable_exists(self) -> None:
        stable = self.h.status().get("stableRevision")
        if stable is not None and self.served:
            assert f"{NAME}-{stable}" in self.h.deployments(), f"I2/I3: stable {stable} has no Deployment"

    @invariant()
    def i5_foreign_objects_untouched(self) -> None:
        for obj in self.foreign:
            key = (obj["apiVersion"], obj["kind"], NAMESPACE, obj["metadata"]["name"])
            live = self.h.kube.objects.get(key)
            assert live is not None, f"I5: foreign {obj['kind']} {obj['metadata']['name']} was deleted"
            assert live["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], (
                f"I5: foreign {obj['kind']} {obj['metadata']['name']} was changed"
            )

    @invariant()
    def experiments_are_promoted_only_by_the_annotation(self) -> None:
        body = self.h.body()
        status = body.get("status") or {}
        stable = status.get("stableRevision")
        uid = body["metadata"]["uid"]
        if (
            stable is not None
            and stable != self.stable
            and self.experiment_b is not None
            and self.experiment_b[0] == uid
            and stable in self.experiment_b[1]
        ):
            promote = (body["metadata"].get("annotations") or {}).get(PROMOTE_ANNOTATION)
            if body["spec"]["rollout"].get("strategy") == "Experiment":
                assert promote == stable, f"experiment variant {stable} promoted without the annotation"
            if stable != self.experiment_b_canary:
                PICKED.add(stable)
        experiment = status.get("experiment") or {}
        running = status.get("canaryRevision") is not None and experiment and not experiment.get("ended")
        beyond = {v["revision"] for v in (status.get("canary") or {}).get("variants") or [] if not v.get("stopped")}
        STOPPED.update(v["revision"] for v in (status.get("canary") or {}).get("variants") or [] if v.get("stopped"))
        self.experiment_b = (uid, {experiment["variants"][1]["revision"], *beyond}) if running else None
        self.experiment_b_canary = status.get("canaryRevision")
        self.stable = stable

    @invariant()
    def i6_annotations_act_only_on_the_canary_they_were_set_for(self) -> None:
        self.i6.check()

    @invariant()
    def status_is_what_the_crd_admits(self) -> None:
        """The emulated API server stores any status; the real one refuses one its schema does not
        admit (422), and every later write with it: the rollout would stop there."""
        body = self.h.body()
        version = (body["metadata"]["uid"], body["metadata"]["resourceVersion"])
        if version == self.validated:
            return  # nothing written since the last check (the check is the fuzz's slowest part)
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in STATUS_SCHEMA.iter_errors(self.h.status())
        ]
        assert not errors, f"status the CRD refuses: {errors[:3]}"
        self.validated = version

    @invariant()
    def the_object_itself_is_never_lost(self) -> None:
        assert (API_VERSION, KIND, NAMESPACE, NAME) in self.h.kube.objects
