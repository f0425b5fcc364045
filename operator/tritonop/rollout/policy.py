"""The rollout settings of one InferenceService, in the units the state machine uses."""

from __future__ import annotations

from dataclasses import dataclass

from tritonop.api.models import Rollout, RolloutStrategy
from tritonop.durations import parse_duration


@dataclass(frozen=True)
class RolloutPolicy:
    steps: tuple[int, ...]  # canary percent per step; promotion follows the last
    interval_s: float  # analysis period per step
    failure_threshold: int  # failed checks (cumulative over the rollout) before rollback
    readiness_timeout_s: float  # from canary start until Triton must be ready (and accepted)
    no_data_timeout_s: float  # no-data tolerance before each further no-data counts as a failure
    acceptance_required: bool  # acceptance inference must pass before the first step
    paused: bool  # hold everything at the current weight
    shadow_s: float | None = None  # rollout.shadow: judged on mirrored requests this long before step 1
    shadow_percent: int = 0  # share of requests mirrored to the canary meanwhile
    auto_promote: bool = True  # a Pass at the last step promotes; an Experiment holds its split instead

    @classmethod
    def from_spec(cls, rollout: Rollout) -> RolloutPolicy:
        experiment = rollout.experiment if rollout.strategy == RolloutStrategy.experiment else None
        return cls(
            # An Experiment is one step at B's fixed weight, held once it passes (never promoted by itself).
            steps=(experiment.weight,) if experiment is not None else tuple(rollout.steps),
            interval_s=parse_duration(rollout.interval),
            failure_threshold=rollout.failure_threshold,
            readiness_timeout_s=parse_duration(rollout.readiness_timeout),
            no_data_timeout_s=parse_duration(rollout.analysis.no_data_timeout),
            acceptance_required=rollout.acceptance is not None,
            paused=rollout.paused,
            shadow_s=None if rollout.shadow is None else parse_duration(rollout.shadow.duration),
            shadow_percent=0 if rollout.shadow is None else rollout.shadow.percent,
            auto_promote=experiment is None,
        )
