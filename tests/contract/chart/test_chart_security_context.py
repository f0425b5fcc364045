"""operator.allowUnrestrictedSecurityContext reaches the operator as --allow-unrestricted-security-context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.helm import helm_template, run_helm, template_args, the_object
from tritonop.cli import _parser, _run_config


def operator_args(values: dict[str, Any]) -> list[str]:
    deployment = the_object(helm_template(values), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    return args


@pytest.mark.parametrize("allow", [True, False])
def test_the_value_renders_the_flag_the_operator_reads(allow: bool) -> None:
    args = operator_args({"operator": {"allowUnrestrictedSecurityContext": allow}})
    assert ("--allow-unrestricted-security-context" in args) is allow
    config = _run_config(_parser().parse_args(args))
    assert config.allow_unrestricted_security_context is allow


def test_off_by_default() -> None:
    assert "--allow-unrestricted-security-context" not in operator_args({})


def test_the_schema_refuses_a_string(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("operator: {allowUnrestrictedSecurityContext: 'yes'}\n")
    result = run_helm(template_args(values_files=[values]))
    assert result.returncode != 0
    assert "allowUnrestrictedSecurityContext" in result.stderr
