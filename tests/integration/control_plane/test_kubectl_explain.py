"""`kubectl explain` on a real API server prints the CRD's field descriptions and defaults.

kubectl explain reads the server's OpenAPI v3, which the API server builds from the
installed CRD: this checks that the descriptions survive that trip (and that the CRD with
them is still accepted). The schema has no `default` keywords (api/crd.py), so the
defaults kubectl prints are the "Default: ..." sentences of the descriptions.

Skipped when the binaries are not built (`scripts/build-control-plane`), failed instead
with TRITONOP_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.control_plane import ControlPlane, eventually
from tritonop.api.crd import generate_crd

pytestmark = pytest.mark.slow

CRD_NAME = "inferenceservices.serving.tritonop.dev"
SPEC = generate_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
ROLLOUT = SPEC["properties"]["rollout"]


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    """etcd and kube-apiserver only (explain needs no controllers), with the checked-in CRD Established."""
    with ControlPlane() as plane:
        plane.kubectl("apply", "--server-side", "-f", "crds/")
        eventually(lambda: plane.crd_established(CRD_NAME), f"{CRD_NAME} Established", timeout=60)
        yield plane


def _explain(cp: ControlPlane, *args: str) -> str:
    """kubectl explain, retried until the server's OpenAPI v3 publishes the CRD (it lags Established)."""

    def attempt() -> str | None:
        result = cp.kubectl("explain", *args, check=False)
        return result.stdout if result.returncode == 0 else None

    return eventually(attempt, f"kubectl explain {' '.join(args)}")


def _words(text: str) -> str:
    """Whitespace-normalised, so a description wrapped by kubectl compares with the schema's."""
    return re.sub(r"\s+", " ", text)


def test_explain_rollout_prints_descriptions_and_defaults(cp: ControlPlane) -> None:
    out = _explain(cp, "inferenceservice.spec.rollout")
    words = _words(out)
    assert "GROUP: serving.tritonop.dev" in words and "VERSION: v1alpha1" in words
    assert _words(ROLLOUT["description"]) in words
    for field in ("steps", "interval", "failureThreshold", "paused", "readinessTimeout", "analysis", "acceptance"):
        assert re.search(rf"^\s+{field}\s+<", out, re.MULTILINE), f"{field} missing:\n{out}"
        assert _words(ROLLOUT["properties"][field]["description"]) in words, field
    for default in ("Default: [10, 25, 50].", "Default: 1m.", "Default: 3.", "Default: false.", "Default: 10m."):
        assert default in words, f"{default} missing:\n{out}"


def test_explain_nested_field(cp: ControlPlane) -> None:
    words = _words(_explain(cp, "inferenceservice.spec.rollout.analysis.noDataTimeout"))
    assert "FIELD: noDataTimeout <string>" in words
    assert "Default: 5m." in words and "0s..24h" in words


def test_explain_recursive_lists_every_rollout_field(cp: ControlPlane) -> None:
    out = _explain(cp, "inferenceservice.spec.rollout", "--recursive")
    expected: list[str] = []

    def names(node: dict[str, object]) -> None:
        properties = node.get("properties") or (node.get("items") or {}).get("properties")  # type: ignore[union-attr]
        for name, sub in (properties or {}).items():  # type: ignore[union-attr]
            expected.append(name)
            names(sub)

    names(ROLLOUT)
    listed = re.findall(r"^\s+(\w+)\s+<", out, re.MULTILINE)
    assert sorted(set(listed)) == sorted(set(expected))
    assert len(listed) == len(expected)


def test_explain_status_and_pass_through_types(cp: ControlPlane) -> None:
    words = _words(_explain(cp, "inferenceservice.status.canary"))
    assert "Progress of the canary rollout" in words and "Default: 0." in words
    words = _words(_explain(cp, "inferenceservice.spec.triton.tolerations.operator"))
    assert "Exists (any value) or Equal" in words
