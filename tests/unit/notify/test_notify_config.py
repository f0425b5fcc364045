"""The notifications file: sinks, reason filters, and one-line errors that never show a URL."""

from __future__ import annotations

import pytest

from tritonop.notify.config import ALL_REASONS, DEFAULT_REASONS, ConfigError, load_config, parse_config

SECRET_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def test_a_plain_list_with_defaults() -> None:
    config = parse_config(f"- type: slack\n  url: {SECRET_URL}\n")
    (sink,) = config.sinks
    assert sink.name == "slack-0" and sink.type == "slack" and sink.url == SECRET_URL
    assert sink.reasons == frozenset(DEFAULT_REASONS)
    assert config.cluster is None
    assert SECRET_URL not in repr(sink)


def test_a_mapping_with_cluster_and_json() -> None:
    text = (
        '{"cluster": "prod-eu", "sinks": [{"name": "ops", "type": "webhook", "url": "http://hook.local/x",'
        ' "reasons": ["CanaryStep", "AnalysisNoData"], "timeoutSeconds": 2.5, "maxAttempts": 3, "queueSize": 7}]}'
    )
    config = parse_config(text)
    (sink,) = config.sinks
    assert config.cluster == "prod-eu"
    assert sink.reasons == {"CanaryStep", "AnalysisNoData"}
    assert (sink.timeout_seconds, sink.max_attempts, sink.queue_size) == (2.5, 3, 7)


@pytest.mark.parametrize("reasons", ["'*'", "['*']", "[Promoted, '*']"])
def test_star_means_every_reason(reasons: str) -> None:
    (sink,) = parse_config(f"- {{type: teams, url: 'https://x.example/wf', reasons: {reasons}}}").sinks
    assert sink.reasons == frozenset(ALL_REASONS)


def test_the_filter() -> None:
    (sink,) = parse_config("- {type: webhook, url: 'http://h/', reasons: [RolledBack]}").sinks
    assert sink.wants("RolledBack")
    assert not sink.wants("Promoted") and not sink.wants("ChildConflict")


@pytest.mark.parametrize("text", ["", "null", "sinks: []", "[]"])
def test_empty_means_no_sinks(text: str) -> None:
    assert parse_config(text).sinks == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- {type: email, url: 'http://h/'}", "sinks[0].type: must be one of webhook, slack, teams"),
        ("- {type: slack}", "sinks[0].url: must be an http:// or https:// URL"),
        (f"- {{type: slack, url: 'ftp://{SECRET_URL[8:]}'}}", "sinks[0].url: must be an http"),
        ("- {type: slack, url: 'http://h/', reasons: [Promotd]}", "sinks[0].reasons: 'Promotd' is not one of"),
        ("- {type: slack, url: 'http://h/', reasons: []}", "sinks[0].reasons: must be a non-empty list"),
        ("- {type: slack, url: 'http://h/', colour: red}", "sinks[0]: unknown key(s) colour"),
        ("- {type: slack, url: 'http://h/', maxAttempts: 0}", "sinks[0].maxAttempts: must be an integer from 1"),
        ("- {type: slack, url: 'http://h/', timeoutSeconds: true}", "sinks[0].timeoutSeconds: must be a number"),
        ("- {type: slack, url: 'http://h/', name: a}\n- {type: teams, url: 'http://h/', name: a}", "'a' is used twice"),
        ("sinks: {type: slack}", "expected a list of sinks"),
        ("sink: []", "unknown key(s) sink"),
        ("[unclosed", "not YAML or JSON"),
        ("- just-a-url", "sinks[0]: expected a mapping"),
    ],
)
def test_errors_are_one_line_and_name_the_field(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert error in message
    assert "\n" not in message and "SECRET" not in message


def test_load_config_reports_a_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_config(tmp_path / "missing.yaml")


def test_experiment_and_shadow_events_can_be_subscribed_to() -> None:
    text = """
sinks:
  - name: lab
    type: webhook
    url: https://hooks.example/x
    reasons: [ShadowStarted, ExperimentConcluded, ExperimentDecided, VariantStopped]
"""
    assert parse_config(text).sinks[0].reasons == frozenset(
        {"ShadowStarted", "ExperimentConcluded", "ExperimentDecided", "VariantStopped"}
    )
