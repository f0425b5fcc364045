"""The sequential statistics: exact binomial tails, the mixture SPRT's guarantees, power."""

from __future__ import annotations

import math
import random

import pytest

from tritonop.analysis.sequential import (
    Counts,
    binomial_tail,
    check_rate,
    check_rate_vs_stable,
    critical_events,
    detectable_rate,
    log_evidence,
    rejects,
    seconds_above,
    seconds_above_stable,
    split_alpha,
    upper_bound,
)


@pytest.mark.parametrize(
    ("n", "k", "p", "expected"),
    [
        (10, 5, 0.5, 638 / 1024),  # sum_{i>=5} C(10,i) / 2^10
        (10, 1, 0.1, 1 - 0.9**10),
        (20, 0, 0.3, 1.0),
        (20, 21, 0.3, 0.0),
        (5, 5, 0.2, 0.2**5),
        (100, 3, 0.01, 1 - sum(math.comb(100, i) * 0.01**i * 0.99 ** (100 - i) for i in range(3))),
        (1000, 600, 0.5, sum(math.comb(1000, i) for i in range(600, 1001)) / 2**1000),
        (30, 2, 0.0, 0.0),
        (30, 30, 1.0, 1.0),
    ],
)
def test_binomial_tail_exact(n: int, k: int, p: float, expected: float) -> None:
    assert binomial_tail(n, k, p) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_evidence_is_one_before_any_request_and_grows_with_failures() -> None:
    assert log_evidence(0, 0, 0.01) == pytest.approx(0.0)
    values = [log_evidence(50, x, 0.01) for x in range(0, 11)]
    assert values == sorted(values) and values[0] < 0 < values[-1]


def test_edge_bounds() -> None:
    # min 1.0: no failure allowed, one is conclusive; min 0: nothing can fail the check.
    assert log_evidence(3, 1, 0.0) == math.inf and rejects(3, 1, 0.0, 0.001)
    assert not rejects(100, 100, 1.0, 0.5)
    with pytest.raises(ValueError, match="0 <= x <= n"):
        log_evidence(3, 4, 0.1)


def _critical(n_max: int, p0: float, alpha: float) -> list[float]:
    """The rejecting event count at each n (inf where none): one pass of a run is then a compare."""
    return [math.inf if (k := critical_events(n, p0, alpha)) is None else k for n in range(n_max + 1)]


def _first_rejection(rng: random.Random, rate: float, critical: list[float]) -> int | None:
    x = 0
    for n in range(1, len(critical)):
        x += rng.random() < rate
        if x >= critical[n]:
            return n
    return None


def test_critical_table_agrees_with_the_evidence() -> None:
    critical = _critical(200, 0.01, 0.001)
    for n in (1, 5, 37, 200):
        k = critical[n]
        if k != math.inf:
            assert rejects(n, int(k), 0.01, 0.001) and not rejects(n, int(k) - 1, 0.01, 0.001)


def test_thirty_percent_failing_is_conclusive_within_a_few_dozen_requests() -> None:
    # 6 requests/s at 30% failures against min 0.99: the expected path rejects in ~2-3 s of traffic.
    rng = random.Random(7)
    critical = _critical(200, 0.01, 0.001)
    times = sorted(_first_rejection(rng, 0.3, critical) or 10**6 for _ in range(500))
    assert times[len(times) // 2] <= 18  # median requests to a verdict
    assert times[int(len(times) * 0.95)] <= 36  # 95% within 6 s at 6 requests/s


@pytest.mark.parametrize("true_rate", [0.01, 0.005, 0.0])
def test_false_rollback_rate_is_at_most_alpha_over_many_healthy_runs(true_rate: float) -> None:
    """Always valid: a canary exactly at (or under) its bound, looked at after every request for
    3,000 requests, is rejected in at most alpha of the runs (here alpha 0.05 to see any at all)."""
    rng = random.Random(2026)
    critical = _critical(3000, 0.01, 0.05)
    rejected = sum(_first_rejection(rng, true_rate, critical) is not None for _ in range(1000))
    # Binomial(1000, 0.05) exceeds 65 with probability < 0.02; the guarantee is <= 50 expected.
    assert rejected <= 65


def test_alpha_honoured_for_the_sign_test_at_its_bound() -> None:
    rng = random.Random(11)
    critical = _critical(300, 0.5, 0.05)
    rejected = sum(_first_rejection(rng, 0.5, critical) is not None for _ in range(2000))
    assert rejected <= 125  # expected <= 100


def test_a_rate_over_the_bound_is_caught_nearly_always() -> None:
    rng = random.Random(5)
    critical = _critical(3000, 0.01, 0.001)
    caught = sum(_first_rejection(rng, 0.05, critical) is not None for _ in range(300))
    assert caught >= 295


def test_upper_bound_covers_the_true_rate_and_shrinks() -> None:
    assert upper_bound(0, 0, 0.01) == 1.0
    wide, narrow = upper_bound(100, 1, 0.001), upper_bound(10_000, 100, 0.001)
    assert 0.01 < narrow < wide < 1
    assert narrow < 0.02
    rng = random.Random(3)
    misses = 0
    for _ in range(200):
        x = sum(rng.random() < 0.02 for _ in range(2000))
        misses += upper_bound(2000, x, 0.05) < 0.02
    assert misses <= 10


def test_critical_events_is_the_first_rejecting_count() -> None:
    k = critical_events(36, 0.01, 0.001)
    assert k is not None
    assert rejects(36, k, 0.01, 0.001) and not rejects(36, k - 1, 0.01, 0.001)
    assert critical_events(2, 0.5, 0.001) is None  # two seconds can never be conclusive


def test_detectable_rate_is_where_the_exact_tail_reaches_the_power() -> None:
    n = 360
    k = critical_events(n, 0.01, 0.001)
    rate = detectable_rate(n, 0.01, 0.001)
    assert k is not None and rate is not None
    assert binomial_tail(n, k, rate) == pytest.approx(0.8, abs=1e-6)
    assert 0.01 < rate < 0.06
    assert detectable_rate(3600, 0.01, 0.001) < rate  # type: ignore[operator]


def test_check_rate_decisions() -> None:
    assert check_rate(Counts(10, 0), 0.01, 0.001, min_trials=20).decision == "Inconclusive"
    passed = check_rate(Counts(36, 0), 0.01, 0.001, min_trials=20)
    assert passed.decision == "Pass" and passed.threshold == 1000 and passed.evidence < 1
    failed = check_rate(Counts(12, 5), 0.01, 0.001, min_trials=20)
    assert failed.decision == "Fail" and failed.evidence >= 1000


def test_check_rate_vs_stable() -> None:
    stable = Counts(10_000, 100)  # 1%
    assert check_rate_vs_stable(Counts(40, 12), stable, 0.01, 0.001, min_trials=20).decision == "Fail"
    same = check_rate_vs_stable(Counts(400, 5), stable, 0.01, 0.001, min_trials=20)
    assert same.decision == "Pass" and same.p0 > 0.02
    # Without stable data nothing is conclusive against it.
    assert check_rate_vs_stable(Counts(40, 40), Counts(), 0.0, 0.001, min_trials=20).decision == "Pass"


def test_sign_counts_and_alpha_split() -> None:
    assert seconds_above([10, 60, 70, 40], 50) == Counts(4, 2)
    assert seconds_above_stable([(12, 10), (13, 10), (9, 10)], 20) == Counts(3, 1)
    assert split_alpha(0.001, 4) == pytest.approx(0.00025)
    assert split_alpha(0.001, 0) == 0.001
    with pytest.raises(ValueError):
        Counts(1, 2)
