"""Triton-facing checks: is a canary ready to take traffic, and what does the stable serve.

I/O at the edge: the revision's Deployment and pods through the Kubernetes API, Triton
through its HTTP API (via the endpoints map). The decisions they feed are pure.
"""

from __future__ import annotations

from tritonop.api.models import ALL_MODELS, InferenceServiceSpec, InferenceServiceStatus, ModelFacts
from tritonop.children.labels import ISVC_LABEL, REVISION_LABEL
from tritonop.children.names import default_case_model, revision_child_name, triton_models
from tritonop.children.refs import IsvcRef
from tritonop.controller.triton_keys import TritonKeys
from tritonop.endpoints import TritonEndpoints
from tritonop.kinds import DEPLOYMENT, POD
from tritonop.kube.client import KubeClient
from tritonop.rollout import GateResult
from tritonop.status import DeploymentReadiness
from tritonop.triton import check_readiness, model_facts, run_acceptance, served_models

# How many of a not-ready revision's pods the gate asks for the reason (bounded cost per tick).
MAX_PODS_ASKED = 3


class TritonChecks:
    def __init__(self, kube: KubeClient, endpoints: TritonEndpoints, keys: TritonKeys | None = None) -> None:
        self.kube = kube
        self.endpoints = endpoints
        self.keys = keys

    def _key(self, ref: IsvcRef) -> str | None:
        """The InferenceService's control-API key, sent with every call (never logged)."""
        return self.keys.key_for(ref) if self.keys is not None else None

    async def readiness(self, ref: IsvcRef, revision: str | None) -> DeploymentReadiness | None:
        """What the revision's Deployment reports; None for no revision."""
        if revision is None:
            return None
        name = revision_child_name(ref, revision)
        return DeploymentReadiness.from_object(await self.kube.get(*DEPLOYMENT.key, ref.namespace, name), name)

    async def gate(self, ref: IsvcRef, spec: InferenceServiceSpec, canary: str) -> GateResult:
        """Open when the Deployment is available, Triton says every model is ready (an ensemble's
        composing models too), and the acceptance inference (if any) ran; closed with the most
        specific reason known."""
        deployment = await self.readiness(ref, canary)
        assert deployment is not None
        if not deployment.available:
            return await self.why_not_ready(ref, spec, canary) or GateResult(
                False, "DeploymentNotAvailable", deployment.message
            )
        url = self.endpoints.url_for(ref.namespace, ref.name, canary)
        readiness = await check_readiness(url, triton_models(ref, spec), spec.model.version, key=self._key(ref))
        if not readiness.ready:
            return GateResult(False, readiness.reason, readiness.message)
        if spec.rollout.acceptance is None:
            return GateResult(True, readiness.reason, readiness.message)
        result = await run_acceptance(
            url, default_case_model(ref, spec), spec.model.version, spec.rollout.acceptance, key=self._key(ref)
        )
        return GateResult(True, result.reason, result.message, acceptance_passed=result.passed)

    async def why_not_ready(self, ref: IsvcRef, spec: InferenceServiceSpec, revision: str) -> GateResult | None:
        """Why a revision's pods are not ready, from the pods themselves.

        The revision Service reaches ready pods only, so for the cause (an image that does
        not pull, a model that fails to load, a storage Secret that does not exist:
        CreateContainerConfigError) ask the kubelet's view of the containers, then Triton in a
        running pod directly. None when neither says more.
        """
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        pods = await self.kube.list(*POD.key, ref.namespace, selector)
        for pod in pods[:MAX_PODS_ASKED]:
            name = pod["metadata"]["name"]
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
                    return GateResult(
                        False, waiting["reason"], f"pod {name}: {waiting.get('message', '')}".rstrip(": ")
                    )
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            url = self.endpoints.url_for_pod(ref.namespace, name, (pod.get("status") or {}).get("podIP"))
            if url is None:
                continue
            readiness = await check_readiness(url, triton_models(ref, spec), spec.model.version, key=self._key(ref))
            if not readiness.ready and readiness.reason != "ServerUnreachable":
                return GateResult(False, readiness.reason, f"pod {name}: {readiness.message}")
        return None

    async def running_unready(self, ref: IsvcRef, revision: str) -> bool:
        """Whether a pod of the revision runs without being ready (its containers started)."""
        selector = f"{ISVC_LABEL}={ref.name},{REVISION_LABEL}={revision}"
        for pod in await self.kube.list(*POD.key, ref.namespace, selector):
            status = pod.get("status") or {}
            containers = status.get("containerStatuses") or []
            if status.get("phase") == "Running" and not all(c.get("ready") for c in containers):
                return True
        return False

    async def stable_model_facts(
        self,
        ref: IsvcRef,
        spec: InferenceServiceSpec,
        status: InferenceServiceStatus,
        stable: DeploymentReadiness | None,
    ) -> tuple[ModelFacts | None, list[ModelFacts] | None]:
        """status.model (one model) and status.models (model.models: each model served, for "*"
        each one loaded): asked of Triton once per stable revision, kept until the stable changes."""
        current = (status.model, status.models)
        if status.stable_revision is None or stable is None or not stable.available:
            return current
        known = status.models or ([status.model] if status.model is not None else [])
        if known and all(facts.revision == status.stable_revision for facts in known):
            return current
        url = self.endpoints.url_for(ref.namespace, ref.name, status.stable_revision)
        names = await self.served(ref, spec, status.stable_revision)
        if not names:
            return current
        read = [await model_facts(url, name, spec.model.version, key=self._key(ref)) for name in names]
        if any(facts is None for facts in read):
            return current
        stamped = [facts.model_copy(update={"revision": status.stable_revision}) for facts in read if facts]
        return (None, stamped) if spec.model.models is not None else (stamped[0], None)

    async def served(self, ref: IsvcRef, spec: InferenceServiceSpec, revision: str) -> list[str]:
        """The models a revision serves by name: the spec's, or for "*" those its Triton has loaded
        (empty when it cannot be asked)."""
        models = triton_models(ref, spec)
        if models != (ALL_MODELS,):
            return list(models)
        url = self.endpoints.url_for(ref.namespace, ref.name, revision)
        return await served_models(url, key=self._key(ref)) or []
