"""Always-valid sequential tests for canary verdicts in seconds. Pure: counts in, decisions out.

Every check reduces to one question about a Bernoulli rate: is ``p`` above ``p0``?

- error rate against ``successRate.min``: each request fails with rate ``p``, ``p0 = 1 - min``;
- error rate against the stable revision: ``p0`` is the stable's time-uniform upper confidence
  bound plus ``comparative.maxSuccessRateDrop`` (half of the check's alpha for the bound, half
  for the test: a union bound);
- latency against ``latency.maxMs``: each second with canary requests is "above" when its mean
  latency exceeds the bound, ``p0 = 1/2`` (a sign test on per-second means);
- latency against the stable revision: each second with requests on both sides is "above" when
  the canary's mean exceeds the stable's by more than ``comparative.maxLatencyIncreasePercent``,
  ``p0 = 1/2``.

The test is a mixture sequential probability ratio test (mSPRT): the evidence against
``H0: p <= p0`` is ``E = mean_k L(p_k) / L(p0)`` over a fixed grid of alternatives ``p_k > p0``
(odds ``r_k`` times those of ``p0``). For every ``p <= p0`` each ratio, and so ``E``, is a
non-negative supermartingale with ``E_0 = 1`` (each observation multiplies it by a factor whose
expectation is ``p p_k/p0 + (1 - p)(1 - p_k)/(1 - p0) <= 1``), so by Ville's inequality
``P(E ever reaches 1/alpha) <= alpha``: the test may be read after every request, at any moment,
for as long as the canary runs, and still rolls back a canary within its bound with probability
at most ``alpha``. Counts are cumulative, so ``E`` depends only on ``(n, x)``.

Sign tests assume a second's mean is as likely below as above the true mean (per-second means
of many requests are close to symmetric); the error-rate tests assume nothing beyond
independent requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Decision = Literal["Pass", "Fail", "Inconclusive"]

# Odds ratios of the alternatives mixed over: 1.2 .. ~525 in steps of 1.5x. Mixing over 16 costs
# log(16) of evidence against the best single alternative, and covers a 25% and a 50x worse canary.
ODDS_RATIOS: tuple[float, ...] = tuple(1.2 * 1.5**k for k in range(16))
DEFAULT_ALPHA = 0.001
# The power promotion states: the failure rate the test would catch with this probability.
POWER = 0.8


# ---------------------------------------------------------------- exact binomial


def log_binomial_pmf(n: int, k: int, p: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p); -inf where the probability is 0."""
    if not 0 <= k <= n:
        return -math.inf
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly from the smaller side."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if p >= 1.0 else 0.0
    if k > n // 2:
        return min(1.0, _pmf_sum(n, k, n, p))
    return min(1.0, max(0.0, 1.0 - _pmf_sum(n, 0, k - 1, p)))


def _pmf_sum(n: int, first: int, last: int, p: float) -> float:
    """The sum of P(X = i) for i in first..last: one lgamma, then the ratio between neighbours."""
    log_pmf = log_binomial_pmf(n, first, p)
    log_odds = math.log(p) - math.log1p(-p)
    total = 0.0
    for i in range(first, last + 1):
        total += math.exp(log_pmf)
        if i < n:
            log_pmf += math.log((n - i) / (i + 1)) + log_odds
    return total


# ---------------------------------------------------------------- the mixture SPRT


def alternatives(p0: float) -> tuple[float, ...]:
    """The alternatives p_k > p0 the evidence mixes over."""
    odds0 = p0 / (1.0 - p0)
    return tuple(odds0 * r / (1.0 + odds0 * r) for r in ODDS_RATIOS)


def log_evidence(n: int, x: int, p0: float) -> float:
    """log E: evidence against ``p <= p0`` after ``x`` events ("failures") in ``n`` trials.

    ``p0 <= 0``: one event is conclusive (+inf); ``p0 >= 1``: nothing is (-inf, never rejects).
    """
    if n < 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n, got x={x}, n={n}")
    if p0 >= 1.0:
        return -math.inf
    if p0 <= 0.0:
        return math.inf if x > 0 else 0.0
    terms = [
        x * math.log(p1 / p0) + (n - x) * (math.log1p(-p1) - math.log1p(-p0)) for p1 in alternatives(p0) if p1 < 1.0
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms)) - math.log(len(ODDS_RATIOS))


def rejects(n: int, x: int, p0: float, alpha: float) -> bool:
    """Whether the evidence against ``p <= p0`` is conclusive at false-rejection rate alpha."""
    return log_evidence(n, x, p0) >= -math.log(alpha)


