"""Orchestration: read the object, call the pure core, apply what it decided, write status.

Two entry points, both level-based and safe to call at any time:
- `reconcile` runs on create, spec update and resume: it maps the spec's revision onto
  the rollout state (`rollout.plan`) and converges the children.
- `tick` runs on a timer: it opens the canary's gate (Triton readiness, acceptance),
  runs the analysis when a step is due (`rollout.advance`) and refreshes status.
Both hold a per-object lock, so a timer tick never interleaves with a reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tritonop import API_VERSION, KIND
from tritonop.analysis.checks import analyse
from tritonop.analysis.prometheus import PrometheusClient
from tritonop.api.models import InferenceServiceSpec, InferenceServiceStatus, Phase
from tritonop.children import (
    REVISION_CHILD_KINDS,
    build_entry_service,
    build_revision,
    parse_spec,
    revision_of,
    status_url,
)
from tritonop.children.errors import BuildError
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.names import revision_child_name, triton_model_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.endpoints import TritonEndpoints
from tritonop.kube.apply import apply_all, ensure_absent, replacing_merge_patch
from tritonop.kube.client import KubeClient, KubeError
from tritonop import metrics
from tritonop.rollout import (
    ApplyRevision,
    Decision,
    DeleteRevision,
    Event,
    GateResult,
    RolloutPolicy,
    RolloutState,
    ScaleRevision,
    advance,
    analysis_due,
    manual_action,
    mark_available,
    plan,
    traffic,
    waiting_for_traffic,
)
from tritonop.status import DeploymentReadiness, conditions_for
from tritonop.traffic import ALL_PROVIDERS, provider_for
from tritonop.triton import check_readiness, model_facts, run_acceptance

log = logging.getLogger("tritonop")

AUTOSCALER_KINDS = (("autoscaling/v2", "HorizontalPodAutoscaler"), ("keda.sh/v1alpha1", "ScaledObject"))
STATUS_HISTORY = 8
# How many of a not-ready revision's pods the gate asks for the reason (bounded cost per tick).
MAX_PODS_ASKED = 3
# Build errors that a change outside the spec can fix (retried on every tick).
RETRYABLE_REASONS = {"StorageSecretNotFound"}

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
        self.endpoints = TritonEndpoints(
            config.triton_url_template, config.triton_endpoints_file, config.triton_pod_url_template
        )
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Per object, the statuses we wrote (newest last), after the one we first saw: a body
        # showing one of them but the newest is stale (the watch lags our own writes), and
        # rollout decisions must never be made twice. A status none of them matches was
        # written by someone else and is taken as it is.
        self._written: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self._prometheus: dict[str, PrometheusClient] = {}
        self._weight_series: dict[tuple[str, str], str] = {}  # the canary-weight series per object

    # ------------------------------------------------------------------ entry points

    async def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> None:
        async with self._lock(body):
            with metrics.Timer():
                try:
                    await self._reconcile(body, force=force)
                except UnreadableStatus as err:
                    await self._report_unreadable(body, err)

    async def tick(self, body: Mapping[str, Any]) -> None:
        async with self._lock(body):
            with metrics.Timer():
                try:
                    await self._tick(body)
                except UnreadableStatus as err:
                    await self._report_unreadable(body, err)

    def forget(self, body: Mapping[str, Any]) -> None:
        key = _key(body)
        self._written.pop(key, None)
        self._locks.pop(key, None)
        revision = self._weight_series.pop(key, None)
        if revision is not None:
            metrics.CANARY_WEIGHT.remove(key[0], key[1], revision)

    async def aclose(self) -> None:
        for client in self._prometheus.values():
            await client.aclose()

    # ------------------------------------------------------------------ reconcile

    async def _reconcile(self, body: Mapping[str, Any], *, force: bool) -> None:
        now = self.clock()
        status = self._status(body)
        ref = IsvcRef.from_object(body)
        try:
            spec = parse_spec(body)
            await self._check_secret(ref, spec)
            revision = revision_of(spec, self.config.triton_image)
        except BuildError as err:
            metrics.RECONCILES.labels("invalid").inc()
            await self._report_invalid(body, status, err, now)
            return
        try:
            decision = plan(_state_of(status), revision, now)
            await self._converge(body, ref, spec, revision, decision, status, now, force=force)
            await self._remove_other_providers(ref, spec)
        except KubeError:
            metrics.RECONCILES.labels("error").inc()
            raise
        metrics.RECONCILES.labels("success").inc()

    async def _check_secret(self, ref: IsvcRef, spec: InferenceServiceSpec) -> None:
        secret = spec.model.storage_secret_name
        if secret and await self.kube.get("v1", "Secret", ref.namespace, secret) is None:
            raise BuildError(
                "StorageSecretNotFound",
                f"model.storageSecretName {secret!r} does not exist in namespace {ref.namespace}; "
                "create it (keys become the Triton container's environment) and tritonop retries",
            )

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
        await self._write_status(body, status, new)

    # ------------------------------------------------------------------ tick

    async def _tick(self, body: Mapping[str, Any]) -> None:
        status = self._status(body)
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if ready is not None and ready.reason in RETRYABLE_REASONS:
            await self._reconcile(body, force=False)
            return
        try:
            spec = parse_spec(body)
        except BuildError:
            return  # reported by reconcile; nothing can progress until the spec changes
        now = self.clock()
        ref = IsvcRef.from_object(body)
        state = _state_of(status)
        if state.stable is None:
            return  # reconcile has not run yet
        decision = Decision(state)
        if state.canary is not None:
            policy = RolloutPolicy.from_spec(spec.rollout)
            manual = manual_action((body.get("metadata") or {}).get("annotations") or {}, state.canary)
            gate = None
            if waiting_for_traffic(state) and manual is None:
                gate = await self._gate(ref, spec, state.canary)
            verdict, checks = None, ()
            if manual is None and analysis_due(state, policy, now):
                outcome = await analyse(
                    self._prometheus_for(spec),
                    spec.rollout.analysis,
                    namespace=ref.namespace,
                    name=ref.name,
                    model=triton_model_name(ref, spec),
                    canary_revision=state.canary,
                    stable_revision=state.stable,
                    window_s=policy.interval_s,
                    config=self.config,
                    at=now,
                )
                verdict, checks = outcome.verdict, tuple(outcome.checks)
                metrics.ANALYSES.labels(ref.namespace, ref.name, verdict).inc()
            decision = advance(state, policy, now, gate=gate, verdict=verdict, checks=checks, manual=manual)
        desired = revision_of(spec, self.config.triton_image)
        await self._converge(body, ref, spec, desired, decision, status, now, force=False)

    async def _gate(self, ref: IsvcRef, spec: InferenceServiceSpec, canary: str) -> GateResult:
        name = revision_child_name(ref, canary)
        deployment = DeploymentReadiness.from_object(
            await self.kube.get("apps/v1", "Deployment", ref.namespace, name), name
        )
        if not deployment.available:
            return await self._pod_gate(ref, spec, canary) or GateResult(
                False, "DeploymentNotAvailable", deployment.message
            )
        url = self.endpoints.url_for(ref.namespace, ref.name, canary)
        model = triton_model_name(ref, spec)
        readiness = await check_readiness(url, model, spec.model.version)
        if not readiness.ready:
            return GateResult(False, readiness.reason, readiness.message)
        if spec.rollout.acceptance is None:
            return GateResult(True, readiness.reason, readiness.message)
        result = await run_acceptance(url, model, spec.model.version, spec.rollout.acceptance)
        return GateResult(True, result.reason, result.message, acceptance_passed=result.passed)

    async def _pod_gate(self, ref: IsvcRef, spec: InferenceServiceSpec, canary: str) -> GateResult | None:
        """Why a revision's pods are not ready, from the pods themselves.

        The revision Service reaches ready pods only, so for the cause (an image that does
        not pull, a model that fails to load) ask the kubelet's view of the containers,
        then Triton in a running pod directly. None when neither says more.
        """
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={canary}"
        pods = await self.kube.list("v1", "Pod", ref.namespace, selector)
        for pod in pods[:MAX_PODS_ASKED]:
            name = pod["metadata"]["name"]
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
                    return GateResult(False, waiting["reason"], f"pod {name}: {waiting.get('message', '')}".rstrip(": "))
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            url = self.endpoints.url_for_pod(ref.namespace, name, (pod.get("status") or {}).get("podIP"))
            if url is None:
                continue
            readiness = await check_readiness(url, triton_model_name(ref, spec), spec.model.version)
            if not readiness.ready and readiness.reason != "ServerUnreachable":
                return GateResult(False, readiness.reason, f"pod {name}: {readiness.message}")
        return None

    def _prometheus_for(self, spec: InferenceServiceSpec) -> PrometheusClient:
        url = spec.rollout.analysis.prometheus_url or self.config.prometheus_url
        if url not in self._prometheus:
            self._prometheus[url] = PrometheusClient(url, timeout_s=self.config.prometheus_timeout_seconds)
        return self._prometheus[url]

    # ------------------------------------------------------------------ converge

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
    ) -> None:
        state = decision.state
        stable = await self._readiness(ref, state.stable)
        for action in decision.before_routing:
            await self._perform(ref, spec, desired, action, state, stable, force=force)
        await self._route(ref, spec, state, stable, force=force)
        for action in decision.after_routing:
            await self._perform(ref, spec, desired, action, state, stable, force=force)
        for event in decision.events:
            self.post_event(body, event)
            self._count(ref, event)

        if state.stable is not None and state.stable != (status.stable_revision or state.stable):
            stable = await self._readiness(ref, state.stable)  # promoted: read the new stable
        if state.phase == Phase.pending and stable is not None and stable.available:
            state = mark_available(state)
            self.post_event(body, Event("Normal", "RevisionReady", f"revision {state.stable} serves 100%"))
        policy = RolloutPolicy.from_spec(spec.rollout)
        new = state.apply_to(status, policy, now)
        new.observed_generation = _generation(body)
        new.message = state.message
        new.url = status_url(ref, spec, self.config)
        new.replicas = stable.replicas if stable else None
        new.ready_replicas = stable.ready_replicas if stable else None
        new.model = await self._model_facts(ref, spec, new, stable)
        new.conditions = conditions_for(new, generation=_generation(body), stable=stable, now=now)
        self._set_canary_weight(ref, state)
        await self._write_status(body, status, new)

    async def _perform(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
        action: ApplyRevision | ScaleRevision | DeleteRevision,
        state: RolloutState,
        stable: DeploymentReadiness | None,
        *,
        force: bool,
    ) -> None:
        if isinstance(action, ApplyRevision):
            if action.revision != desired:
                log.warning("not re-applying revision %s: the spec now hashes to %s", action.revision, desired)
                return
            await self._apply_revision(ref, spec, action.revision, state, stable, force=force)
        elif isinstance(action, ScaleRevision):
            name = revision_child_name(ref, action.revision)
            if action.replicas == 0:
                for api_version, kind in AUTOSCALER_KINDS:
                    await ensure_absent(self.kube, api_version, kind, ref.namespace, name)
            deployment = await self.kube.get("apps/v1", "Deployment", ref.namespace, name)
            if deployment is not None and (deployment.get("spec") or {}).get("replicas") != action.replicas:
                await self.kube.merge_patch(
                    "apps/v1", "Deployment", ref.namespace, name, {"spec": {"replicas": action.replicas}}
                )
        else:
            name = revision_child_name(ref, action.revision)
            for api_version, kind in REVISION_CHILD_KINDS:
                await ensure_absent(self.kube, api_version, kind, ref.namespace, name)

    async def _apply_revision(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        revision: str,
        state: RolloutState,
        stable: DeploymentReadiness | None,
        *,
        force: bool,
    ) -> None:
        replicas = None
        if revision == state.canary and state.weight > 0:
            # Providers without a router (`service`) split by replica ratio: size the canary to its weight.
            base = stable.replicas if stable and stable.replicas else spec.autoscaling.min_replicas
            replicas = provider_for(spec).canary_replicas(base, state.weight)
        objs = build_revision(ref, spec, revision, self.config, replicas=replicas)
        await apply_all(self.kube, objs, force=force)
        built = {(o["apiVersion"], o["kind"]) for o in objs}
        name = revision_child_name(ref, revision)
        for api_version, kind in REVISION_CHILD_KINDS:
            if (api_version, kind) not in built:
                await ensure_absent(self.kube, api_version, kind, ref.namespace, name)

    async def _route(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        state: RolloutState,
        stable: DeploymentReadiness | None,
        *,
        force: bool,
    ) -> None:
        if state.stable is None:
            return
        targets = traffic(state)
        serving = [t.revision for t in targets if t.percent > 0]
        provider = provider_for(spec)
        splits_by_replicas = provider.canary_replicas(1, state.weight or 1) is not None
        if splits_by_replicas and state.weight > 0 and state.canary == revision_of(spec, self.config.triton_image):
            # Resize a replica-split canary as its weight changes (replicas are not part of the revision).
            await self._apply_revision(ref, spec, state.canary, state, stable, force=force)
        objs = [build_entry_service(ref, spec, self.config, revisions=serving or [state.stable])]
        objs += provider.build(ref, spec, targets, self.config)
        await apply_all(self.kube, objs, force=force)
        # Objects the provider builds only sometimes (nginx's canary Ingress, the GRPCRoute) go
        # when no longer built, or a stale route keeps sending traffic to a removed canary.
        built = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objs}
        for api_version, kind in provider.managed_kinds:
            for name in (ref.name, f"{ref.name}-canary"):
                if (api_version, kind, name) not in built:
                    await ensure_absent(self.kube, api_version, kind, ref.namespace, name)

    async def _remove_other_providers(self, ref: IsvcRef, spec: InferenceServiceSpec) -> None:
        active = provider_for(spec)
        kinds = {k for p in ALL_PROVIDERS for k in p.managed_kinds} - set(active.managed_kinds)
        for api_version, kind in sorted(kinds):
            for name in (ref.name, f"{ref.name}-canary"):
                await ensure_absent(self.kube, api_version, kind, ref.namespace, name)

    # ------------------------------------------------------------------ status

    async def _readiness(self, ref: IsvcRef, revision: str | None) -> DeploymentReadiness | None:
        if revision is None:
            return None
        name = revision_child_name(ref, revision)
        return DeploymentReadiness.from_object(await self.kube.get("apps/v1", "Deployment", ref.namespace, name), name)

    async def _model_facts(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        status: InferenceServiceStatus,
        stable: DeploymentReadiness | None,
    ) -> Any:
        current = status.model
        if status.stable_revision is None or stable is None or not stable.available:
            return current
        if current is not None and current.revision == status.stable_revision:
            return current
        url = self.endpoints.url_for(ref.namespace, ref.name, status.stable_revision)
        facts = await model_facts(url, triton_model_name(ref, spec), spec.model.version)
        if facts is None:
            return current
        return facts.model_copy(update={"revision": status.stable_revision})

    def _status(self, body: Mapping[str, Any]) -> InferenceServiceStatus:
        raw = dict(body.get("status") or {})
        ours = self._written.get(_key(body))
        if ours and raw != ours[-1] and raw in ours:
            raw = ours[-1]
        try:
            return InferenceServiceStatus.model_validate(raw)
        except ValidationError as err:
            raise UnreadableStatus(_one_line(err)) from err

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
        now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "InvalidStatus", "message": message,
                 "lastTransitionTime": now},
                {"type": "Stalled", "status": "True", "reason": "InvalidStatus", "message": message,
                 "lastTransitionTime": now},
            ]
        }
        meta = body["metadata"]
        await self.kube.merge_patch(
            API_VERSION, KIND, meta["namespace"], meta["name"], {"status": patch}, subresource="status"
        )
        self._written.pop(_key(body), None)

    async def _write_status(
        self, body: Mapping[str, Any], old: InferenceServiceStatus, new: InferenceServiceStatus
    ) -> None:
        key = _key(body)
        old_raw, new_raw = old.dump(), new.dump()
        history = self._written.setdefault(key, deque([old_raw], maxlen=STATUS_HISTORY))
        if new_raw == old_raw:
            return
        meta = body["metadata"]
        await self.kube.merge_patch(
            API_VERSION, KIND, meta["namespace"], meta["name"],
            {"status": replacing_merge_patch(old_raw, new_raw)}, subresource="status",
        )
        history.append(new_raw)

    def _set_canary_weight(self, ref: IsvcRef, state: RolloutState) -> None:
        """One series per object: the previous canary's goes when the canary changes."""
        key, revision = (ref.namespace, ref.name), state.canary or ""
        previous = self._weight_series.get(key)
        if previous is not None and previous != revision:
            metrics.CANARY_WEIGHT.remove(ref.namespace, ref.name, previous)
        metrics.CANARY_WEIGHT.labels(ref.namespace, ref.name, revision).set(state.weight)
        self._weight_series[key] = revision

    def _count(self, ref: IsvcRef, event: Event) -> None:
        if event.reason == "Promoted":
            metrics.PROMOTIONS.labels(ref.namespace, ref.name).inc()
        elif event.reason in ("RolledBack", "RolloutFailed", "Aborted"):
            metrics.ROLLBACKS.labels(ref.namespace, ref.name, event.reason).inc()

    def _lock(self, body: Mapping[str, Any]) -> asyncio.Lock:
        return self._locks.setdefault(_key(body), asyncio.Lock())


class UnreadableStatus(Exception):
    """The stored status does not parse (edited by hand, or by a tool that does not know it)."""


def _state_of(status: InferenceServiceStatus) -> RolloutState:
    try:
        return RolloutState.from_status(status)
    except ValueError as err:
        raise UnreadableStatus(str(err)) from err


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"status.{where}: {first['msg']}"


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _generation(body: Mapping[str, Any]) -> int | None:
    return (body.get("metadata") or {}).get("generation")
