"""The traffic, autoscaling and monitoring providers' real CRDs, for the real API server.

``scripts/fetch-crds`` takes them from each provider's own Go module (``go mod download``)
into ``${TRITONOP_CACHE:-~/.cache/tritonop}/crds/<short-name>-<version>/``. This module
names the same pins (``PROVIDER_CRDS``), finds the files, and installs them on a
``ControlPlane``::

    with ControlPlane() as cp:
        install_provider_crds(cp)  # HTTPRoute, GRPCRoute, VirtualService, ScaledObject, ...

Missing files skip the calling test, unless ``TRITONOP_REQUIRE_TOOLS=1`` (CI), where it
fails naming ``scripts/fetch-crds``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.control_plane import REPO_ROOT, ControlPlane, _require

__all__ = [
    "FETCH_COMMAND",
    "PROVIDER_CRDS",
    "ProviderCRDs",
    "install_provider_crds",
    "provider_crd_dir",
    "provider_crd_files",
    "provider_crd_names",
]

FETCH_SCRIPT = REPO_ROOT / "scripts" / "fetch-crds"
FETCH_COMMAND = "scripts/fetch-crds"


@dataclass(frozen=True)
class ProviderCRDs:
    short_name: str  # the cache folder is <short_name>-<version>
    module: str
    version: str
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.short_name}-{self.version}"


# Keep in step with PINS in scripts/fetch-crds (test_provider_crds checks `--list`).
PROVIDER_CRDS: tuple[ProviderCRDs, ...] = (
    ProviderCRDs(
        "gateway-api",
        "sigs.k8s.io/gateway-api",
        "v1.6.3",
        (
            "gateway.networking.k8s.io_gatewayclasses.yaml",
            "gateway.networking.k8s.io_gateways.yaml",
            "gateway.networking.k8s.io_httproutes.yaml",
            "gateway.networking.k8s.io_grpcroutes.yaml",
            "gateway.networking.k8s.io_referencegrants.yaml",
        ),
    ),
    ProviderCRDs(
        "istio",
        "istio.io/api",
        "v1.32.0",
        (
            "virtualservices.networking.istio.io.yaml",
            "destinationrules.networking.istio.io.yaml",
            "gateways.networking.istio.io.yaml",
        ),
    ),
    ProviderCRDs(
        "keda",
        "github.com/kedacore/keda/v2",
        "v2.21.0",
        ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"),
    ),
    ProviderCRDs(
        "prometheus-operator",
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_servicemonitors.yaml"),
    ),
)


def provider_crd_dir() -> Path:
    """Where scripts/fetch-crds puts the CRDs ($TRITONOP_CRD_DIR overrides)."""
    override = os.environ.get("TRITONOP_CRD_DIR")
    if override:
        return Path(override)
    out = subprocess.run(
        ["bash", str(FETCH_SCRIPT), "--print-dir"], capture_output=True, text=True, check=True, timeout=30
    )
    return Path(out.stdout.strip())


def provider_crd_files() -> list[Path]:
    """Every pinned CRD file; skips (or fails, with TRITONOP_REQUIRE_TOOLS=1) when any is missing."""
    root = provider_crd_dir()
    files = [root / pin.folder / name for pin in PROVIDER_CRDS for name in pin.files]
    missing = [str(path.relative_to(root)) for path in files if not path.is_file()]
    if missing:
        _require(
            f"provider CRDs not fetched ({', '.join(missing)} missing in {root}): "
            f"run `{FETCH_COMMAND}` (needs Go and the Go module proxy)"
        )
    return files


def provider_crd_names() -> list[str]:
    """The metadata.name of every pinned CRD (e.g. httproutes.gateway.networking.k8s.io)."""
    names = []
    for path in provider_crd_files():
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "CustomResourceDefinition", f"{path} is not a CRD"
        names.append(str(doc["metadata"]["name"]))
    return names


def install_provider_crds(cp: ControlPlane, timeout: float = 90.0) -> list[str]:
    """Server-side apply every pinned provider CRD on ``cp`` and wait until each is
    Established; returns their names. Applying again is harmless."""
    files = provider_crd_files()
    names = provider_crd_names()
    args = [arg for path in files for arg in ("-f", str(path))]
    cp.kubectl("apply", "--server-side", "--force-conflicts", *args, timeout=timeout)
    cp.kubectl(
        "wait",
        "--for=condition=Established",
        *(f"crd/{name}" for name in names),
        f"--timeout={int(timeout)}s",
        timeout=timeout + 30,
    )
    return names