def upper_bound(n: int, x: int, alpha: float) -> float:
    """A time-uniform upper confidence bound on p: with probability >= 1 - alpha, at every n,
    p <= the bound. The largest q the reversed test (``1 - p <= 1 - q``) does not reject."""
    if n == 0 or x == n:
        return 1.0
    low, high = x / n, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if rejects(n, n - x, 1.0 - mid, alpha):
            high = mid
        else:
            low = mid
    return high


def critical_events(n: int, p0: float, alpha: float) -> int | None:
    """The fewest events in n trials that reject ``p <= p0``; None when even n of n would not."""
    if not rejects(n, n, p0, alpha):
        return None
    low, high = 0, n
    while low < high:  # evidence grows with x at fixed n
        mid = (low + high) // 2
        if rejects(n, mid, p0, alpha):
            high = mid
        else:
            low = mid + 1
    return low


def detectable_rate(n: int, p0: float, alpha: float, power: float = POWER) -> float | None:
    """The smallest event rate the test rejects with probability >= ``power`` by trial n (a lower
    bound on the sequential test's power: rejecting at n implies rejecting by n), by the exact
    binomial tail. None when n trials can reject nothing."""
    k = critical_events(n, p0, alpha)
    if k is None:
        return None
    low, high = p0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        if binomial_tail(n, k, mid) >= power:
            high = mid
        else:
            low = mid
    return high


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class Counts:
    """Trials and events ("failures", or "seconds above") seen on one side."""

    trials: int = 0
    events: int = 0

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.events <= self.trials:
            raise ValueError(f"need 0 <= events <= trials, got {self.events} of {self.trials}")

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.trials + other.trials, self.events + other.events)

    @property
    def rate(self) -> float | None:
        return None if self.trials == 0 else self.events / self.trials


@dataclass(frozen=True)
class SequentialResult:
    """One sequential check's state: its decision, evidence ``E`` and the threshold ``1/alpha``."""

    decision: Decision
    p0: float  # the null's bound on the rate; what the canary's rate is tested against
    log_evidence: float
    threshold: float  # 1/alpha for this check
    detectable: float | None  # the rate caught with POWER probability by now (None: none yet)

    @property
    def evidence(self) -> float:
        """E, capped for display (a single failure against p0 = 0 is infinite evidence)."""
        return math.exp(min(self.log_evidence, 700.0)) if self.log_evidence > -700 else 0.0


def check_rate(canary: Counts, p0: float, alpha: float, *, min_trials: int, power: bool = True) -> SequentialResult:
    """Fail once the canary's event rate is conclusively above p0; Pass once ``min_trials``
    trials are in without that (promotion may then proceed at the interval's end);
    Inconclusive before. ``power``: also compute ``detectable``, the costly part, which a
    caller needs only when the result is shown, not on every tick."""
    p0 = min(max(p0, 0.0), 1.0)
    log_e = log_evidence(canary.trials, canary.events, p0)
    threshold = 1.0 / alpha
    wanted = power and canary.trials > 0 and p0 < 1.0
    detectable = detectable_rate(canary.trials, p0, alpha) if wanted else None
    if log_e >= math.log(threshold):
        decision: Decision = "Fail"
    elif canary.trials >= min_trials:
        decision = "Pass"
    else:
        decision = "Inconclusive"
    return SequentialResult(decision, p0, log_e, threshold, detectable)


def check_rate_vs_stable(
    canary: Counts, stable: Counts, max_increase: float, alpha: float, *, min_trials: int, power: bool = True
) -> SequentialResult:
    """Fail once the canary's rate is conclusively above the stable's plus ``max_increase``:
    half of alpha bounds the stable's rate from above (time-uniformly), half tests the canary
    against that bound plus the allowed increase. Without stable trials p0 is 1 (no Fail)."""
    stable_bound = upper_bound(stable.trials, stable.events, alpha / 2)
    return check_rate(canary, stable_bound + max_increase, alpha / 2, min_trials=min_trials, power=power)


def split_alpha(alpha: float, checks: int) -> float:
    """Each of ``checks`` sequential checks gets alpha/checks: the false-rollback rate of all of
    them together stays <= alpha (a union bound)."""
    return alpha / max(checks, 1)


def seconds_above(canary_means: Sequence[float], bound: float) -> Counts:
    """Sign-test counts: seconds with a mean, and those whose mean is above ``bound``."""
    return Counts(len(canary_means), sum(1 for m in canary_means if m > bound))


def seconds_above_stable(pairs: Sequence[tuple[float, float]], max_increase_percent: float) -> Counts:
    """Sign-test counts over seconds with a mean on both sides: canary above stable x (1 + pct)."""
    factor = 1.0 + max_increase_percent / 100.0
    return Counts(len(pairs), sum(1 for canary, stable in pairs if canary > stable * factor))
