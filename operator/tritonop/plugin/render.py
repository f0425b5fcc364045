"""What `kubectl tritonop` prints, as pure functions of API objects and the time: no I/O."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tritonop.children.labels import REVISION_LABEL

DEFAULT_STEPS = (10, 25, 50)
HISTORY_REASONS = (
    "CanaryStarted",
    "CanaryStep",
    "Promoted",
    "RevisionReady",
    "Aborted",
    "RolledBack",
    "RolloutFailed",
    "CanaryAbandoned",
    "RevisionReplaced",
    "AnalysisFailed",
)

Obj = Mapping[str, Any]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration: 45s, 2m30s, 12m, 5h3m, 3d4h, 120d, 3y."""
    s = int(seconds)
    if s < 0:
        s = 0
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def age(text: str | None, now: datetime) -> str:
    moment = parse_time(text)
    return human_duration((now - moment).total_seconds()) if moment else "<unknown>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """kubectl's plain table: columns padded to the widest cell, three spaces apart."""
    rows = [list(header), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "   ".join(cell.ljust(widths[i]) if i < len(header) - 1 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _dash(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def number(value: float | None) -> str:
    return "-" if value is None else format(value, ".6g")


def last_verdict(status: Obj) -> str:
    """The canary's last analysis in one word: Fail if any check failed, then Error,
    NoData, Pass; '-' when there is no canary or it has not been analysed yet."""
    checks = ((status.get("canary") or {}).get("lastAnalysis")) or []
    results = {c.get("result") for c in checks}
    for verdict in ("Fail", "Error", "NoData", "Pass"):
        if verdict in results:
            return verdict
    return "-"


def list_lines(items: Iterable[Obj], now: datetime, *, all_namespaces: bool) -> list[str]:
    header = ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "LAST VERDICT", "AGE"]
    rows = []
    for obj in sorted(
        items, key=lambda o: (o.get("metadata", {}).get("namespace", ""), o.get("metadata", {}).get("name", ""))
    ):
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        canary = status.get("canary") or {}
        weight = f"{canary.get('weight', 0)}%" if status.get("canaryRevision") else "-"
        row = [
            meta.get("name", ""),
            _dash(status.get("phase")),
            _dash(status.get("stableRevision")),
            _dash(status.get("canaryRevision")),
            weight,
            last_verdict(status),
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    return table(["NAMESPACE", *header] if all_namespaces else header, rows)


def steps_of(obj: Obj) -> list[int]:
    rollout = (obj.get("spec") or {}).get("rollout") or {}
    return list(rollout.get("steps") or DEFAULT_STEPS)


def strategy_of(obj: Obj) -> str | None:
    rollout = (obj.get("spec") or {}).get("rollout") or {}
    strategy = rollout.get("strategy")
    return str(strategy) if strategy else None


def steps_line(steps: Sequence[int], current: int | None) -> str:
    """10% -> [25%] -> 50% -> 100%: the canary's step in brackets."""
    parts = [f"{w}%" for w in steps] + ["100%"]
    if current is not None and 0 <= current < len(steps):
        parts[current] = f"[{parts[current]}]"
    return " -> ".join(parts)


def until(text: str | None, now: datetime) -> str:
    moment = parse_time(text)
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    return f"in {human_duration(seconds)} ({text})" if seconds > 0 else f"due ({text})"


def event_time(event: Obj) -> str | None:
    return (
        str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("firstTimestamp")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )
        or None
    )


def sorted_events(events: Iterable[Obj]) -> list[Obj]:
    return sorted(events, key=lambda e: parse_time(event_time(e)) or datetime.min.replace(tzinfo=UTC))


def arms(status: Obj) -> list[Obj]:
    """An Experiment's variants beyond B (status.canary.variants), while B is the canary."""
    if not status.get("canaryRevision"):
        return []
    return [a for a in (status.get("canary") or {}).get("variants") or [] if a.get("revision")]


def revision_rows(obj: Obj, deployments: Iterable[Obj]) -> list[list[str]]:
    status = obj.get("status") or {}
    weights = {t.get("revision"): t.get("percent", 0) for t in status.get("traffic") or []}
    roles: dict[Any, str] = {
        status.get("stableRevision"): "stable",
        status.get("canaryRevision"): "canary",
        status.get("failedRevision"): "failed",
    }
    order: dict[str, int] = {"stable": 0, "canary": 1}
    for i, arm in enumerate(arms(status)):
        role = f"{'stopped' if arm.get('stopped') else 'variant'} {arm.get('name', '')}"
        roles.setdefault(arm["revision"], role)
        order[role] = 2 + i
    order.update({"failed": 2 + len(order), "old": 3 + len(order)})
    rows: dict[str, list[str]] = {}
    for d in deployments:
        revision = ((d.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL)
        if not revision:
            continue
        spec, dstatus = d.get("spec") or {}, d.get("status") or {}
        ready = f"{dstatus.get('readyReplicas') or 0}/{spec.get('replicas', 0)}"
        rows[revision] = [
            revision,
            roles.get(revision, "old"),
            f"{weights.get(revision, 0)}%",
            ready,
            d["metadata"].get("name", ""),
        ]
    for revision, role in roles.items():
        if revision and revision not in rows and role != "failed" and not role.startswith("stopped "):
            rows[revision] = [revision, role, f"{weights.get(revision, 0)}%", "-", "(no Deployment)"]
    return sorted(rows.values(), key=lambda r: (order.get(r[1], 99), r[0]))


WIDTH = 120  # what `get` keeps to: the experiment's tables and statements


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{format(ratio * 100, '.6g')}%"


def millis(value: float | None) -> str:
    return "-" if value is None else f"{number(value)} ms"


def wrapped(text: str, first: str, rest: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [
        first.rstrip()
    ]


def experiment_state(experiment: Obj, now: datetime) -> str:
    """Where the experiment stands, in a few words: running and for how long yet, concluded
    and held, or ended and how."""
    winner = experiment.get("winner")
    if experiment.get("ended"):
        return f"ended, winner {winner}" if winner else "ended without a winner"
    if not experiment.get("startedAt"):
        return "not started"
    ends = parse_time(experiment.get("endsAt"))
    if experiment.get("concluded"):
        ago = f" {human_duration((now - ends).total_seconds())} ago" if ends else ""
        return f"concluded{ago}: held until a pick (promote picks B or a variant, abort picks A)"
    if ends is None:
        return "running"
    left = (ends - now).total_seconds()
    return f"running, ends in {human_duration(left)}" if left > 0 else "running, ends now"


def experiment_lines(status: Obj, now: datetime) -> list[str]:
    """The experiment block of `get`: its window and state, each variant's figures (custom
    metrics in more tables where one would pass 120 columns) and the comparisons with A."""
    experiment = status.get("experiment") or {}
    window = f"{_dash(experiment.get('startedAt'))} .. {_dash(experiment.get('endsAt'))}"
    if experiment.get("resultsAt"):
        window += f" (figures to {experiment['resultsAt']})"
    lines = [
        f"Experiment:      {experiment_state(experiment, now)}",
        f"Window:          {window}",
    ]
    if experiment.get("winner"):
        lines.append(f"Winner:          {experiment['winner']}")
    if experiment.get("message"):
        lines.append(f"Note:            {experiment['message']}")
    for problem in experiment.get("problems") or []:
        lines.append(f"Problem:         {problem}")
    variants = list(experiment.get("variants") or [])
    # status.experiment keeps `stopped` after B is gone; status.canary.variants says it while B runs.
    stopped = {a.get("name") for a in arms(status) if a.get("stopped")} | {
        v.get("name") for v in variants if v.get("stopped")
    }
    if variants:
        names = [
            f"{v.get('name', '')} (stopped)" if v.get("name") in stopped else str(v.get("name", "")) for v in variants
        ]
        base = [
            [
                name,
                _dash(v.get("revision")),
                f"{v.get('weight', 0)}%",
                _dash(v.get("requests")),
                percent(v.get("successRate")),
                millis(v.get("meanLatencyMs")),
            ]
            for name, v in zip(names, variants, strict=True)
        ]
        header = ["VARIANT", "REVISION", "WEIGHT", "REQUESTS", "SUCCESS", "MEAN LATENCY"]
        metrics: list[str] = []
        for v in variants:
            metrics += [m for m in v.get("metrics") or {} if m not in metrics]
        column = {m: [number((v.get("metrics") or {}).get(m)) for v in variants] for m in metrics}
        one = table([*header, *metrics], [[*row, *(column[m][i] for m in metrics)] for i, row in enumerate(base)])
        lines.append("")
        if max(len(line) for line in one) <= WIDTH:
            lines += one
        else:
            lines += table(header, base)
            lines += metric_tables(names, metrics, column)
    comparison = experiment.get("comparison") or []
    if comparison:
        lines.append("")
        for c in comparison:
            lines += wrapped(str(c.get("statement", "")), "- ", "  ")
    elif variants and experiment.get("startedAt"):
        lines += ["", "No comparison (too little data)."]
    return lines


def metric_tables(names: Sequence[str], metrics: Sequence[str], column: Mapping[str, Sequence[str]]) -> list[str]:
    """Custom metrics by variant, in as few tables as keep each within WIDTH columns."""
    lines: list[str] = []
    chunk: list[str] = []

    def flush() -> None:
        if chunk:
            lines.append("")
            lines.extend(table(["VARIANT", *chunk], [[n, *(column[m][i] for m in chunk)] for i, n in enumerate(names)]))
            chunk.clear()

    first = max(len(n) for n in [*names, "VARIANT"])
    used = first
    for m in metrics:
        width = 3 + max(len(m), *(len(v) for v in column[m]))
        if chunk and used + width > WIDTH:
            flush()
            used = first
        chunk.append(m)
        used += width
    flush()
    return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def stopped(arm: Obj) -> str:
    """Why a variant was stopped, as the operator says it ("stopped after 3 failed checks: ...")."""
    why = str(arm.get("stopped") or "")
    return why if why.startswith("stopped") else f"stopped ({why})"


def variants_line(variants: Iterable[Obj]) -> str:
    """The variants beyond B in one line: weight and failed checks, or why one was stopped."""
    return ", ".join(
        f"{a.get('name', '')} {stopped(a)}"
        if a.get("stopped")
        else f"{a.get('name', '')} {a.get('weight', 0)}% ({plural(a.get('failedChecks', 0), 'failed check')})"
        for a in variants
    )


def get_lines(obj: Obj, deployments: Iterable[Obj], events: Iterable[Obj], now: datetime) -> list[str]:
    """`get`/`watch`: the rollout at a glance, like `kubectl argo rollouts get rollout`."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    canary_rev = status.get("canaryRevision")
    canary = status.get("canary") or {}
    paused = bool(((obj.get("spec") or {}).get("rollout") or {}).get("paused"))
    lines = [
        f"Name:            {meta.get('name', '')}",
        f"Namespace:       {meta.get('namespace', '')}",
        f"Phase:           {_dash(status.get('phase'))}" + ("  (paused)" if paused else ""),
    ]
    if status.get("message"):
        lines.append(f"Message:         {status['message']}")
    lines += [
        f"Stable:          {_dash(status.get('stableRevision'))}",
        f"Canary:          {_dash(canary_rev)}",
    ]
    if status.get("failedRevision"):
        lines.append(f"Failed:          {status['failedRevision']}")
    steps = steps_of(obj)
    experiment = strategy_of(obj) == "Experiment"
    if experiment:
        lines.append("Strategy:        Experiment (one split, held until a pick)")
    if canary_rev:
        step = int(canary.get("step", 0))
        if not experiment:
            lines += [f"Step:            {step + 1}/{len(steps)}", f"Steps:           {steps_line(steps, step)}"]
        lines += [
            f"Weight:          {canary.get('weight', 0)}%",
            f"Waiting for:     {_dash(canary.get('waitingFor'))}",
            f"Failed checks:   {canary.get('failedChecks', 0)}",
            f"Next analysis:   {until(canary.get('nextAnalysisAt'), now)}",
            f"Started:         {_dash(canary.get('startedAt'))}",
        ]
        if arms(status):
            lines.append(f"Variants:        {variants_line(arms(status))}")
        if canary.get("ignoredAnnotations"):
            lines.append(f"Ignored:         {', '.join(canary['ignoredAnnotations'])} (stale annotations)")
    elif not experiment:
        lines.append(f"Steps:           {steps_line(steps, None)}")
    lines.append("")
    lines += table(["REVISION", "ROLE", "WEIGHT", "READY", "DEPLOYMENT"], revision_rows(obj, deployments))
    if status.get("experiment"):
        lines.append("")
        lines += experiment_lines(status, now)
    checks = canary.get("lastAnalysis") or [] if canary_rev else []
    if checks:
        lines.append("")
        lines += table(
            ["CHECK", "RESULT", "VALUE", "BOUND", "MESSAGE"],
            [
                [
                    c.get("name", ""),
                    c.get("result", ""),
                    number(c.get("value")),
                    _dash(c.get("bound")),
                    c.get("message", ""),
                ]
                for c in checks
            ],
        )
    recent = sorted_events(events)[-8:]
    lines.append("")
    if recent:
        lines += table(
            ["AGE", "TYPE", "REASON", "MESSAGE"],
            [[age(event_time(e), now), e.get("type", ""), e.get("reason", ""), e.get("message", "")] for e in recent],
        )
    else:
        lines.append("No events.")
    return lines


def history_lines(obj: Obj, events: Iterable[Obj], now: datetime) -> list[str]:
    """What status keeps (stable, canary, the last failed revision and why) and the rollout
    Events, oldest first (the API server keeps Events about an hour by default)."""
    status = obj.get("status") or {}
    lines = [
        f"Stable:   {_dash(status.get('stableRevision'))}",
        f"Canary:   {_dash(status.get('canaryRevision'))}",
        f"Failed:   {_dash(status.get('failedRevision'))}",
    ]
    if status.get("message"):
        lines.append(f"Message:  {status['message']}")
    lines.append("")
    rollout = [e for e in sorted_events(events) if e.get("reason") in HISTORY_REASONS]
    if not rollout:
        lines.append("No rollout events recorded (Events expire, by default after an hour).")
        return lines
    lines += table(
        ["TIME", "AGE", "REASON", "MESSAGE"],
        [[_dash(event_time(e)), age(event_time(e), now), e.get("reason", ""), e.get("message", "")] for e in rollout],
    )
    return lines
