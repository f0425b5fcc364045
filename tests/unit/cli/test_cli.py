"""The `tritonop` command line as a user runs it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tritonop.api.crd import crd_yaml

REPO = Path(__file__).resolve().parents[3]


def tritonop(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tritonop", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_render_prints_the_children_of_an_example() -> None:
    result = tritonop("render", "-f", str(REPO / "manifests/examples/canary-gateway-api.yaml"))
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert "Deployment" in kinds and "Service" in kinds and "HTTPRoute" in kinds


def test_render_reads_stdin_and_honours_the_default_image() -> None:
    isvc = "apiVersion: serving.tritonop.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: a}\n" \
           "spec: {model: {storageUri: 's3://b/r'}}\n"
    result = tritonop("render", "-f", "-", "--triton-image", "example.com/triton:1", stdin=isvc)
    assert result.returncode == 0, result.stderr
    deployment = next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/triton:1"


def test_render_of_an_invalid_spec_is_one_line_and_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: serving.tritonop.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: bad}\n"
        "spec: {model: {storageUri: 's3://b/r'}, rollout: {steps: [50, 10]}}\n"
    )
    result = tritonop("render", "-f", str(bad))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "bad" in result.stderr and "strictly increasing" in result.stderr


def test_render_of_a_missing_file_or_broken_yaml_is_one_line(tmp_path: Path) -> None:
    for path, text in ((tmp_path / "missing.yaml", None), (tmp_path / "broken.yaml", "spec: [unclosed")):
        if text is not None:
            path.write_text(text)
        result = tritonop("render", "-f", str(path))
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_crd_prints_the_generated_crd() -> None:
    result = tritonop("crd")
    assert result.returncode == 0 and result.stdout == crd_yaml()


def test_render_refuses_what_the_api_server_refuses(tmp_path: Path) -> None:
    """`tritonop render` validates like admission: no lax coercion of "1", and names that make Services."""
    for name, spec, needle in [
        ("bad", "{model: {storageUri: 's3://b/r'}, triton: {gpus: '1'}}", "spec.triton.gpus: must be a valid integer"),
        ("my.model", "{model: {storageUri: 's3://b/r'}}", "must be a DNS-1035 label"),
        ("slow", "{model: {storageUri: 's3://b/r'}, rollout: {interval: 9999999999h}}", "spec.rollout.interval"),
    ]:
        path = tmp_path / "isvc.yaml"
        path.write_text(
            f"apiVersion: serving.tritonop.dev/v1alpha1\nkind: InferenceService\nmetadata: {{name: '{name}'}}\nspec: {spec}\n"
        )
        result = tritonop("render", "-f", str(path))
        assert result.returncode == 1 and result.stdout == "", result.stderr
        assert needle in result.stderr and result.stderr.count("\n") == 1
