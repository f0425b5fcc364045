"""The children: what each revision and the router should be, applied, and the rest pruned.

Per child kind, as the rollout decided: a revision's Deployment, Service, autoscaler and
PDB (expected -> apply -> prune the kinds a new build no longer lists), and its replicas
when scaled; then the entry Service and the active provider's routing objects, pruning
the provider's objects it no longer builds and every object of the other providers.
Revisions the persisted status no longer names are removed by `remove_revision`.
Before a revision is applied, the InferenceService's Triton key Secret is written (never
read): created once per process (AlreadyExists is done), server-side applied on resume.

Only objects whose controller ownerReference is this InferenceService are patched or
deleted (kube.apply raises ChildConflict for a foreign object in the way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from tritonop.api.models import InferenceServiceSpec, TrafficTarget
from tritonop.children import build_entry_service, build_revision
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.names import revision_child_name
from tritonop.children.network_policy import build_network_policy, network_policy_enabled
from tritonop.children.refs import IsvcRef
from tritonop.children.triton_key import build_key_secret
from tritonop.config import OperatorConfig
from tritonop.controller.triton_keys import TritonKeys
from tritonop.kinds import AUTOSCALER_KINDS, DEPLOYMENT, NETWORK_POLICY, REVISION_CHILD_KINDS, Kind
from tritonop.kube.apply import apply_all, ensure_absent, owner_uid
from tritonop.kube.client import KubeClient, KubeError
from tritonop.rollout import ApplyRevision, RolloutState, ScaleRevision, traffic
from tritonop.rollout.state import in_shadow
from tritonop.status import DeploymentReadiness
from tritonop.traffic import Mirror, Routing, other_providers_objects, provider_for, stale_objects

log = logging.getLogger("tritonop")


class Children:
    def __init__(self, kube: KubeClient, config: OperatorConfig, keys: TritonKeys) -> None:
        self.kube = kube
        self.config = config
        self.keys = keys
        self._keyed: dict[tuple[str, str], str] = {}  # (namespace, name) -> uid whose key Secret exists

    async def perform(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
        action: ApplyRevision | ScaleRevision,
        state: RolloutState,
        stable: DeploymentReadiness | None,
        *,
        force: bool,
        variants: Mapping[str, InferenceServiceSpec] | None = None,
    ) -> None:
        """``variants``: an Experiment's variants beyond B, their specs by revision (one picked
        as the stable is re-applied from its own)."""
        if isinstance(action, ApplyRevision):
            built_from = spec if action.revision == desired else (variants or {}).get(action.revision)
            if built_from is None:
                log.warning("not re-applying revision %s: the spec now hashes to %s", action.revision, desired)
                return
            await self.apply_revision(ref, built_from, action.revision, state, stable, force=force)
        else:
            await self._scale(ref, action.revision, action.replicas)

    async def apply_revision(
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
        arm = next((a for a in state.arms if a.active and a.revision == revision), None)
        weight = state.weight if revision == state.canary else arm.weight if arm is not None else 0
        if weight > 0:
            # Providers without a router (`service`) split by replica ratio: size the canary (or an
            # Experiment's variant beyond B) to its weight against the stable's share, which is
            # 100 - weight only without variants beyond B.
            base = stable.replicas if stable and stable.replicas else spec.autoscaling.min_replicas
            stable_share = 100 - state.weight - sum(a.weight for a in state.arms if a.active)
            replicas = provider_for(spec).canary_replicas(base, round(100 * weight / (weight + stable_share)))
        await self.ensure_key_secret(ref, force=force)
        objs = build_revision(ref, spec, revision, self.config, replicas=replicas)
        await apply_all(self.kube, objs, force=force)
        built = {(o["apiVersion"], o["kind"]) for o in objs}
        await self._remove(ref, revision, [k for k in REVISION_CHILD_KINDS if k.key not in built])

    async def ensure_key_secret(self, ref: IsvcRef, *, force: bool) -> None:
        """The Secret the pods take the control-API key from, before any pod needs it.

        Written without reading (the operator may not read Secrets): created, with 409
        AlreadyExists taken as done; with ``force`` (resume) server-side applied as well, so
        a changed operator secret or an edited Secret is put right. Known to exist once per
        process, so a settled object writes nothing.
        """
        if self._keyed.get((ref.namespace, ref.name)) == ref.uid and not force:
            return
        secret = build_key_secret(ref, self.keys.key_for(ref))
        try:
            await self.kube.create(secret)
        except KubeError as err:
            if err.status != 409:
                raise
            if force:
                await self.kube.server_side_apply(secret)
        self._keyed[(ref.namespace, ref.name)] = ref.uid

    def forget(self, namespace: str, name: str) -> None:
        self._keyed.pop((namespace, name), None)

    async def route(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
        state: RolloutState,
        ready_pods: Mapping[str, int],
        stable: DeploymentReadiness | None,
        *,
        force: bool,
    ) -> None:
        """Point the entry Service and the provider's routes at the state's split, as far as
        the revisions serve: weight goes only to a revision with ready pods (``ready_pods``)."""
        if state.stable is None:
            return
        targets = serving_split(traffic(state), ready_pods)
        provider = provider_for(spec)
        if provider.splits_by_replicas and state.weight > 0 and state.canary == desired:
            # Resize a replica-split canary as its weight changes (replicas are not part of the revision).
            await self.apply_revision(ref, spec, state.canary, state, stable, force=force)
        serving = [t.revision for t in targets if t.percent > 0] if targets else [state.stable]
        objs = [build_entry_service(ref, spec, self.config, revisions=serving, stable=state.stable)]
        fenced = network_policy_enabled(spec, self.config)
        if fenced:
            # The InferenceService's NetworkPolicy (docs/security.md) goes first, before what exposes the pods.
            objs.insert(0, build_network_policy(ref, self.config))
        if targets is not None:
            objs += provider.build(ref, spec, routing(spec, state, targets, ready_pods), self.config)
        await apply_all(self.kube, objs, force=force)
        if targets is not None:
            for kind, name in stale_objects(provider, ref, objs):
                await ensure_absent(self.kube, *kind.key, ref.namespace, name, owner=ref.uid)
        if not fenced:
            await ensure_absent(self.kube, *NETWORK_POLICY.key, ref.namespace, ref.name, owner=ref.uid)

    async def remove_other_providers(self, ref: IsvcRef, spec: InferenceServiceSpec) -> None:
        for kind, name in other_providers_objects(provider_for(spec), ref):
            await ensure_absent(self.kube, *kind.key, ref.namespace, name, owner=ref.uid)

    async def live_revisions(self, ref: IsvcRef) -> dict[str, int]:
        """Revisions whose Deployment exists and is ours, with their ready pods."""
        found: dict[str, int] = {}
        for deployment in await self.kube.list(*DEPLOYMENT.key, ref.namespace, f"{ISVC_LABEL}={ref.name}"):
            revision = (deployment["metadata"].get("labels") or {}).get(REVISION_LABEL)
            if revision and owner_uid(deployment) == ref.uid:
                found[revision] = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        return found

    async def remove_revision(self, ref: IsvcRef, revision: str) -> None:
        await self._remove(ref, revision, REVISION_CHILD_KINDS)

    async def _scale(self, ref: IsvcRef, revision: str, replicas: int) -> None:
        name = revision_child_name(ref, revision)
        if replicas == 0:
            await self._remove(ref, revision, AUTOSCALER_KINDS)
        deployment = await self.kube.get(*DEPLOYMENT.key, ref.namespace, name)
        if (
            deployment is not None
            and owner_uid(deployment) == ref.uid
            and (deployment.get("spec") or {}).get("replicas") != replicas
        ):
            await self.kube.merge_patch(*DEPLOYMENT.key, ref.namespace, name, {"spec": {"replicas": replicas}})

    async def _remove(self, ref: IsvcRef, revision: str, kinds: Iterable[Kind]) -> None:
        name = revision_child_name(ref, revision)
        for kind in kinds:
            await ensure_absent(self.kube, *kind.key, ref.namespace, name, owner=ref.uid)


def routing(
    spec: InferenceServiceSpec, state: RolloutState, targets: list[TrafficTarget], ready_pods: Mapping[str, int]
) -> Routing:
    """The serving split, plus what reaches the canary besides its weight, only while it has
    ready pods (I1): a copy of rollout.shadow.percent of the requests during its shadow phase,
    and traffic.match's requests once it is past its gate and shadow phase."""
    canary = state.canary
    if canary is None or ready_pods.get(canary, 0) <= 0:
        return Routing(targets)
    shadow = spec.rollout.shadow
    mirror = Mirror(canary, shadow.percent) if shadow is not None and in_shadow(state) else None
    matched = canary if spec.traffic.match is not None and state.step_started_at is not None else None
    return Routing(targets, mirror=mirror, matched=matched)


def serving_split(targets: list[TrafficTarget], ready_pods: Mapping[str, int]) -> list[TrafficTarget] | None:
    """The state's split with weight only on revisions that have ready pods.

    A target without ready pods gives its share to those that have them; when none has,
    None: the routes are left as they are (a first revision is routed to once it serves).
    """

    def serves(target: TrafficTarget) -> bool:
        return ready_pods.get(target.revision, 0) > 0

    routed = [t for t in targets if t.percent > 0]
    if all(serves(t) for t in routed):
        return targets
    serving = [t for t in routed if serves(t)] or [t for t in targets if serves(t)][:1]
    if not serving:
        return None
    rest = 100 - sum(t.percent for t in serving)
    return [
        TrafficTarget(revision=t.revision, percent=t.percent + (rest if i == 0 else 0)) for i, t in enumerate(serving)
    ]
