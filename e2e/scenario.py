"""The end-to-end scenario's pieces, shared by the local harness and the real-cluster scripts.

- Model variants: one Triton model repository per variant under a model root, all serving
  the same model name; a rollout is a change of ``storageUri`` from one variant to another.
- Profiles: rollout timings, short for the local harness, longer on a real cluster.
- The InferenceService manifest: ``e2e/manifests/inferenceservice.yaml`` with the run's
  name, namespace, variant and profile filled in.

Command line (the kind scripts use it, so both paths run the same objects)::

    python -m e2e.scenario models DIR
    python -m e2e.scenario manifest --variant v2 --model-root /models [--profile cluster]
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.triton import write_model

MODEL_NAME = "classifier"
MANIFEST = Path(__file__).parent / "manifests" / "inferenceservice.yaml"


@dataclass(frozen=True)
class Variant:
    """One model repository: the test model with a given behaviour."""

    description: str
    scale: float = 2.0
    failure_rate: float = 0.0
    delay_ms: float = 0.0
    fail_load: bool = False


VARIANTS: dict[str, Variant] = {
    "v1": Variant("healthy, OUTPUT0 = 2 x INPUT0", scale=2.0),
    "v2": Variant("healthy, OUTPUT0 = 3 x INPUT0", scale=3.0),
    "v3": Variant("fails 30% of requests", scale=3.0, failure_rate=0.3),
    "slow": Variant("healthy but sleeps 120 ms per request", scale=3.0, delay_ms=120.0),
    "broken": Variant("fails to load (never ready)", fail_load=True),
}


@dataclass(frozen=True)
class Profile:
    """Rollout timings for one environment."""

    steps: tuple[int, ...]
    interval: str
    failure_threshold: int
    readiness_timeout: str
    min_requests: int
    no_data_timeout: str
    success_rate_min: float = 0.95
    latency_max_ms: float = 100.0
    # interval: judged once per interval from Prometheus, as before issue 14; the sequential
    # e2e test and the bench's sequential side set "sequential" (the API's default).
    analysis_mode: str = "interval"

    def rollout(self) -> dict[str, Any]:
        """The spec.rollout fields this profile sets."""
        return {
            "steps": list(self.steps),
            "interval": self.interval,
            "failureThreshold": self.failure_threshold,
            "readinessTimeout": self.readiness_timeout,
            "analysis": {
                "mode": self.analysis_mode,
                "successRate": {"min": self.success_rate_min},
                "latency": {"maxMs": self.latency_max_ms},
                "minRequests": self.min_requests,
                "noDataTimeout": self.no_data_timeout,
            },
        }


PROFILES: dict[str, Profile] = {
    # Local: Prometheus scrapes every second and the router sends ~30 requests/s, so a
    # 6 s window holds ~36 canary requests at 20%.
    "local": Profile(
        steps=(20, 50),
        interval="6s",
        failure_threshold=2,
        readiness_timeout="60s",
        min_requests=10,
        no_data_timeout="30s",
    ),
    # A real cluster: scrapes every 5 s, pods take longer to schedule and pull.
    "cluster": Profile(
        steps=(20, 50),
        interval="30s",
        failure_threshold=2,
        readiness_timeout="10m",
        min_requests=20,
        no_data_timeout="2m",
    ),
}


def write_variant(root: Path, name: str, folder: str | None = None) -> Path:
    """Write variant ``name``'s model repository to ``root/folder`` (default ``root/name``).

    Another folder with the same variant is another revision with the same behaviour
    (the storageUri differs), which is how repeated runs roll out "the same" change.
    """
    variant = VARIANTS[name]
    repository = root / (folder or name)
    write_model(
        repository,
        MODEL_NAME,
        scale=variant.scale,
        failure_rate=variant.failure_rate,
        delay_ms=variant.delay_ms,
        fail_load=variant.fail_load,
    )
    return repository


def write_variants(root: Path, names: Sequence[str] = tuple(VARIANTS)) -> dict[str, Path]:
    """Write each named variant's model repository under ``root``; variant -> repository folder."""
    return {name: write_variant(root, name) for name in names}


def inference_service(
    *,
    variant: str,
    model_root: Path | str,
    profile: Profile,
    name: str | None = None,
    namespace: str | None = None,
    gateway_namespace: str | None = None,
    folder: str | None = None,
) -> dict[str, Any]:
    """The scenario's InferenceService serving ``variant`` from ``model_root``, timed by ``profile``.

    ``folder`` names the repository folder when it is not the variant's own (see write_variant).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    obj = copy.deepcopy(yaml.safe_load(MANIFEST.read_text()))
    meta, spec = obj["metadata"], obj["spec"]
    meta["name"] = name or meta["name"]
    meta["namespace"] = namespace or meta["namespace"]
    spec["model"]["storageUri"] = f"file://{Path(model_root, folder or variant)}"
    spec["rollout"] = profile.rollout()
    for parent in spec["traffic"]["gateway"]["parentRefs"]:
        parent["namespace"] = gateway_namespace or meta["namespace"]
    return obj


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.scenario", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="write every variant's model repository under DIR")
    models.add_argument("root", type=Path)
    manifest = sub.add_parser("manifest", help="print the InferenceService for one variant")
    manifest.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    manifest.add_argument("--model-root", required=True, help="where the variants' folders are, as the node sees it")
    manifest.add_argument("--profile", default="cluster", choices=sorted(PROFILES))
    manifest.add_argument("--name")
    manifest.add_argument("--namespace")
    args = parser.parse_args(argv)
    if args.command == "models":
        for variant, repository in write_variants(args.root).items():
            print(f"{variant}: {repository} ({VARIANTS[variant].description})")
        return 0
    obj = inference_service(
        variant=args.variant,
        model_root=args.model_root,
        profile=PROFILES[args.profile],
        name=args.name,
        namespace=args.namespace,
    )
    sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
