"""The tritonop demo: a healthy canary is promoted, a broken one is rolled back.

    python -m e2e.local.demo [--workdir DIR]

Runs the real operator against a real kube-apiserver with the real controllers and
scheduler (built by scripts/build-control-plane), with every pod a real tritonserver, a real Prometheus judging the canary, and client traffic
split by the HTTPRoute's weights (see docs/e2e.md). Three stages:

1. deploy v1 (healthy) and wait until it is Ready;
2. roll out v2 (healthy): the canary goes through every step and is promoted;
3. roll out v3 (fails 30% of requests): the canary is rolled back, v2 keeps serving.

Exit status: 0 when everything happened as expected, 1 when something did not (the
summary says what), 2 when a prerequisite is missing (run scripts/setup).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from e2e.local.harness import NAME, NAMESPACE, LocalStack, StackError, StackSettings, local_stack
from e2e.local.progress import HEADER, LEGEND, ProgressPrinter, ServingWindows
from e2e.local.router import WindowStats
from e2e.local.stages import RolloutRecord, deploy, roll_out
from e2e.scenario import VARIANTS
from tests.support.control_plane import BINARIES, BUILD_COMMAND, control_plane_bin_dir
from tests.support.prometheus import PROMETHEUS_BINARY
from tests.support.triton import tritonserver_binary

# The broken variant fails this share of requests; the router must see about as many.
V3_FAILURE_RATE = VARIANTS["v3"].failure_rate


@dataclass(frozen=True)
class Check:
    """One expectation and whether it held."""

    what: str
    ok: bool
    detail: str = ""


def check_first_deploy(status: dict, served: WindowStats) -> list[Check]:
    revision = status.get("stableRevision")
    return [
        Check("v1 is Ready", status.get("phase") == "Ready", f"revision {revision}"),
        Check(
            "v1 serves 100% of traffic",
            status.get("traffic") == [{"revision": revision, "percent": 100}] and served.successes > 0,
            f"{served.successes}/{served.answered} requests succeeded in the last seconds",
        ),
    ]


def check_promotion(record: RolloutRecord, steps: Sequence[int], old_deployment_exists: bool) -> list[Check]:
    status, traffic = record.status, record.canary_traffic
    return [
        Check(
            "v2 canary started",
            record.canary is not None and "CanaryStarted" in record.reasons,
            f"revision {record.canary}",
        ),
        Check(
            f"v2 went through every step {list(steps)}",
            record.weights == list(steps) and record.reasons.count("CanaryStep") == len(steps),
            f"weights seen {record.weights}",
        ),
        Check(
            "v2 promoted",
            record.outcome == "Promoted"
            and status.get("stableRevision") == record.canary
            and status.get("phase") == "Ready",
            status.get("message", ""),
        ),
        Check(
            "v2 canary answered every request",
            traffic.requests > 0 and traffic.failures == 0 and traffic.unavailable == 0,
            f"{traffic.successes}/{traffic.requests} canary requests succeeded",
        ),
        Check("v1 removed after promotion", not old_deployment_exists, f"Deployment {NAME}-{record.stable_before}"),
    ]


def check_rollback(record: RolloutRecord, canary_replicas: int | None) -> list[Check]:
    status, traffic = record.status, record.canary_traffic
    failed_share = traffic.failures / traffic.requests if traffic.requests else 0.0
    return [
        Check(
            "v3 rolled back",
            record.outcome == "RolledBack" and status.get("phase") == "RolledBack",
            status.get("message", ""),
        ),
        Check(
            "v2 kept serving 100%",
            status.get("stableRevision") == record.stable_before
            and status.get("traffic") == [{"revision": record.stable_before, "percent": 100}],
            f"stable {status.get('stableRevision')}, traffic {status.get('traffic')}",
        ),
        Check(
            "v3 recorded as the failed revision, scaled to 0",
            status.get("failedRevision") == record.canary and canary_replicas == 0,
            f"failedRevision {status.get('failedRevision')}, replicas {canary_replicas}",
        ),
        Check(
            f"the router saw v3 fail about {V3_FAILURE_RATE:.0%} of requests",
            traffic.requests > 0 and abs(failed_share - V3_FAILURE_RATE) <= 0.15,
            f"{traffic.failures}/{traffic.requests} canary requests failed ({failed_share:.0%})",
        ),
    ]


async def run_demo(out: TextIO, workdir: Path | None) -> list[Check]:
    """Run the three stages, printing progress to ``out``; returns every check."""
    checks: list[Check] = []
    async with local_stack(workdir, StackSettings()) as stack:
        profile = stack.settings.profile
        say = _printer(out)
        say(
            f"stack up: kube-apiserver {stack.cluster.control_plane.url}, Prometheus {stack.prometheus.url}, logs in {stack.workdir}"
        )
        say(
            f"rollout: steps {list(profile.steps)}%, interval {profile.interval}, failureThreshold "
            f"{profile.failure_threshold}, successRate >= {profile.success_rate_min}, mean latency <= "
            f"{profile.latency_max_ms:g}ms; router: {stack.settings.request_rate:g} requests/s"
        )
        say(LEGEND)
        printer = ProgressPrinter(
            lambda: stack.status(),
            lambda: stack.events(),
            lambda window: _window_stats(stack, window),
            steps=len(profile.steps),
            out=out,
        )
        stop = asyncio.Event()
        progress = asyncio.create_task(printer.run(stop))

        def stage(title: str, table: bool = True) -> None:
            printer.poll()  # what happened up to now belongs to the previous stage
            say(f"\n== {title} ==")
            if table:
                say(HEADER)

        try:
            stage(f"1. deploy v1 ({VARIANTS['v1'].description})")
            status = await deploy(stack, "v1")
            await asyncio.sleep(2)  # let the router's view of v1 fill in
            checks += check_first_deploy(
                status, _window_stats(stack, 2.0).get(status["stableRevision"], WindowStats(0, 0, 0, None))
            )

            stage(f"2. roll out v2 ({VARIANTS['v2'].description}): expect promotion")
            promoted = await roll_out(stack, "v2")
            # The old revision goes once the promotion is stored (docs/rollout.md, "Safety").
            old_gone = await _eventually(lambda: stack.deployment(f"{NAME}-{promoted.stable_before}") is None)
            checks += check_promotion(promoted, profile.steps, not old_gone)

            stage(f"3. roll out v3 ({VARIANTS['v3'].description}): expect rollback")
            rolled_back = await roll_out(stack, "v3")
            await _eventually(
                lambda: (stack.deployment(f"{NAME}-{rolled_back.canary}") or {}).get("spec", {}).get("replicas") == 0
            )
            canary = stack.deployment(f"{NAME}-{rolled_back.canary}")
            checks += check_rollback(rolled_back, None if canary is None else canary["spec"].get("replicas"))
        finally:
            stop.set()
            await progress
        stage("summary", table=False)
        say(_timing("v2", promoted))
        say(_timing("v3", rolled_back))
    return checks


# When each revision first answered a request: its 503s from before (no ready pod yet) are not shown.
_serving = ServingWindows()


def _window_stats(stack: LocalStack, window_s: float) -> dict[str, WindowStats]:
    return dict(_serving.stats(stack.router.revisions(NAMESPACE, NAME), time.monotonic(), window_s))


async def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether ``check`` holds within ``timeout`` seconds (polled); the demo reports, never raises."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def _timing(label: str, record: RolloutRecord) -> str:
    took = record.canary_to_decision_s
    when = f" {took:.1f}s after the canary started" if took is not None else ""
    return f"  {label}: {record.outcome}{when}; canary traffic {record.canary_traffic.successes}/{record.canary_traffic.requests} ok"


def _printer(out: TextIO):
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return say


def missing_prerequisites() -> list[str]:
    missing = []
    bin_dir = control_plane_bin_dir()
    absent = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if absent:
        missing.append(f"{', '.join(absent)} in {bin_dir} (run {BUILD_COMMAND})")
    if shutil.which(os.environ.get("KUBECTL") or "kubectl") is None:
        missing.append("kubectl")
    if shutil.which("prometheus") is None and not Path(PROMETHEUS_BINARY).is_file():
        missing.append("prometheus (apt-get install prometheus)")
    try:
        tritonserver_binary()
    except FileNotFoundError as err:
        missing.append(f"tritonserver ({err})")
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.local.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep logs and model repositories here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s [%(name)s] %(message)s")
    out = sys.stdout
    missing = missing_prerequisites()
    if missing:
        print(f"demo: missing prerequisites: {', '.join(missing)}; run scripts/setup", file=sys.stderr)
        return 2
    print(
        "tritonop demo: the real operator, Triton, Prometheus, kube-apiserver, controllers and scheduler;"
        " a kubelet stand-in and an emulated gateway"
    )
    # Logs stay when the demo fails; a temporary workdir goes only when it passed.
    temporary = args.workdir is None
    if temporary:
        args.workdir = Path(tempfile.mkdtemp(prefix="tritonop-demo-"))
    logs = f"logs kept in {args.workdir} (operator-*.log; pods/*.log, one per tritonserver)"
    started = time.monotonic()
    try:
        checks = asyncio.run(run_demo(out, args.workdir))
    except StackError as err:
        print(f"\ndemo FAILED: {err}; {logs}", file=sys.stderr)
        return 1
    except BaseException:
        print(f"\ndemo FAILED; {logs}", file=sys.stderr)
        raise
    for check in checks:
        print(f"  [{'ok' if check.ok else 'FAILED'}] {check.what}" + (f": {check.detail}" if check.detail else ""))
    failed = [c for c in checks if not c.ok]
    took = time.monotonic() - started
    if failed:
        print(f"demo FAILED ({len(failed)} of {len(checks)} checks) in {took:.0f}s; {logs}", file=sys.stderr)
        return 1
    print(f"demo passed: {len(checks)} checks in {took:.0f}s")
    if temporary:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
