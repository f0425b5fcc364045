"""What the operator stores in status, read back from the API server as users see it."""

from __future__ import annotations

import pytest

from e2e.local.harness import LocalStack
from e2e.local.stages import deploy, wait_for_weight

pytestmark = [pytest.mark.slow, pytest.mark.triton, pytest.mark.prometheus]


async def test_a_canary_past_its_gate_no_longer_shows_what_it_waited_for(stack: LocalStack) -> None:
    await deploy(stack, "v1")
    await stack.apply(stack.inference_service("v2"))
    await stack.wait_until(lambda: (stack.status().get("canary") or {}).get("waitingFor"), 30, "the gate")
    status = await wait_for_weight(stack, 20)
    assert "waitingFor" not in status["canary"], status["canary"]
