"""notifications.enabled / secretName: an existing Secret mounted read-only as a directory (so
the kubelet updates it in place) and passed as --notifications-file; no Secret read via the API."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.helm import helm_template, run_helm, template_args, the_object
from tritonop.cli import _parser

MOUNT = "/etc/tritonop/notifications"


def operator_container(objects: list[dict]) -> tuple[dict, dict]:
    pod = the_object(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_off_by_default() -> None:
    pod, container = operator_container(helm_template())
    assert _parser().parse_args(container["args"]).notifications_file is None
    assert not [v for v in pod["volumes"] if v["name"] == "notifications"]


def test_enabled_mounts_the_secret_and_passes_the_flag() -> None:
    objects = helm_template({"notifications": {"enabled": True, "secretName": "rollout-hooks"}})
    pod, container = operator_container(objects)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "notifications"]
    assert volume["secret"] == {
        "secretName": "rollout-hooks",
        "items": [{"key": "notifications.yaml", "path": "notifications.yaml"}],
        "defaultMode": 0o440,
    }
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "notifications"]
    assert mount == {"name": "notifications", "mountPath": MOUNT, "readOnly": True}  # no subPath: updates in place
    assert _parser().parse_args(container["args"]).notifications_file == f"{MOUNT}/notifications.yaml"
    # The chart creates no Secret for it: the user brings it (the URLs are credentials).
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "rollout-hooks"]


def test_enabled_without_a_secret_name_fails_with_a_clear_message(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"notifications": {"enabled": True}}))
    result = run_helm(template_args(values_files=[values]))
    assert result.returncode != 0
    assert "notifications.secretName is required when notifications.enabled" in result.stderr


def test_the_schema_refuses_a_bad_secret_name(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"notifications": {"enabled": True, "secretName": "Hooks_1"}}))
    result = run_helm(template_args(values_files=[values]))
    assert result.returncode != 0 and "secretName" in result.stderr
