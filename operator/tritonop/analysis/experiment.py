"""A/B experiments (rollout.strategy Experiment): each variant's figures and B against A. Pure.

Every figure comes from Prometheus over the experiment's whole window so far (its start to
``at``), so it survives operator restarts and covers both variants over the same time:

- requests, success rate and mean latency per variant: tritonop's own analysis queries
  (``promql.request_count``, ``success_rate``, ``mean_latency_ms``) with the window as range;
- each ``rollout.experiment.metrics`` query, rendered per variant (``promql.render_custom``:
  ``{{selector}}``, ``{{revision}}``, ``{{interval}}`` = the window);
- mean latency, paired: one difference B - A per window of ``step`` seconds with requests on
  both sides (a subquery), summarised as mean, standard deviation and count.

Two comparisons, each a 95% confidence interval for B - A:

- success rate: Newcombe's hybrid score interval (from the two Wilson intervals), on the
  requests counted (Prometheus' ``increase`` extrapolates, so counts are rounded);
  it assumes independent requests;
- mean latency: a paired t interval on the per-window differences, which assumes the
  windows' differences are independent and roughly normal (means of many requests are);
  windows pair the variants in time, so load and time of day cancel out.

Both are fixed-sample intervals: they are what they say at the experiment's end (the
decision point); read earlier and acted on whenever one is significant, they are wrong more
often than 5%. The experiment never acts on them: it concludes at its duration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist

from tritonop.analysis import promql
from tritonop.analysis.promql import RevisionSeries, TemplateError
from tritonop.analysis.result import QueryResult
from tritonop.api.models import ExperimentComparison, ExperimentMetric
from tritonop.config import OperatorConfig
from tritonop.durations import format_duration, prometheus_duration

CONFIDENCE = 0.95
MAX_WINDOWS = 1000  # paired latency windows per experiment: longer experiments get longer windows


# ---------------------------------------------------------------- queries


@dataclass(frozen=True)
class VariantQueries:
    """One variant's PromQL over the experiment's window."""

    requests: str
    success_rate: str
    mean_latency_ms: str
    metrics: dict[str, str]  # rollout.experiment.metrics name -> rendered query
    problems: dict[str, str]  # metric name -> why it has no query (an unknown placeholder)

    def all(self) -> list[str]:
        return [self.requests, self.success_rate, self.mean_latency_ms, *self.metrics.values()]


def variant_queries(
    series: RevisionSeries, metrics: Sequence[ExperimentMetric], window_s: float, config: OperatorConfig
) -> VariantQueries:
    rendered: dict[str, str] = {}
    problems: dict[str, str] = {}
    for metric in metrics:
        try:
            rendered[metric.name] = promql.render_custom(metric.query, series, window_s, config)
        except TemplateError as err:
            problems[metric.name] = str(err)
    return VariantQueries(
        requests=promql.request_count(series, window_s, config),
        success_rate=promql.success_rate(series, window_s, config),
        mean_latency_ms=promql.mean_latency_ms(series, window_s, config),
        metrics=rendered,
        problems=problems,
    )


def latency_step_s(window_s: float, interval_s: float) -> float:
    """The paired windows' length: the analysis interval, longer when the experiment would
    have more than MAX_WINDOWS of them; whole seconds."""
    return float(math.ceil(max(interval_s, window_s / MAX_WINDOWS, 1.0)))


@dataclass(frozen=True)
class PairedQueries:
    """Mean, population standard deviation and count of B - A's per-window mean latencies (ms)."""

    mean: str
    stddev: str
    count: str

    def all(self) -> list[str]:
        return [self.mean, self.stddev, self.count]


