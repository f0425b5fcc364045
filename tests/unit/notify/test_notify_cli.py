"""`tritonop run --notifications-file`: an unusable file stops the operator at startup with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonop.cli import main


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            "- {type: slack, url: 'https://hooks.slack.com/services/SECRET', reasons: [Nope]}",
            "sinks[0].reasons: 'Nope'",
        ),
        ("- {type: pagerduty, url: 'https://x/'}", "sinks[0].type: must be one of webhook, slack, teams"),
        (None, "cannot read: No such file or directory"),
    ],
)
def test_a_bad_notifications_file_stops_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, error: str
) -> None:
    path = tmp_path / "notifications.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["run", "--notifications-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tritonop run: --notifications-file {path}: ") and error in err
    assert err.count("\n") == 1 and "SECRET" not in err
