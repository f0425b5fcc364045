"""Fixtures: one real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler; built by scripts/build-control-plane) shared by this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.control_plane import ControlPlane


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane(controllers=True, scheduler=True) as cp:
        yield cp
