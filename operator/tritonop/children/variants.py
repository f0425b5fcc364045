"""rollout.experiment.variants: each variant beyond B is the spec with its own model or image. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from tritonop.api.models import ExperimentArm, InferenceServiceSpec, RolloutStrategy
from tritonop.children.revision import revision_of


@dataclass(frozen=True)
class VariantSpec:
    name: str
    revision: str
    spec: InferenceServiceSpec


def variant_spec(spec: InferenceServiceSpec, arm: ExperimentArm) -> InferenceServiceSpec:
    """The spec with the variant's storageUri, version and image in place of its own."""
    changes = {"storage_uri": arm.model.storage_uri, "version": arm.model.version}
    model = spec.model.model_copy(update={k: v for k, v in changes.items() if v is not None})
    triton = spec.triton if arm.image is None else spec.triton.model_copy(update={"image": arm.image})
    return spec.model_copy(update={"model": model, "triton": triton})


def variant_specs(spec: InferenceServiceSpec, default_image: str | None) -> list[VariantSpec]:
    """Each variant of an Experiment beyond B, in spec order; none for other strategies."""
    experiment = spec.rollout.experiment
    if spec.rollout.strategy != RolloutStrategy.experiment or experiment is None:
        return []
    built = []
    for arm in experiment.variants:
        varied = variant_spec(spec, arm)
        built.append(VariantSpec(arm.name, revision_of(varied, default_image), varied))
    return built
