"""Orchestration: read the object, call the pure core, apply what it decided, write status.

Two entry points, both level-based and safe to call at any time:
- `reconcile` runs on create, spec update and resume: it maps the spec's revision onto
  the rollout state (`rollout.plan`) and converges the children.
- `tick` runs when something changed (a watch event on the object or one of its children)
  or when time drives it: it opens the canary's gate (Triton readiness, acceptance), runs
  the analysis when a step is due (`rollout.advance`) and refreshes status. It says when it
  wants to run again: every `tick_seconds` while something is time-driven (a canary, a first
  revision's pod running unready, a retry), else never until a change wakes it (`wake`).
Both hold a per-object lock, so a tick never interleaves with a reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tritonop import metrics
from tritonop.analysis.direct import prometheus_only, sequential_checks
from tritonop.analysis.judge import Bound, combine, unjudged
from tritonop.analysis.per_model import analyse_models, judge_direct_models
from tritonop.analysis.prometheus import PrometheusAccess, PrometheusClients
from tritonop.api.models import (
    AnalysisMode,
    AnalysisSource,
    CheckResult,
    Condition,
    Experiment,
    InferenceServiceSpec,
    InferenceServiceStatus,
    Phase,
    RolloutStrategy,
    Verdict,
)
from tritonop.children import BuildError, IsvcRef, parse_spec, revision_of, triton_models
from tritonop.children.labels import REVISION_LABEL
from tritonop.children.service import STABLE_ANNOTATION
from tritonop.children.variants import VariantSpec, variant_specs
from tritonop.config import OperatorConfig
from tritonop.controller import refusals
from tritonop.controller.direct_metrics import DirectMetrics
from tritonop.controller.experiment import Experiments, ExperimentTick
from tritonop.controller.in_place import InPlaceSwitches, Switch
from tritonop.controller.loops import Waker
from tritonop.controller.revisions import Children
from tritonop.controller.status_store import StatusStore, UnreadableStatus, object_key, rollout_state
from tritonop.controller.telemetry import RolloutTelemetry
from tritonop.controller.triton_checks import TritonChecks
from tritonop.controller.triton_keys import TritonKeys
from tritonop.endpoints import TritonEndpoints
from tritonop.kinds import SERVICE
from tritonop.kube.apply import ChildConflict, owner_uid
from tritonop.kube.client import KubeClient, KubeError
from tritonop.operator_policy import check_spec
from tritonop.rollout import (
    PROMOTE_ANNOTATION,
    Decision,
    Event,
    RolloutPolicy,
    RolloutState,
    advance,
    analysis_due,
    manual_action,
    manual_actions,
    mark_available,
    plan,
    recovered_state,
    removable_revisions,
    waiting_for_traffic,
)
from tritonop.rollout.experiment import armed, judge_arms, pick_arm, sync_arms
from tritonop.rollout.state import in_shadow
from tritonop.status import ConditionStatus, conditions_for, set_condition
from tritonop.traffic import status_url

log = logging.getLogger("tritonop")

# Reasons a change outside the spec can fix (reconcile retried on every tick; a refused one,
# Forbidden or Rejected, with back-off, see `refusals.Backoff`).
RETRYABLE_REASONS = {"ChildConflict", *refusals.REASONS}
# How often a canary with traffic is sampled for sequential analysis (Triton's counters read
# directly), when --tick-seconds is longer.
DIRECT_SAMPLE_SECONDS = 1.0

EventSink = Callable[[Mapping[str, Any], Event], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Controller:
    def __init__(
        self,
        kube: KubeClient,
        config: OperatorConfig,
        *,
        post_event: EventSink,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.config = config
        self.post_event = post_event
        self.clock = clock
        endpoints = TritonEndpoints(
            config.triton_url_template, config.triton_endpoints_file, config.triton_pod_url_template
        )
        keys = TritonKeys.from_config(config)  # the pods' control-API keys derive from it
        self.triton = TritonChecks(kube, endpoints, keys)
        self.direct = DirectMetrics(kube, endpoints)  # Triton's metrics endpoints, for sequential analysis
        self.in_place = InPlaceSwitches(kube, endpoints, keys, self.direct)  # rollout.strategy InPlace
        self.experiments = Experiments(config)  # rollout.strategy Experiment
        self.children = Children(kube, config, keys)
        self.status = StatusStore(kube)
        self.prometheus = PrometheusClients(
            timeout_s=config.prometheus_timeout_seconds, access=PrometheusAccess.from_config(config)
        )
        self.telemetry = RolloutTelemetry()
        self._locks: dict[tuple[str, str], _PassLock] = {}  # only while a pass runs or waits
        self._wakers: dict[tuple[str, str], Waker] = {}
        self._children_changed: set[tuple[str, str]] = set()
        self._refused: dict[tuple[str, str], refusals.Backoff] = {}

    # ------------------------------------------------------------------ entry points

    async def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> None:
        async with self._lock(body), self.telemetry.pass_of(object_key(body), "reconcile"):
            with metrics.Timer():
                try:
                    await self._reconcile(body, force=force)
                except UnreadableStatus as err:
                    await self._report_unreadable(body, err)
                except KubeError as err:
                    await self._report_refused(body, err)
                    raise
                else:
                    self._refused.pop(object_key(body), None)

    async def tick(self, body: Mapping[str, Any]) -> float | None:
        """One pass; the seconds until time next drives this object, or None when only a change can."""
        async with self._lock(body), self.telemetry.pass_of(object_key(body), "tick"):
            with metrics.Timer():
                try:
                    await self._tick(body)
                except UnreadableStatus as err:
                    await self._report_unreadable(body, err)
                    self.telemetry.time_driven(object_key(body), False)
                    return None  # stopped until someone restores or clears status
                except KubeError as err:
                    await self._report_refused(body, err)
                    raise
                delay = await self._next_tick(body)
                self.telemetry.time_driven(object_key(body), delay is not None)
                return delay

    async def _next_tick(self, body: Mapping[str, Any]) -> float | None:
        try:
            status = self.status.read(body)
            state = rollout_state(status)
        except UnreadableStatus:
            return None
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if ready is not None and ready.reason in RETRYABLE_REASONS:
            return self.config.tick_seconds  # a retry (refused ones wait out their back-off within)
        if ready is not None and ready.status == "False" and state.stable is None:
            return None  # an invalid spec: only a spec change helps
        if state.canary is not None and (state.weight > 0 or in_shadow(state)) and self._samples_directly(body):
            # Sequential analysis reads the pods' counters each tick: a verdict within seconds.
            return min(self.config.tick_seconds, DIRECT_SAMPLE_SECONDS)
        if state.stable is None or state.canary is not None or state.phase is None:
            # Gates and analysis ask Triton and Prometheus: polled.
            return self.config.tick_seconds
        if self.in_place.time_driven(*object_key(body)):
            # A version switch, or a pod not on its version yet: asked of each pod's Triton.
            switch = status.in_place.canary if status.in_place is not None else None
            sampled = switch is not None and switch.step_started_at is not None and self._samples_directly(body)
            return min(self.config.tick_seconds, DIRECT_SAMPLE_SECONDS) if sampled else self.config.tick_seconds
        if state.phase == Phase.pending and await self.triton.running_unready(IsvcRef.from_object(body), state.stable):
            # A first revision whose pod runs but is not ready: only Triton says why (a model
            # that fails to load), and no watch event would tell. Pods that are not running yet
            # (scheduling, image pulls, a missing Secret) change through pod events instead.
            return self.config.tick_seconds
        return None

    @staticmethod
    def _samples_directly(body: Mapping[str, Any]) -> bool:
        try:
            analysis = parse_spec(body).rollout.analysis
        except BuildError:
            return False
        return analysis.mode == AnalysisMode.sequential and analysis.source != AnalysisSource.prometheus

    def changed(self, body: Mapping[str, Any]) -> None:
        """A watch event of the object: tick soon, unless it only echoes our own status write."""
        if not self.status.is_our_write(body):
            self.wake(*object_key(body))

    def wake(self, namespace: str, name: str) -> None:
        """Tick soon."""
        waker = self._wakers.get((namespace, name))
        if waker is not None:
            waker.set()

    def child_changed(self, namespace: str, name: str) -> None:
        """One of its children or pods changed (or went): reconcile, then tick, soon. A child
        deleted or edited behind our back is put back by the reconcile's apply."""
        if (namespace, name) in self._wakers:
            self._children_changed.add((namespace, name))
        self.wake(namespace, name)

    def take_child_change(self, body: Mapping[str, Any]) -> bool:
        """Whether a child changed since the last call (handlers.py: reconcile before the tick)."""
        key = object_key(body)
        changed = key in self._children_changed
        self._children_changed.discard(key)
        return changed

    def waker(self, body: Mapping[str, Any]) -> Waker:
        """What wakes this object's loop (loops.py): set by ``wake``."""
        key = object_key(body)
        waker = self._wakers.get(key)
        if waker is None:
            waker = self._wakers[key] = Waker()
        return waker

    def forget(self, body: Mapping[str, Any]) -> None:
        key = object_key(body)
        self.status.forget(body)
        self._locks.pop(key, None)
        waker = self._wakers.pop(key, None)
        if waker is not None:
            waker.set()  # the tick loop sees it is stopped
        self._children_changed.discard(key)
        self._refused.pop(key, None)
        self.telemetry.forget(*key)
        self.children.forget(*key)
        self.direct.forget(*key)
        self.in_place.forget(*key)
        self.experiments.forget(*key)

    async def aclose(self) -> None:
        await self.prometheus.aclose()
        await self.direct.aclose()

    # ------------------------------------------------------------------ the two passes

    async def _reconcile(self, body: Mapping[str, Any], *, force: bool) -> None:
        now = self.clock()
        status = self.status.read(body)
        ref = IsvcRef.from_object(body)
        try:
            spec = parse_spec(body)
            check_spec(spec, self.config)
            revision = revision_of(spec, self.config.triton_image)
            variants = variant_specs(spec, self.config.triton_image)
        except BuildError as err:
            metrics.RECONCILES.labels("invalid").inc()
            await self._report_invalid(body, status, err, now)
            return
        try:
            state = rollout_state(status)
            recovered: list[Event] = []
            if state.stable is None:
                state, recovered = await self._recover(ref, revision)
            annotations = (body.get("metadata") or {}).get("annotations") or {}
            decision = plan(state, revision, now, manual_at_start=manual_actions(annotations, revision))
            decision = _with_arms(decision, spec, variants, _promote(annotations))
            decision = replace(decision, events=(*recovered, *decision.events))
            await self._converge(body, ref, spec, revision, decision, status, now, force=force, variants=variants)
            await self.children.remove_other_providers(ref, spec)
        except ChildConflict as err:
            metrics.RECONCILES.labels("invalid").inc()
            # Status may have been written earlier in this pass: report on top of what is stored.
            await self._report_invalid(body, self.status.read(body), BuildError("ChildConflict", str(err)), now)
        except BuildError as err:
            # A child the builders refuse (a security context beyond restricted, a storage URI
            # they cannot serve): Stalled with the reason, like an invalid spec.
            metrics.RECONCILES.labels("invalid").inc()
            await self._report_invalid(body, self.status.read(body), err, now)
        except KubeError:
            metrics.RECONCILES.labels("error").inc()
            raise
        metrics.RECONCILES.labels("success").inc()

    async def _tick(self, body: Mapping[str, Any]) -> None:
        status = self.status.read(body)
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if ready is not None and ready.reason in RETRYABLE_REASONS:
            backoff = self._refused.get(object_key(body))
            if ready.reason in refusals.REASONS and backoff is not None and not backoff.due(self.clock()):
                return  # refused moments ago: wait before asking the API server again
            await self._reconcile(body, force=False)
            self._refused.pop(object_key(body), None)
            return
        try:
            spec = parse_spec(body)
            check_spec(spec, self.config)
        except BuildError:
            return  # reported by reconcile; nothing can progress until the spec changes
        now = self.clock()
        ref = IsvcRef.from_object(body)
        state = rollout_state(status)
        if state.stable is None:
            # Nothing recorded (not reconciled yet, or status cleared): reconcile decides, from the
            # children when there are any.
            await self._reconcile(body, force=False)
            return
        variants = variant_specs(spec, self.config.triton_image)
        decision = Decision(state)
        if state.canary is not None:
            decision = await self._advance(body, ref, spec, state, state.canary, now)
        promote = _promote((body.get("metadata") or {}).get("annotations") or {})
        decision = await self._arms(ref, spec, state, decision, variants, promote, now)
        experiment = await self.experiments.decide(ref, spec, state, decision, status.experiment, self.prometheus, now)
        if experiment is not None:
            decision = experiment.decision
        switch = await self.in_place.decide(body, ref, spec, decision.state, status, now)
        if switch is not None:
            decision = replace(decision, events=(*decision.events, *switch.events, *switch.notices))
        desired = revision_of(spec, self.config.triton_image)
        try:
            await self._converge(
                body,
                ref,
                spec,
                desired,
                decision,
                status,
                now,
                force=False,
                switch=switch,
                experiment=experiment,
                variants=variants,
            )
            if switch is not None:
                await self.in_place.converge(ref, spec, switch)  # only once the status naming it is stored
        except ChildConflict as err:
            # Status may have been written earlier in this pass: report on top of what is stored.
            await self._report_invalid(body, self.status.read(body), BuildError("ChildConflict", str(err)), now)
        except BuildError as err:
            await self._report_invalid(body, self.status.read(body), err, now)

    async def _advance(
        self,
        body: Mapping[str, Any],
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        state: RolloutState,
        canary: str,
        now: datetime,
    ) -> Decision:
        """One tick of a running canary: a manual action, else its gate, else its analysis when due."""
        policy = RolloutPolicy.from_spec(spec.rollout)
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        arm = armed(state, _promote(annotations))
        if arm is not None and arm.weight > 0 and await self._serves(ref, arm.revision):
            return pick_arm(state, arm)  # an Experiment's variant beyond B picked (rollout/experiment.py)
        named = manual_actions(annotations, canary)
        # A stale annotation stays ignored while it stays; once removed, setting it again acts.
        state = replace(state, ignored_manual=tuple(a for a in state.ignored_manual if a in named))
        manual = manual_action(annotations, canary, state.ignored_manual)
        if manual == "promote" and not await self._serves(ref, canary):
            log.info("%s/%s: promote ignored: canary %s has no ready pods", ref.namespace, ref.name, canary)
            manual = None
        gate = None
        if waiting_for_traffic(state) and manual is None:
            gate = await self.triton.gate(ref, spec, canary)
        verdict: Verdict | None = None
        checks: tuple[CheckResult, ...] = ()
        conclusive = False
        if manual is None:
            passed_gate = not waiting_for_traffic(state) or (gate is not None and gate.ready)
            verdict, checks, conclusive = await self._analyse(
                ref,
                spec,
                state,
                canary,
                now,
                due=analysis_due(state, policy, now),
                sampled=passed_gate and not policy.paused,
                weighted=not waiting_for_traffic(state),
            )
        if verdict is not None:
            metrics.ANALYSES.labels(ref.namespace, ref.name, verdict).inc()
            self.telemetry.analysis(ref, checks)
        return advance(
            state, policy, now, gate=gate, verdict=verdict, checks=checks, manual=manual, conclusive=conclusive
        )

    async def _analyse(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        state: RolloutState,
        canary: str,
        now: datetime,
        *,
        due: bool,
        sampled: bool,
        weighted: bool,
    ) -> tuple[Verdict | None, tuple[CheckResult, ...], bool]:
        """``canary`` (B, or a variant beyond it) against the stable: (verdict, checks, conclusive).

        ``sampled``: read the pods' counters directly (sequential analysis), every tick from the
        gate on; ``weighted``: the canary gets traffic, so a conclusive failure counts; ``due``:
        an interval's analysis is due (Prometheus, and the direct checks' verdict).
        """
        verdict: Verdict | None = None
        checks: tuple[CheckResult, ...] = ()
        conclusive = False
        analysis = spec.rollout.analysis
        policy = RolloutPolicy.from_spec(spec.rollout)
        if (
            sampled
            and state.stable is not None
            and analysis.mode == AnalysisMode.sequential
            and analysis.source != AnalysisSource.prometheus
        ):
            # Every tick: the canary's and the stable's pods, read directly (a baseline at the gate).
            sample = await self.direct.sample(ref, triton_models(ref, spec), canary, state.stable)
            judged = judge_direct_models(analysis, sample.tallies, power=due)
            if weighted and judged.conclusive_failure:
                verdict, checks, conclusive = "Fail", tuple(judged.checks), True
            elif due and (sample.complete or analysis.source == AnalysisSource.direct):
                if not sample.complete:
                    message = f"direct metrics incomplete: {sample.problem}"
                    checks = tuple(
                        unjudged(name, "Error", Bound(), message).model_copy(update={"source": "direct"})
                        for name in sequential_checks(analysis)
                    )
                else:
                    checks = tuple(judged.checks)
            elif due:
                log.info("%s/%s: %s; this analysis reads Prometheus", ref.namespace, ref.name, sample.problem)
        if due and verdict is None:
            rest = analysis if not checks else prometheus_only(analysis)
            if rest is not None:
                prometheus = await self.prometheus.for_url(analysis.prometheus_url or self.config.prometheus_url)
                outcome = await analyse_models(
                    prometheus,
                    rest,
                    namespace=ref.namespace,
                    name=ref.name,
                    models=await self.triton.served(ref, spec, canary),
                    canary_revision=canary,
                    stable_revision=state.stable,
                    window_s=(policy.shadow_s or policy.interval_s) if in_shadow(state) else policy.interval_s,
                    config=self.config,
                    at=now,
                )
                checks += tuple(c.model_copy(update={"source": "prometheus"}) for c in outcome.checks)
            verdict = combine(checks)
        return verdict, checks, conclusive

    async def _arms(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        before: RolloutState,
        decision: Decision,
        variants: list[VariantSpec],
        promote: str | None,
        now: datetime,
    ) -> Decision:
        """An Experiment's variants beyond B (rollout/experiment.py): in step with the spec, and
        judged when B's analysis was this tick (B's interval restarted at ``now``)."""
        decision = _with_arms(decision, spec, variants, promote)
        state = decision.state
        judged_b = (
            before.step_started_at is not None
            and before.step_started_at != now
            and state.canary == before.canary
            and state.step_started_at == now
        )
        weighted = [a for a in state.arms if a.active and a.weight > 0]
        if not judged_b or not weighted:
            return decision
        verdicts = {}
        for arm in weighted:
            verdict, checks, _ = await self._analyse(
                ref, spec, state, arm.revision, now, due=True, sampled=True, weighted=True
            )
            if verdict is not None:
                verdicts[arm.name] = (verdict, checks)
        state, events = judge_arms(state, RolloutPolicy.from_spec(spec.rollout), verdicts)
        return replace(decision, state=state, events=(*decision.events, *events))

    async def _converge(
        self,
        body: Mapping[str, Any],
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
        decision: Decision,
        status: InferenceServiceStatus,
        now: datetime,
        *,
        force: bool,
        switch: Switch | None = None,
        experiment: ExperimentTick | None = None,
        variants: list[VariantSpec] | None = None,
    ) -> None:
        """Carry out a decision: apply what it needs, persist the status it leads to, then route,
        scale down, and remove the revisions the persisted status no longer names.

        The order is the safety contract (docs/rollout.md, "Safety"): a revision exists before
        it is routed to (I2), routes give weight only to revisions with ready pods (I1), and
        nothing the old status named is removed before the new status is stored; the status
        write is conditional (I4), so a decision made on a stale object changes nothing.
        """
        state = decision.state
        events = list(decision.events)
        live = await self.children.live_revisions(ref)
        stable = await self.triton.readiness(ref, state.stable)
        if state.phase == Phase.pending and stable is not None and stable.serving:
            # Serving from some pods is serving (2 of 3 pods up, one waiting for a GPU): keep it.
            state = mark_available(state)
            events.append(Event("Normal", "RevisionReady", f"revision {state.stable} serves 100%"))
        elif state.phase == Phase.pending and stable is not None and state.stable is not None:
            # Say why a first revision does not come up (e.g. its storage Secret is missing).
            why = await self.triton.why_not_ready(ref, spec, state.stable)
            if why is not None:
                stable = replace(stable, message=f"{stable.message}; {why.reason}: {why.message}")
        varied = {v.revision: v.spec for v in variants or ()}
        for action in decision.before_routing:
            await self.children.perform(ref, spec, desired, action, state, stable, force=force, variants=varied)
        for arm in state.arms:
            # An Experiment's variants beyond B exist (named in the status written next) before any route.
            if arm.active and arm.revision in varied:
                await self.children.apply_revision(ref, varied[arm.revision], arm.revision, state, stable, force=force)
        if decision.before_routing and stable is not None and not stable.exists:
            # Its Deployment was created just now: report it as it is (from the cache, no request),
            # not "not found", which the next pass would write status again to correct.
            stable = await self.triton.readiness(ref, state.stable)

        new = state.apply_to(status, RolloutPolicy.from_spec(spec.rollout), now)
        new.observed_generation = _generation(body)
        new.message = state.message
        new.url = status_url(ref, spec)
        new.replicas = stable.replicas if stable else None
        new.ready_replicas = stable.ready_replicas if stable else None
        new.model, new.models = await self.triton.stable_model_facts(ref, spec, new, stable)
        if switch is not None or spec.rollout.strategy != RolloutStrategy.in_place:
            new.in_place = switch.status if switch is not None else None
        if switch is not None and switch.speaks and state.canary is None:
            new.phase, new.message = switch.phase, switch.message  # a version switch runs, or just ended
        if experiment is not None:
            new.experiment = experiment.status
        new.conditions = conditions_for(new, generation=_generation(body), stable=stable, now=now)
        await self.status.write(body, status, new)
        self.telemetry.phase(ref.namespace, ref.name, new.phase)
        # Posted with the status just written, so a notification names the revisions it is about.
        posted = {**body, "status": new.dump()} if events else body
        for event in events:
            self.post_event(posted, event)
            self.telemetry.count(ref, event)
        self.telemetry.canary_weight(ref, state)

        await self.children.route(ref, spec, desired, state, live, stable, force=force)
        for action in decision.after_routing:
            await self.children.perform(ref, spec, desired, action, state, stable, force=force, variants=varied)
        for revision in removable_revisions(state, live):
            await self.children.remove_revision(ref, revision)

    async def _recover(self, ref: IsvcRef, desired: str) -> tuple[RolloutState, list[Event]]:
        """With no state in status (lost or cleared), the state the children show (I3).

        Said with a Warning only when it matters: a first deploy whose first status write was
        refused (409) finds just its own revision, which is no news.
        """
        live = await self.children.live_revisions(ref)
        routed = None
        if live:  # else nothing to recover (a first deploy): no need to ask which one is routed
            entry = await self.kube.get(*SERVICE.key, ref.namespace, ref.name, fresh=True)  # cached: metadata only
            if entry is not None and owner_uid(entry) == ref.uid:
                # The stable it was last written with; else the one revision it selects (an entry
                # Service written before the annotation). During a canary of a router provider it
                # selects every weighted revision, and only the annotation tells the stable apart.
                noted = ((entry.get("metadata") or {}).get("annotations") or {}).get(STABLE_ANNOTATION)
                selected = ((entry.get("spec") or {}).get("selector") or {}).get(REVISION_LABEL)
                routed = noted if noted in live else selected
        state = recovered_state(live, routed)
        if state.stable is None or set(live) == {desired}:
            return state, []
        return state, [Event("Warning", "StatusRecovered", state.message or "")]

    async def _serves(self, ref: IsvcRef, revision: str) -> bool:
        readiness = await self.triton.readiness(ref, revision)
        return readiness is not None and readiness.serving

    # ------------------------------------------------------------------ what stops a rollout

    async def _report_invalid(
        self, body: Mapping[str, Any], status: InferenceServiceStatus, err: BuildError, now: datetime
    ) -> None:
        previous = next((c for c in status.conditions if c.type == "Ready"), None)
        if previous is None or previous.reason != err.reason or previous.message != str(err):
            self.post_event(body, Event("Warning", err.reason, str(err)))
        new = status.model_copy(
            update={
                "observed_generation": _generation(body),
                "message": str(err),
                "phase": status.phase if status.stable_revision else Phase.failed,
            }
        )
        new.conditions = conditions_for(
            new,
            generation=_generation(body),
            stable=None,
            invalid_reason=err.reason,
            invalid_message=str(err),
            now=now,
        )
        await self.status.write(body, status, new)
        self.telemetry.phase(*object_key(body), new.phase)

    async def _report_unreadable(self, body: Mapping[str, Any], err: UnreadableStatus) -> None:
        """Rollout progress lives in status; when it cannot be read, stop and say so, never guess."""
        message = (
            f"status cannot be read ({err}); the rollout is stopped. Restore it, or clear it to start over: "
            "kubectl patch tis NAME --subresource=status --type=merge -p '{\"status\": null}'"
        )
        conditions = (body.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("reason") == "InvalidStatus" for c in conditions):
            return
        self.post_event(body, Event("Warning", "InvalidStatus", message))
        stopped: list[Condition] = []
        flags: tuple[tuple[str, ConditionStatus], ...] = (("Ready", "False"), ("Stalled", "True"))
        for type_, status in flags:
            condition = Condition(type=type_, status=status, reason="InvalidStatus", message=message)
            stopped = set_condition(stopped, condition, self.clock())
        await self.status.write_conditions(body, [c.dump() for c in stopped])

    async def _report_refused(self, body: Mapping[str, Any], err: KubeError) -> None:
        """The API server refused a write this pass needed (controller/refusals.py): say which and
        why, where a user looks (Ready=False and Stalled=True with reason Forbidden or Rejected, a
        Warning Event when the message is new), and retry with back-off (the caller re-raises;
        the next tick waits out `refusals.Backoff`). Only conditions change: the rollout state
        in status stays as it was. The next pass that gets through computes the conditions
        afresh, which clears the report. Any other API error is only re-raised."""
        reason = refusals.reason(err)
        if reason is None:
            return
        now = self.clock()
        self._refused.setdefault(object_key(body), refusals.Backoff()).failed(now)
        message = refusals.describe(err, (body.get("metadata") or {}).get("namespace") or "")
        log.warning("%s/%s: %s", *object_key(body), message)
        try:
            status = self.status.read(body)
        except UnreadableStatus:
            return
        previous = next((c for c in status.conditions if c.type == "Ready"), None)
        if previous is None or previous.reason != reason or previous.message != message:
            self.post_event(body, Event("Warning", reason, message))
        new = status.model_copy(deep=True)
        new.conditions = conditions_for(
            new,
            generation=_generation(body),
            stable=None,
            invalid_reason=reason,
            invalid_message=message,
            now=now,
        )
        # Refused too (status is RBAC-guarded as well), or a 409: the log line and the loop's retry remain.
        with contextlib.suppress(KubeError):
            await self.status.write(body, status, new)

    @contextlib.asynccontextmanager
    async def _lock(self, body: Mapping[str, Any]) -> AsyncIterator[None]:
        """The object's lock for one pass. Dropped when no pass holds or waits for it, so the
        thousands of settled objects keep no lock (docs/benchmarks.md, memory per object)."""
        key = object_key(body)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _PassLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(key) is entry:
                del self._locks[key]


@dataclass
class _PassLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # passes holding or waiting for it


def _with_arms(
    decision: Decision, spec: InferenceServiceSpec, variants: list[VariantSpec], promote: str | None
) -> Decision:
    """The decision with its Experiment's variants beyond B in step with the spec (sync_arms)."""
    state, ignored = sync_arms(decision.state, _experiment(spec), [(v.name, v.revision) for v in variants], promote)
    return replace(decision, state=state, events=(*decision.events, *ignored))


def _promote(annotations: Mapping[str, str]) -> str | None:
    """The revision the promote annotation names, if any."""
    return annotations.get(PROMOTE_ANNOTATION, "").strip() or None


def _experiment(spec: InferenceServiceSpec) -> Experiment | None:
    return spec.rollout.experiment if spec.rollout.strategy == RolloutStrategy.experiment else None


def _generation(body: Mapping[str, Any]) -> int | None:
    return (body.get("metadata") or {}).get("generation")
