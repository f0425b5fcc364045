"""How often switching a model's versions leaves tritonserver not ready for good: the reason
InPlace evicts a wedged pod (docs/rollout.md, "A wedged pod is evicted").

One real tritonserver (explicit model control, strict readiness) serves a Python-backend model
with versions 1 and 3, six clients sending requests that name no version the whole time.
Version 3 raises on a share of its requests (``--failure-rate``, default 0.3; 0 for a healthy
version). Each switch loads the other version the way the operator does (the union, then the
target, back to back) and then waits for Triton's own readiness for up to ``--wait`` seconds.
A switch after which the server is still not ready is "wedged"; the run stops there (a wedged
server stays so: a further load does not clear it) and prints what it saw.

    python -m bench.triton_unload_wedge [--switches 20] [--failure-rate 0.3] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.integration.triton.test_model_control import load_on
from tests.support.triton import TritonServer, expand_env_references, write_model
from tritonop.children.triton_key import KEY_ENV, restricted_api_args
from tritonop.rollout.in_place import next_load
from tritonop.triton.model_control import load_versions, ready_versions, server_ready

KEY = "bench-key"


async def one_run(switches: int, failure_rate: float, wait_s: float) -> tuple[int, int | None, list[float]]:
    """(switches done, the switch that wedged or None, seconds each took to be ready again)."""
    repo = Path(tempfile.mkdtemp(prefix="wedge-repo-"))
    write_model(
        repo,
        "m",
        versions=(1, 3),
        delay_ms=2,
        per_version={1: {"scale": 2.0}, 3: {"scale": 3.0, "failure_rate": failure_rate}},
    )
    restricted = expand_env_references(restricted_api_args(), {KEY_ENV: KEY})
    settle: list[float] = []
    with TritonServer(repo, ["m"], extra_args=restricted) as triton:
        assert triton.wait_ready(60), triton.recent_output()
        url = triton.http_url
        async with load_on(url, clients=6):
            ready: tuple[str, ...] = ("3",)  # the repository's policy: the latest
            for switch in range(switches):
                target = ("1",) if ready == ("3",) else ("3",)
                while (step := next_load(ready, target)) is not None:
                    await load_versions(url, "m", step, key=KEY)
                    ready = step
                start = time.monotonic()
                while await server_ready(url, key=KEY) is not True:
                    if time.monotonic() - start > wait_s:
                        held = await ready_versions(url, "m", key=KEY)
                        print(f"  switch {switch + 1}: not ready {wait_s:.0f} s after loading {target}; ready: {held}")
                        return switch + 1, switch + 1, settle
                    await asyncio.sleep(0.05)
                settle.append(time.monotonic() - start)
    return switches, None, settle


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--switches", type=int, default=20, help="switches per run (default 20)")
    parser.add_argument("--failure-rate", type=float, default=0.3, help="share of version 3's requests that raise")
    parser.add_argument("--runs", type=int, default=3, help="fresh servers (default 3)")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds a switch may take to be ready again")
    args = parser.parse_args()
    wedged = done = 0
    settles: list[float] = []
    for run in range(args.runs):
        switches, wedged_at, settle = await one_run(args.switches, args.failure_rate, args.wait)
        done += switches
        wedged += wedged_at is not None
        settles += settle
        outcome = f"wedged at switch {wedged_at}" if wedged_at else "never wedged"
        print(f"run {run + 1}: {switches} switches, {outcome}", flush=True)
    longest = f", ready again within {max(settles):.2f} s at most" if settles else ""
    print(f"failure rate {args.failure_rate}: {wedged} of {args.runs} servers wedged over {done} switches{longest}")


if __name__ == "__main__":
    asyncio.run(main())
