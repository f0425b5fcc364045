"""The children: what each revision and the router should be, applied, and the rest pruned.

Per child kind, as the rollout decided: a revision's Deployment, Service, autoscaler and
PDB (expected -> apply -> prune the kinds a new build no longer lists), its replicas when
scaled, everything of it when deleted; then the entry Service and the active provider's
routing objects, pruning the provider's objects it no longer builds and every object of
the other providers.
"""

from __future__ import annotations

import logging

from tritonop.api.models import InferenceServiceSpec
from tritonop.children import build_entry_service, build_revision
from tritonop.children.names import revision_child_name
from tritonop.children.refs import IsvcRef
from tritonop.config import OperatorConfig
from tritonop.kinds import AUTOSCALER_KINDS, DEPLOYMENT, REVISION_CHILD_KINDS, Kind
from tritonop.kube.apply import apply_all, ensure_absent
from tritonop.kube.client import KubeClient
from tritonop.rollout import ApplyRevision, DeleteRevision, RolloutState, ScaleRevision, traffic
from tritonop.status import DeploymentReadiness
from tritonop.traffic import other_providers_objects, provider_for, stale_objects

log = logging.getLogger("tritonop")

RevisionAction = ApplyRevision | ScaleRevision | DeleteRevision


class Children:
    def __init__(self, kube: KubeClient, config: OperatorConfig) -> None:
        self.kube = kube
        self.config = config

    async def perform(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
        action: RevisionAction,
        state: RolloutState,
        stable: DeploymentReadiness | None,
        *,
        force: bool,
    ) -> None:
        if isinstance(action, ApplyRevision):
            if action.revision != desired:
                log.warning("not re-applying revision %s: the spec now hashes to %s", action.revision, desired)
                return
            await self.apply_revision(ref, spec, action.revision, state, stable, force=force)
        elif isinstance(action, ScaleRevision):
            await self._scale(ref, action.revision, action.replicas)
        else:
            await self._remove(ref, action.revision, REVISION_CHILD_KINDS)

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
        if revision == state.canary and state.weight > 0:
            # Providers without a router (`service`) split by replica ratio: size the canary to its weight.
            base = stable.replicas if stable and stable.replicas else spec.autoscaling.min_replicas
            replicas = provider_for(spec).canary_replicas(base, state.weight)
        objs = build_revision(ref, spec, revision, self.config, replicas=replicas)
        await apply_all(self.kube, objs, force=force)
        built = {(o["apiVersion"], o["kind"]) for o in objs}
        await self._remove(ref, revision, [k for k in REVISION_CHILD_KINDS if k.key not in built])

    async def route(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        desired: str,
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
        if provider.splits_by_replicas and state.weight > 0 and state.canary == desired:
            # Resize a replica-split canary as its weight changes (replicas are not part of the revision).
            await self.apply_revision(ref, spec, state.canary, state, stable, force=force)
        objs = [build_entry_service(ref, spec, self.config, revisions=serving or [state.stable])]
        objs += provider.build(ref, spec, targets, self.config)
        await apply_all(self.kube, objs, force=force)
        for kind, name in stale_objects(provider, ref, objs):
            await ensure_absent(self.kube, *kind.key, ref.namespace, name)

    async def remove_other_providers(self, ref: IsvcRef, spec: InferenceServiceSpec) -> None:
        for kind, name in other_providers_objects(provider_for(spec), ref):
            await ensure_absent(self.kube, *kind.key, ref.namespace, name)

    async def _scale(self, ref: IsvcRef, revision: str, replicas: int) -> None:
        name = revision_child_name(ref, revision)
        if replicas == 0:
            await self._remove(ref, revision, AUTOSCALER_KINDS)
        deployment = await self.kube.get(*DEPLOYMENT.key, ref.namespace, name)
        if deployment is not None and (deployment.get("spec") or {}).get("replicas") != replicas:
            await self.kube.merge_patch(*DEPLOYMENT.key, ref.namespace, name, {"spec": {"replicas": replicas}})

    async def _remove(self, ref: IsvcRef, revision: str, kinds: tuple[Kind, ...] | list[Kind]) -> None:
        name = revision_child_name(ref, revision)
        for kind in kinds:
            await ensure_absent(self.kube, *kind.key, ref.namespace, name)
