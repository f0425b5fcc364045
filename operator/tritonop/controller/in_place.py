"""rollout.strategy InPlace at the edge: the stable revision's pods, their versions, the switch.

Each tick (orchestrator ``_tick``): read which versions every running pod of the stable
revision has ready (Triton's repository index, per pod), decide with the pure machine
(``rollout.in_place`` on top of ``plan``/``advance``), and return the new ``status.inPlace``
with its Events. Only once that status is stored does ``converge`` load versions into pods
(Triton's repository API, with the InferenceService's control-API key), so a lost status
write never leaves a pod on a version the stored state does not name: the next pass puts it
back. A new pod (scale-out, a restart) starts with the repository's own version policy and
is brought to its target version on the tick its pod event wakes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tritonop.analysis.direct import judge_direct, sequential_checks
from tritonop.analysis.judge import Bound, combine, unjudged
from tritonop.api.models import (
    AnalysisMode,
    CheckResult,
    InferenceServiceSpec,
    InferenceServiceStatus,
    InPlaceStatus,
    Phase,
    RolloutStrategy,
    Verdict,
)
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.names import triton_model_name
from tritonop.children.refs import IsvcRef
from tritonop.controller.direct_metrics import DirectMetrics
from tritonop.controller.triton_keys import TritonKeys
from tritonop.endpoints import TritonEndpoints
from tritonop.kinds import POD
from tritonop.kube.client import KubeClient, KubeError
from tritonop.rollout import (
    Decision,
    Event,
    GateResult,
    RolloutPolicy,
    RolloutState,
    advance,
    analysis_due,
    manual_action,
    manual_actions,
    plan,
)
from tritonop.rollout.in_place import (
    Versions,
    as_versions,
    choose_canary_pod,
    in_place_status,
    next_load,
    pod_targets,
    recovered_version,
    step_policy,
    version_state,
)
from tritonop.rollout.state import waiting_for_traffic
from tritonop.triton import run_acceptance
from tritonop.triton.model_control import ModelControlError, load_versions, ready_versions, server_ready

log = logging.getLogger("tritonop")

# Pods asked or loaded at once, per InferenceService.
POD_CONCURRENCY = 8
# How long a pod may answer with versions ready while Triton says it is not ready before it
# is taken for wedged and evicted. Unloading a version that raised errors under load can hang in
# Triton's Python backend (measured on tritonserver 2.51: the server then reports not ready
# forever, and a reload does not help); the unloads the operator waits for take seconds.
WEDGED_AFTER = timedelta(seconds=60)


def annotation_key(version: str) -> str:
    """What the promote/abort annotations name for a version switch: ``v3`` (revisions are hex)."""
    return f"v{version}"


@dataclass
class Pods:
    """The stable revision's running pods: name -> URL, the versions each has ready (None:
    Triton did not answer), and those Kubernetes counts as Ready (in the Services' endpoints)."""

    urls: dict[str, str] = field(default_factory=dict)
    ready: dict[str, Versions | None] = field(default_factory=dict)
    serving: set[str] = field(default_factory=set)

    def known(self) -> dict[str, Versions]:
        return {pod: versions for pod, versions in self.ready.items() if versions is not None}


@dataclass(frozen=True)
class Switch:
    """What one tick decided: the status to store, its Events, and each pod's target versions."""

    status: InPlaceStatus
    events: tuple[Event, ...]
    targets: dict[str, Versions]
    pods: Pods
    phase: Phase | None = None  # the switch's, for status.phase while it runs or as it ends
    message: str | None = None
    evict: tuple[str, ...] = ()  # wedged pods (WEDGED_AFTER), evicted once the status is stored
    notices: tuple[Event, ...] = ()  # Events that are not the switch's own (phase, message)

    @property
    def speaks(self) -> bool:
        """Whether status.phase and status.message should tell of the switch this pass."""
        return self.status.candidate is not None or bool(self.events)

    @property
    def settled(self) -> bool:
        known = self.pods.known()
        converged = all(set(known.get(pod, ())) == set(target) for pod, target in self.targets.items())
        # A pod out of the endpoints is watched by time too: it may be wedged (WEDGED_AFTER).
        serving = set(known) <= self.pods.serving
        return self.status.candidate is None and converged and serving and len(known) == len(self.pods.urls)


class InPlaceSwitches:
    def __init__(
        self, kube: KubeClient, endpoints: TritonEndpoints, keys: TritonKeys | None, direct: DirectMetrics
    ) -> None:
        self.kube = kube
        self.endpoints = endpoints
        self.keys = keys
        self.direct = direct
        self._load_errors: dict[tuple[str, str, str], str] = {}  # (namespace, name, pod) -> why
        self._unsettled: set[tuple[str, str]] = set()
        # (namespace, name, pod) -> since when it answers with versions ready but is not Ready.
        self._unready_since: dict[tuple[str, str, str], datetime] = {}
        self._evicting: set[tuple[str, str, str]] = set()  # asked to go (and told in an Event)

    def _key(self, ref: IsvcRef) -> str | None:
        return self.keys.key_for(ref) if self.keys is not None else None

    def time_driven(self, namespace: str, name: str) -> bool:
        """Whether a switch runs or a pod is not on its target yet (polled, like a canary)."""
        return (namespace, name) in self._unsettled

    def forget(self, namespace: str, name: str) -> None:
        self._unsettled.discard((namespace, name))
        for remembered in (self._load_errors, self._unready_since):
            for key in [k for k in remembered if k[:2] == (namespace, name)]:
                del remembered[key]
        self._evicting -= {k for k in self._evicting if k[:2] == (namespace, name)}

    async def decide(
        self,
        body: Mapping[str, Any],
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        revisions: RolloutState,
        status: InferenceServiceStatus,
        now: datetime,
    ) -> Switch | None:
        """This tick's decision; None when the strategy is not InPlace or no stable revision exists."""
        if spec.rollout.strategy != RolloutStrategy.in_place or revisions.stable is None:
            self.forget(ref.namespace, ref.name)
            return None
        assert spec.model.version is not None  # the spec's validator requires it with InPlace
        model = triton_model_name(ref, spec)
        pods = await self._pods(ref, revisions.stable, model)
        recorded = status.in_place
        if recorded is None or recorded.revision != revisions.stable:
            # A new stable revision was gated and judged at the spec's version; a status without
            # the switch's record (lost, cleared) resumes from what the pods serve.
            version = spec.model.version if recorded is not None else recovered_version(pods.known())
            recorded = InPlaceStatus(revision=revisions.stable, version=version or spec.model.version)
        state = version_state(recorded)
        policy = step_policy(RolloutPolicy.from_spec(spec.rollout), len(pods.urls))
        events: tuple[Event, ...] = ()
        message = None
        canary_pod = recorded.canary_pod
        if revisions.canary is None:
            # A version switch waits while a new revision rolls out as a canary.
            annotations = (body.get("metadata") or {}).get("annotations") or {}
            desired = spec.model.version
            stale = manual_actions(annotations, annotation_key(desired))
            planned = plan(state, desired, now, manual_at_start=stale)
            state, canary_pod = choose_canary_pod(planned.state, canary_pod, sorted(pods.urls))
            decision = await self._advance(
                ref, spec, model, revisions.stable, state, policy, annotations, canary_pod, pods, now
            )
            decision = as_versions(replace(decision, events=planned.events + decision.events))
            state, events, message = decision.state, decision.events, decision.state.message
        targets = pod_targets(state, canary_pod, sorted(pods.urls))
        if revisions.canary is not None:
            # A new revision's pods start with the repository's version policy; its gate asks
            # for the spec's version, so that is the one they get.
            canary_pods = await self._pods(ref, revisions.canary, model)
            targets |= dict.fromkeys(canary_pods.urls, (spec.model.version,))
            pods = Pods(
                pods.urls | canary_pods.urls, pods.ready | canary_pods.ready, pods.serving | canary_pods.serving
            )
        new = in_place_status(state, policy, now, revision=revisions.stable, canary_pod=canary_pod, pods=pods.known())
        evict, notices = await self._wedged(ref, pods, targets, now)
        switch = Switch(new, events, targets, pods, state.phase, message, evict, notices)
        key = (ref.namespace, ref.name)
        if switch.settled:
            self._unsettled.discard(key)
        else:
            self._unsettled.add(key)
        return switch

    async def _wedged(
        self, ref: IsvcRef, pods: Pods, targets: Mapping[str, Versions], now: datetime
    ) -> tuple[tuple[str, ...], tuple[Event, ...]]:
        """Pods to evict: each has answered with versions ready but been out of the endpoints for
        WEDGED_AFTER, and its Triton, asked now, says it is not ready either (so a misconfigured
        probe never restarts pods in a loop). No load of the operator's runs meanwhile (a pass
        awaits its load, however long), and Triton answers only once its start-up loads are
        done. Such a pod serves nothing, and it stops every further load (``converge`` waits for
        all pods to be Ready): its Deployment replaces it, and the new pod is brought to its
        target."""
        held = {pod for pod in targets if pod not in pods.serving and pods.ready.get(pod)}
        for key in [k for k in self._unready_since if k[:2] == (ref.namespace, ref.name) and k[2] not in held]:
            del self._unready_since[key]
            self._evicting.discard(key)
        due, notices = [], []
        for pod in sorted(held):
            key = (ref.namespace, ref.name, pod)
            since = self._unready_since.setdefault(key, now)
            if now - since < WEDGED_AFTER or await server_ready(pods.urls[pod], key=self._key(ref)) is not False:
                continue
            due.append(pod)
            if key not in self._evicting:
                versions = ", ".join(pods.ready.get(pod) or ())
                notices.append(
                    Event(
                        "Warning",
                        "PodWedged",
                        f"pod {pod}: Triton has versions {versions} ready but has not been ready for "
                        f"{int(WEDGED_AFTER.total_seconds())} s (a load or unload that never finished); evicting it "
                        "so that its Deployment replaces it",
                    )
                )
        return tuple(due), tuple(notices)

    async def converge(self, ref: IsvcRef, spec: InferenceServiceSpec, switch: Switch) -> None:
        """Load what the stored decision asks of one pod: the union first, then the target.

        One pod per pass, and only while every pod that answers is Ready: Triton reports itself
        not ready while a version loads (strict readiness), so its pod leaves the Services'
        endpoints for that moment; switching pods one at a time keeps the others serving. The
        pod's Ready event wakes the next pass. A wedged pod is evicted first.
        """
        for pod in switch.evict:
            self._evicting.add((ref.namespace, ref.name, pod))  # its Event went with the stored status
            try:
                await self.kube.evict(ref.namespace, pod)
            except KubeError as err:  # a PodDisruptionBudget refused: the next pass asks again
                log.warning("%s/%s: evicting wedged pod %s: %s", ref.namespace, ref.name, pod, err)
            else:
                log.warning("%s/%s: evicted wedged pod %s", ref.namespace, ref.name, pod)
        pending = [
            pod
            for pod, target in sorted(switch.targets.items())
            if (ready := switch.pods.ready.get(pod)) is not None and next_load(ready, target) is not None
        ]
        if not pending:
            return
        answering = {pod for pod, ready in switch.pods.ready.items() if ready is not None}
        if not answering <= switch.pods.serving:
            return  # a pod is out of the endpoints (perhaps the last one switched): wait for it
        pod = pending[0]
        ready, target = switch.pods.ready[pod], switch.targets[pod]
        assert ready is not None
        errors_key = (ref.namespace, ref.name, pod)
        model = triton_model_name(ref, spec)
        while (load := next_load(ready, target)) is not None:
            try:
                await load_versions(switch.pods.urls[pod], model, load, key=self._key(ref))
            except ModelControlError as err:
                self._load_errors[errors_key] = str(err)
                log.warning("%s/%s: pod %s: %s", ref.namespace, ref.name, pod, err)
                return
            self._load_errors.pop(errors_key, None)
            log.info("%s/%s: pod %s now holds versions %s", ref.namespace, ref.name, pod, ", ".join(load))
            ready = load

    # ------------------------------------------------------------------ inside decide

    async def _pods(self, ref: IsvcRef, revision: str, model: str) -> Pods:
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        pods = Pods()
        for pod in await self.kube.list(*POD.key, ref.namespace, selector):
            status = pod.get("status") or {}
            if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            name = pod["metadata"]["name"]
            url = self.endpoints.url_for_pod(ref.namespace, name, status.get("podIP"))
            if url is not None:
                pods.urls[name] = url
                containers = status.get("containerStatuses") or []  # what the watch cache keeps of a pod
                if containers and all(c.get("ready") for c in containers):
                    pods.serving.add(name)
        slots = asyncio.Semaphore(POD_CONCURRENCY)

        async def versions(url: str) -> Versions | None:
            async with slots:
                try:
                    return tuple(await ready_versions(url, model, key=self._key(ref)))
                except ModelControlError:
                    return None

        answers = await asyncio.gather(*(versions(url) for url in pods.urls.values()))
        pods.ready = dict(zip(pods.urls, answers, strict=True))
        return pods

    async def _advance(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        model: str,
        revision: str,
        state: RolloutState,
        policy: RolloutPolicy,
        annotations: Mapping[str, str],
        canary_pod: str | None,
        pods: Pods,
        now: datetime,
    ) -> Decision:
        candidate = state.canary
        if candidate is None:
            return advance(state, policy, now)
        named = manual_actions(annotations, annotation_key(candidate))
        state = replace(state, ignored_manual=tuple(a for a in state.ignored_manual if a in named))
        manual = manual_action(annotations, annotation_key(candidate), state.ignored_manual)
        if canary_pod is None:
            return advance(state, policy, now, manual=manual)  # no running pod: the gate waits
        gate = None
        if waiting_for_traffic(state) and manual is None:
            gate = await self._gate(ref, spec, model, candidate, canary_pod, pods)
        verdict: Verdict | None = None
        checks: tuple[CheckResult, ...] = ()
        conclusive = False
        analysis = spec.rollout.analysis
        if manual is None and not policy.paused and not waiting_for_traffic(state) and state.stable is not None:
            due = analysis_due(state, policy, now)
            sample = await self.direct.sample_versions(ref, model, revision, canary_pod, candidate, state.stable)
            judged = judge_direct(analysis, sample.tally, power=due)
            if analysis.mode == AnalysisMode.sequential and judged.conclusive_failure:
                verdict, checks, conclusive = "Fail", tuple(judged.checks), True
            elif due:
                if sample.complete:
                    checks = tuple(judged.checks)
                else:
                    message = f"direct metrics incomplete: {sample.problem}"
                    checks = tuple(unjudged(n, "Error", Bound(), message) for n in sequential_checks(analysis))
                checks = tuple(c.model_copy(update={"source": "direct"}) for c in checks)
                verdict = combine(checks)
        return advance(
            state, policy, now, gate=gate, verdict=verdict, checks=checks, manual=manual, conclusive=conclusive
        )

    async def _gate(
        self, ref: IsvcRef, spec: InferenceServiceSpec, model: str, candidate: str, canary_pod: str, pods: Pods
    ) -> GateResult:
        """Open when the canary pod has the candidate ready and acceptance (if any) passed on it."""
        ready = pods.ready.get(canary_pod)
        if ready is None or candidate not in ready:
            failed = self._load_errors.get((ref.namespace, ref.name, canary_pod))
            if failed is not None:
                return GateResult(False, "ModelLoadFailed", f"pod {canary_pod}: {failed}")
            return GateResult(False, "VersionNotLoaded", f"pod {canary_pod} is loading version {candidate}")
        message = f"pod {canary_pod} has version {candidate} ready"
        if spec.rollout.acceptance is None:
            return GateResult(True, "ModelReady", message)
        url = pods.urls[canary_pod]
        result = await run_acceptance(url, model, candidate, spec.rollout.acceptance, key=self._key(ref))
        return GateResult(True, result.reason, result.message, acceptance_passed=result.passed)
