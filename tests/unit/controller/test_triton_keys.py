"""The operator secret and the per-InferenceService key Secret the controller writes (never reads)."""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.controller_harness import NAME, NAMESPACE, UID, Harness, model_spec
from tritonop.children import IsvcRef
from tritonop.children.triton_key import derive_key
from tritonop.config import OperatorConfig
from tritonop.controller.triton_keys import MIN_SECRET_CHARS, TritonKeys, read_operator_secret

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET_NAME = f"{NAME}-triton-key"
REF = IsvcRef(name=NAME, namespace=NAMESPACE, uid=UID)


def secret_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secret"
    path.write_text(text)
    return path


def test_the_secret_file_is_read_stripped(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "s" * MIN_SECRET_CHARS + "\n")
    assert read_operator_secret(str(path)) == b"s" * MIN_SECRET_CHARS
    keys = TritonKeys.from_config(OperatorConfig(api_key_secret_file=str(path)))
    assert keys.key_for(REF) == derive_key(b"s" * MIN_SECRET_CHARS, UID)


def test_no_file_or_a_missing_file_means_no_secret(tmp_path: Path) -> None:
    assert read_operator_secret(None) is None
    assert read_operator_secret(str(tmp_path / "absent")) is None


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        read_operator_secret(str(secret_file(tmp_path, "short\n")))


def test_without_a_secret_the_operator_runs_on_a_random_one_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tritonop"):
        first, second = TritonKeys.from_config(OperatorConfig()), TritonKeys.from_config(OperatorConfig())
    assert first.key_for(REF) != second.key_for(REF)
    assert "keys change whenever the operator restarts" in caplog.text
    for keys in (first, second):
        assert keys.secret.decode() not in caplog.text
        assert keys.secret.decode() not in repr(keys) and keys.key_for(REF) not in repr(keys)


def test_run_refuses_a_broken_secret_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tritonop", "run", "--api-key-secret-file", str(secret_file(tmp_path, "short"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "at least 32 are needed" in result.stderr and "short" not in result.stderr.replace(str(tmp_path), "")


# ---------------------------------------------------------------- the key Secret, through the controller


def key_of(h: Harness) -> str:
    secret = h.kube.of_kind("Secret")[SECRET_NAME]
    return base64.b64decode(secret["data"]["key"]).decode()


def secret_calls(h: Harness) -> list[str]:
    return [c.verb for c in h.kube.calls if c.kind == "Secret"]


async def test_the_key_secret_is_written_before_the_deployment_and_never_read(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "k" * 40)
    h = Harness(T0, config=OperatorConfig(triton_image="tritonserver:test", api_key_secret_file=str(path)))
    h.apply(model_spec())
    await h.reconcile()
    await h.tick()
    assert h.status()["phase"] == "Ready"
    secret = h.kube.of_kind("Secret")[SECRET_NAME]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == UID
    assert key_of(h) == derive_key(b"k" * 40, UID)
    verbs = [(c.verb, c.kind) for c in h.kube.calls if c.verb in ("create", "apply")]
    assert verbs.index(("create", "Secret")) < verbs.index(("apply", "Deployment"))  # children: apply-on-create
    assert secret_calls(h) == ["create"]  # once per process: later reconciles write nothing


async def test_a_restart_takes_409_as_done_and_resume_applies_the_current_key() -> None:
    h = Harness(T0)  # no secret file: each controller ("process") has its own random secret
    h.apply(model_spec())
    await h.reconcile()
    await h.tick()
    first_key = key_of(h)
    h.controller = h.new_controller()
    await h.reconcile()
    assert secret_calls(h) == ["create", "create"]  # the second answered 409 AlreadyExists
    assert key_of(h) == first_key
    h.controller = h.new_controller()
    await h.reconcile(force=True)  # resume
    assert secret_calls(h) == ["create", "create", "create", "apply"]
    assert key_of(h) == h.controller.children.keys.key_for(REF) != first_key
    assert h.status()["phase"] == "Ready"
