"""The test-support module itself, against real tritonserver: what other suites build on."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.triton import TritonServer, write_model

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT_S = 60.0


def infer(server: TritonServer, model: str, values: list[float]) -> tuple[int, dict]:
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [len(values)], "data": values}]}
    request = urllib.request.Request(f"{server.http_url}/v2/models/{model}/infer", data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def metric_total(server: TritonServer, name: str, model: str) -> float:
    """Sum of ``name`` over all series of ``model`` (failures carry an extra reason label)."""
    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + "{") and f'model="{model}"' in line
    )


def session_members(session_id: int) -> list[int]:
    """PIDs whose session is ``session_id`` (field 6 of /proc/PID/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == session_id:
            members.append(int(stat.parent.name))
    return members


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    repo = tmp_path_factory.mktemp("repo")
    write_model(repo, "quarter", failure_rate=0.25, scale=0.5)
    write_model(repo, "seeded", failure_rate=0.5, seed=7)
    write_model(repo, "slow", delay_ms=50)
    with TritonServer(repo, ["quarter", "seeded", "slow"]) as server:
        assert server.wait_ready(STARTUP_TIMEOUT_S), server.recent_output()
        yield server


def test_failure_rate_fails_an_exact_share_and_triton_counts_it(server: TritonServer) -> None:
    outcomes = [infer(server, "quarter", [4.0]) for _ in range(8)]
    assert [status for status, _ in outcomes] == [200, 200, 200, 500] * 2
    assert outcomes[0][1]["outputs"][0]["data"] == [2.0]  # scale 0.5
    assert "injected failure" in outcomes[3][1]["error"]
    assert metric_total(server, "nv_inference_request_failure", "quarter") == 2
    assert metric_total(server, "nv_inference_request_success", "quarter") == 6


def test_seeded_failures_follow_the_seed(server: TritonServer) -> None:
    rng = random.Random(7)
    expected = [500 if rng.random() < 0.5 else 200 for _ in range(10)]
    assert [infer(server, "seeded", [1.0])[0] for _ in range(10)] == expected


def test_delay_is_spent_inside_the_model(server: TritonServer) -> None:
    for _ in range(3):
        assert infer(server, "slow", [1.0])[0] == 200
    # Triton's own compute time covers the sleeps: at least 3 x 50 ms.
    assert metric_total(server, "nv_inference_compute_infer_duration_us", "slow") >= 150_000


def test_without_exit_on_error_false_a_failing_model_stops_the_server(tmp_path: Path) -> None:
    write_model(tmp_path, "broken", fail_load=True)
    with TritonServer(tmp_path, ["broken"], exit_on_error=True) as server:
        assert not server.wait_live(STARTUP_TIMEOUT_S)
        assert server.returncode not in (None, 0)
        assert "failed to load" in server.recent_output()


def test_stop_ends_the_server_and_its_backend_stubs(tmp_path: Path) -> None:
    write_model(tmp_path, "doubler")
    with TritonServer(tmp_path, ["doubler"]) as server:
        assert server.wait_ready(STARTUP_TIMEOUT_S), server.recent_output()
        assert server.pid is not None
        assert len(session_members(server.pid)) >= 2  # the server and its Python-backend stub
        server.stop()
        assert server.returncode is not None
        assert session_members(server.pid) == []
    assert not server.log_path.exists()
