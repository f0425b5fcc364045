"""The notifications file: which sinks get which Event reasons.

A list of sinks, or a mapping with `sinks` and an optional `cluster` name:

    cluster: prod-eu
    sinks:
      - name: oncall
        type: slack                       # webhook | slack | teams
        url: https://hooks.slack.com/services/...
        reasons: [RolledBack, RolloutFailed]   # default: DEFAULT_REASONS; "*": all

The URLs are secrets: errors name the field, never the URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import yaml

SinkType = Literal["webhook", "slack", "teams"]
SINK_TYPES: tuple[SinkType, ...] = ("webhook", "slack", "teams")
# The rollout Events a sink may subscribe to ("Aborted" is a rollback by annotation).
ALL_REASONS: tuple[str, ...] = (
    "CanaryStarted",
    "CanaryStep",
    "Promoted",
    "RolledBack",
    "Aborted",
    "RolloutFailed",
    "AnalysisNoData",
    "ShadowStarted",
    "ExperimentStarted",
    "ExperimentConcluded",
    "ExperimentDecided",  # the abort annotation picked A (picking B posts Promoted)
    "VariantStopped",  # A/B/n: a variant beyond B failed its checks; the experiment goes on
    "PodWedged",  # InPlace: a pod whose Triton never became ready again is evicted
)
DEFAULT_REASONS: tuple[str, ...] = ("CanaryStarted", "Promoted", "RolledBack", "Aborted", "RolloutFailed")
SINK_KEYS = {"name", "type", "url", "reasons", "timeoutSeconds", "maxAttempts", "queueSize"}


class ConfigError(ValueError):
    """The notifications file is not valid; the message is one line and names no URL."""


@dataclass(frozen=True)
class SinkConfig:
    name: str
    type: SinkType
    url: str = field(repr=False)  # a secret: kept out of reprs and logs
    reasons: frozenset[str] = frozenset(DEFAULT_REASONS)
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    queue_size: int = 100

    def wants(self, reason: str) -> bool:
        return reason in self.reasons


@dataclass(frozen=True)
class NotificationsConfig:
    sinks: tuple[SinkConfig, ...] = ()
    cluster: str | None = None


def load_config(path: str | Path) -> NotificationsConfig:
    """Read and validate the file; ConfigError (one line) when it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}") from err
    return parse_config(text)


def parse_config(text: str) -> NotificationsConfig:
    try:
        doc = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as err:
        raise ConfigError(f"not YAML or JSON: {' '.join(str(err).split())}") from err
    if doc is None:
        return NotificationsConfig()
    cluster: str | None = None
    if isinstance(doc, Mapping):
        unknown = set(doc) - {"sinks", "cluster"}
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected sinks, cluster")
        raw_cluster = doc.get("cluster")
        if raw_cluster is not None and (not isinstance(raw_cluster, str) or not raw_cluster.strip()):
            raise ConfigError("cluster: must be a non-empty string")
        cluster = raw_cluster
        doc = doc.get("sinks") or []
    if not isinstance(doc, list):
        raise ConfigError("expected a list of sinks, or a mapping with `sinks`")
    sinks = tuple(_sink(f"sinks[{i}]", raw, i) for i, raw in enumerate(doc))
    names = [s.name for s in sinks]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"sink name {duplicate!r} is used twice; names label the metrics and must be unique")
    return NotificationsConfig(sinks=sinks, cluster=cluster)


def _sink(where: str, raw: object, index: int) -> SinkConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with type and url")
    item = cast(Mapping[str, Any], raw)
    unknown = set(item) - SINK_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    kind = item.get("type")
    if kind not in SINK_TYPES:
        raise ConfigError(f"{where}.type: must be one of {', '.join(SINK_TYPES)}, got {kind!r}")
    url = item.get("url")
    if not isinstance(url, str) or not _is_http_url(url.strip()):
        raise ConfigError(f"{where}.url: must be an http:// or https:// URL with a host (value not shown)")
    name = item.get("name", f"{kind}-{index}")
    if not isinstance(name, str) or not name.strip() or len(name) > 63:
        raise ConfigError(f"{where}.name: must be a non-empty string of at most 63 characters")
    return SinkConfig(
        name=name,
        type=cast(SinkType, kind),
        url=url.strip(),
        reasons=_reasons(f"{where}.reasons", item.get("reasons")),
        timeout_seconds=_number(f"{where}.timeoutSeconds", item.get("timeoutSeconds", 10.0), 0.1, 300),
        max_attempts=int(_number(f"{where}.maxAttempts", item.get("maxAttempts", 5), 1, 20, integer=True)),
        queue_size=int(_number(f"{where}.queueSize", item.get("queueSize", 100), 1, 10000, integer=True)),
    )


def _reasons(where: str, raw: object) -> frozenset[str]:
    if raw is None:
        return frozenset(DEFAULT_REASONS)
    if raw == "*":
        return frozenset(ALL_REASONS)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ConfigError(f"{where}: must be a non-empty list of reasons, or '*'")
    reasons: set[str] = set()
    for reason in raw:
        if reason == "*":
            reasons.update(ALL_REASONS)
        elif reason in ALL_REASONS:
            reasons.add(reason)
        else:
            raise ConfigError(f"{where}: {reason!r} is not one of {', '.join(ALL_REASONS)}, or '*'")
    return frozenset(reasons)


def _number(where: str, raw: object, low: float, high: float, *, integer: bool = False) -> float:
    ok_type = isinstance(raw, int) if integer else isinstance(raw, int | float)
    if isinstance(raw, bool) or not ok_type or not low <= cast(float, raw) <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: must be {kind} from {low:g} to {high:g}, got {raw!r}")
    return float(cast(float, raw))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def dumps(config: NotificationsConfig) -> str:
    """A redacted description for logs: names, types and reasons, never URLs."""
    return json.dumps(
        [{"name": s.name, "type": s.type, "reasons": sorted(s.reasons)} for s in config.sinks], sort_keys=True
    )
