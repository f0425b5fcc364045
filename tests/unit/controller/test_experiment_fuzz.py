"""The stateful rollout fuzz with every spec an Experiment: the safety invariants of docs/rollout.md,
and an experiment's B promoted only by the promote annotation, under random users, faults and
operators (rollout_fuzz.RolloutMachine's rules and invariants), with time passing in runs of
ticks so that experiments start, conclude and are decided."""

from __future__ import annotations

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test

from tests.unit.controller import rollout_fuzz
from tests.unit.controller.rollout_fuzz import MODELS, VARIANT_MODELS, RolloutMachine, spec_for
from tritonop.rollout import ABORT_ANNOTATION, PROMOTE_ANNOTATION

SEEN: Counter[str] = Counter()  # what the experiments went through, over all runs


class ExperimentMachine(RolloutMachine):
    @initialize()
    def an_experiment_runs(self) -> None:
        """Each run starts with v1 serving and v2 as B of a running A/B/n experiment (variant c beside it)."""
        self.time_passes(1)
        self.edit_spec(MODELS[1])
        self.time_passes(1)

    @rule(uri=st.sampled_from(MODELS), rollout=st.sampled_from(["experiment", "abn", "abn-d"]))
    def edit_spec(self, uri: str, rollout: str = "abn") -> None:
        self.h.apply(spec_for(uri, rollout))
        self._run(self.h.reconcile())

    @rule(uri=st.sampled_from(MODELS), variant=st.sampled_from(VARIANT_MODELS))
    def apply_naming_the_variant(self, uri: str, variant: str) -> None:
        """One apply of a manifest that sets the variant's model and a promote annotation naming
        the revision it will have: stale for the variant it starts (I6), acts once set again."""
        rollout = "abn" if variant == VARIANT_MODELS[0] else "abn-d"
        annotations = {
            **(self.h.body()["metadata"].get("annotations") or {}),
            PROMOTE_ANNOTATION: self.revision(variant),
        }
        self.h.apply(spec_for(uri, rollout), annotations=annotations)
        self._run(self.h.reconcile())

    def shadow_rollout(self, uri: str, ticks: int) -> None:
        """Not a rule here: every spec is an Experiment (the revision fuzz covers shadow phases)."""

    def delete_and_create_again(self, uri: str) -> None:
        """Not a rule here: a re-created object's leftover children hold most runs in ChildConflict,
        and no experiment would run (the revision fuzz covers deletion)."""

    @precondition(lambda self: ((self.h.body().get("status") or {}).get("experiment") or {}).get("ended") is False)
    @rule(action=st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION]), variant=st.sampled_from([1, 2]))
    def decide(self, action: str, variant: int) -> None:
        """A person picks a winner while an experiment runs: the annotation names B (1) or the
        variant beyond it (2, where one runs); its watch event wakes a tick."""
        variants = self.h.status()["experiment"]["variants"]
        self.h.annotate({action: variants[min(variant, len(variants) - 1)]["revision"]})
        self._run(self.h.tick())
        winner = (self.h.status().get("experiment") or {}).get("winner")
        SEEN.update([f"winner {winner}"] if winner else [])

    @rule(ticks=st.integers(min_value=1, max_value=8), variant_fails=st.booleans())
    def time_passes(self, ticks: int, variant_fails: bool = False) -> None:
        """Ticks 5 s apart, the variant beyond B (if one runs) failing its checks or not."""
        self.variant_fails_its_checks(variant_fails)
        for _ in range(ticks):
            self.h.advance(5)
            self._run(self.h.tick())
            experiment = self.h.status().get("experiment") or {}
            SEEN.update(k for k in ("concluded", "ended", "resultsAt") if experiment.get(k))
            SEEN.update([f"winner {experiment['winner']}"] if experiment.get("winner") else [])


def test_experiment_invariants_hold_under_random_steps_and_faults() -> None:
    before = rollout_fuzz.STEPS.total
    SEEN.clear()
    run_state_machine_as_test(
        ExperimentMachine,
        settings=rollout_fuzz.seeded(100),
    )
    assert rollout_fuzz.STEPS.total - before >= 1000
    # The runs reached every part of an experiment: figures, conclusions, both winners.
    assert {"resultsAt", "concluded", "winner A", "winner B", "winner c"} <= set(SEEN), SEEN
    assert rollout_fuzz.PICKED and rollout_fuzz.STOPPED, "no variant beyond B was picked, or none stopped"