def paired_latency_queries(
    a: RevisionSeries, b: RevisionSeries, window_s: float, step_s: float, config: OperatorConfig
) -> PairedQueries:
    """Subqueries over the window: per step, B's mean latency minus A's, where both served."""
    step = prometheus_duration(step_s)

    def mean_ms(series: RevisionSeries) -> str:
        sel = promql.matchers(series, config)
        # "> 0" drops the windows without successful requests (0/0 is NaN, never > 0).
        rate = f"sum(rate({promql.DURATION_US}{{{sel}}}[{step}])) / sum(rate({promql.SUCCESS}{{{sel}}}[{step}]))"
        return f"(({rate}) > 0) / 1000"

    difference = f"({mean_ms(b)} - {mean_ms(a)})[{prometheus_duration(window_s)}:{step}]"
    return PairedQueries(
        mean=f"avg_over_time({difference})",
        stddev=f"stddev_over_time({difference})",
        count=f"count_over_time({difference})",
    )


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class VariantFigures:
    """What Prometheus said about one variant over the window."""

    requests: int | None = None
    success_rate: float | None = None
    mean_latency_ms: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # why a figure is missing, for status.experiment.message


def figures(queries: VariantQueries, answers: Mapping[str, QueryResult]) -> VariantFigures:
    """One variant's figures from the answers to its queries (every query answered, by text)."""
    problems: list[str] = []

    def value(what: str, query: str) -> float | None:
        answer = answers[query]
        if answer.value is None:
            if answer.status == "error":
                problems.append(f"{what}: {answer.message}")
            return None
        return answer.value

    requests = value("requests", queries.requests)
    count = None if requests is None else round(requests)
    # Without requests the rate and the latency are 0/0: no data, nothing to report.
    rate = value("successRate", queries.success_rate) if count else None
    latency = value("meanLatencyMs", queries.mean_latency_ms) if count else None
    metrics = {}
    for name, query in queries.metrics.items():
        found = value(name, query)
        if found is not None:
            metrics[name] = found
    problems += [f"{name}: {why}" for name, why in queries.problems.items()]
    return VariantFigures(count, rate, latency, metrics, tuple(problems))


@dataclass(frozen=True)
class PairedLatency:
    """B - A's per-window mean latencies: their mean, population standard deviation and count."""

    mean_ms: float
    stddev_ms: float
    windows: int
    step_s: float


def paired_latency(queries: PairedQueries, answers: Mapping[str, QueryResult], step_s: float) -> PairedLatency | None:
    mean, stddev, count = (answers[q].value for q in queries.all())
    if mean is None or stddev is None or count is None or not all(map(math.isfinite, (mean, stddev, count))):
        return None
    return PairedLatency(mean, stddev, round(count), step_s)


