"""The layering docs/architecture.md describes, checked on the import graph (grimp)."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

GRAPH = grimp.build_graph("tritonop")
PACKAGES = sorted(m for m in GRAPH.modules if m.count(".") == 1 and GRAPH.find_children(m))
# The pure core: no I/O, so none of the edges (API client, controller, kopf wiring).
PURE = ("tritonop.api", "tritonop.children", "tritonop.rollout", "tritonop.traffic")
EDGES = ("tritonop.kube", "tritonop.controller", "tritonop.handlers", "tritonop.triton")


@pytest.mark.parametrize("a", PACKAGES)
def test_no_import_cycle_between_packages(a: str) -> None:
    for b in PACKAGES:
        if a != b and GRAPH.find_shortest_chain(a, b, as_packages=True):
            assert not GRAPH.find_shortest_chain(b, a, as_packages=True), f"{a} and {b} import each other"


@pytest.mark.parametrize("core", PURE)
def test_pure_core_imports_no_edge(core: str) -> None:
    for edge in EDGES:
        chain = GRAPH.find_shortest_chain(core, edge, as_packages=True)
        assert chain is None, f"{core} reaches {edge}: {chain}"


def test_only_traffic_asks_which_provider_is_active() -> None:
    importers = GRAPH.find_modules_that_directly_import("tritonop.api.models")
    for module in importers:
        if module.startswith(("tritonop.traffic", "tritonop.api")):
            continue
        path = __import__(module, fromlist=["_"]).__file__
        assert "TrafficProvider." not in Path(path).read_text(), f"{module} switches on the provider"