# ---------------------------------------------------------------- statistics


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a proportion (trials > 0)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference(
    successes_b: int, trials_b: int, successes_a: int, trials_a: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """p_B - p_A and Newcombe's hybrid score interval for it (method 10, 1998): good coverage
    down to a handful of requests and at rates of 0 or 1, where the Wald interval fails."""
    p_b, p_a = successes_b / trials_b, successes_a / trials_a
    low_b, high_b = wilson_interval(successes_b, trials_b, confidence)
    low_a, high_a = wilson_interval(successes_a, trials_a, confidence)
    difference = p_b - p_a
    low = difference - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = difference + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return difference, low, high


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (a continued fraction, Lentz's method)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / nonzero(1.0 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 500):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / nonzero(1.0 + even * d)
        c = nonzero(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / nonzero(1.0 + odd * d)
        c = nonzero(1.0 + odd / c)
        step = d * c
        result *= step
        if abs(step - 1.0) < 1e-15:
            break
    return result


def student_t_cdf(t: float, df: float) -> float:
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2, 0.5)
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0.5 <= p < 1 (bisection on the CDF)."""
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2


def paired_interval(paired: PairedLatency, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The paired t interval for the mean per-window difference; None with fewer than 2 windows."""
    k = paired.windows
    if k < 2:
        return None
    sample_sd = paired.stddev_ms * math.sqrt(k / (k - 1))  # stddev_over_time is the population's
    half = student_t_quantile(0.5 + confidence / 2, k - 1) * sample_sd / math.sqrt(k)
    return paired.mean_ms - half, paired.mean_ms + half


# ---------------------------------------------------------------- comparisons


def compare(
    a: VariantFigures, b: VariantFigures, latency: PairedLatency | None, *, variant: str = "B", compared: int = 1
) -> list[ExperimentComparison]:
    """``variant`` (B, or a variant beyond it) against A where the data allow: success rate
    (requests on both sides), mean latency (at least two windows with requests on both sides).

    ``compared``: how many variants are compared with A. Each interval is then widened
    (Bonferroni: confidence 1 - 0.05/compared), so all of them together hold at 95%: with
    three variants, one of three 95% intervals would miss by chance far more often than 5%.
    """
    confidence = 1 - (1 - CONFIDENCE) / max(compared, 1)
    corrected = "" if compared <= 1 else f", Bonferroni for {compared} variants"
    comparisons = []
    if a.requests and b.requests and a.success_rate is not None and b.success_rate is not None:
        successes_a = round(a.requests * min(max(a.success_rate, 0.0), 1.0))
        successes_b = round(b.requests * min(max(b.success_rate, 0.0), 1.0))
        difference, low, high = proportion_difference(successes_b, b.requests, successes_a, a.requests, confidence)
        how = f"Newcombe-Wilson interval, {b.requests} vs {a.requests} requests{corrected}"
        comparisons.append(
            _comparison(
                variant,
                confidence,
                "successRate",
                "success rate",
                100 * difference,
                100 * low,
                100 * high,
                " points",
                how,
            )
        )
    interval = None if latency is None else paired_interval(latency, confidence)
    if latency is not None and interval is not None:
        windows = f"{latency.windows} windows of {format_duration(latency.step_s)}{corrected}"
        comparisons.append(
            _comparison(
                variant,
                confidence,
                "meanLatencyMs",
                "mean latency",
                latency.mean_ms,
                *interval,
                " ms",
                f"paired t over {windows}",
            )
        )
    return comparisons


def _comparison(
    variant: str,
    confidence: float,
    metric: str,
    subject: str,
    difference: float,
    low: float,
    high: float,
    unit: str,
    how: str,
) -> ExperimentComparison:
    significant = low > 0 or high < 0
    level = format(100 * confidence, ".4g")
    ci = f"{level}% CI {_signed(low)}..{_signed(high)}{unit}; {how}"
    if significant:
        direction = "higher" if difference > 0 else "lower"
        statement = f"{variant}'s {subject} is {direction} than A's by {_plain(abs(difference))}{unit} ({ci})"
    else:
        statement = f"no significant difference in {subject}: {variant} - A = {_signed(difference)}{unit} ({ci})"
    return ExperimentComparison.model_validate(
        {
            "variant": variant,
            "metric": metric,
            "difference": float(format(difference, ".6g")),
            "low": float(format(low, ".6g")),
            "high": float(format(high, ".6g")),
            "significant": significant,
            "statement": statement,
        }
    )


def _plain(value: float) -> str:
    return format(value, ".0f") if abs(value) >= 100 else format(value, ".3g")


def _signed(value: float) -> str:
    text = _plain(value)
    return text if text.startswith("-") else f"+{text}"


@dataclass(frozen=True)
class ExperimentFigures:
    """Both variants' figures over the window from the experiment's start to ``at``, and B against A."""

    at: datetime
    a: VariantFigures
    b: VariantFigures
    comparison: list[ExperimentComparison]
    others: Mapping[str, VariantFigures] = field(default_factory=dict)  # variants beyond B, by name

    @property
    def complete(self) -> bool:
        """A's and B's request counts came back: the figures may replace the ones in status (a
        variant beyond B without pods yet has none, and says so in problems)."""
        return self.a.requests is not None and self.b.requests is not None

    @property
    def by_variant(self) -> dict[str, VariantFigures]:
        return {"A": self.a, "B": self.b, **self.others}

    @property
    def problems(self) -> list[str]:
        return [f"{side}: {problem}" for side, v in self.by_variant.items() for problem in v.problems]
