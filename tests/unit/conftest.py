"""Fixtures shared by the unit tests: the parent's identity, default operator settings, a spec factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tritonop.api.models import InferenceServiceSpec
from tritonop.children import IsvcRef
from tritonop.config import OperatorConfig

SpecFactory = Callable[..., InferenceServiceSpec]


@pytest.fixture
def ref() -> IsvcRef:
    return IsvcRef(name="resnet", namespace="ml", uid="5f0c6b1e-0000-4000-8000-000000000001", generation=1)


@pytest.fixture
def config() -> OperatorConfig:
    return OperatorConfig()


@pytest.fixture
def make_spec() -> SpecFactory:
    """make_spec(triton={...}, autoscaling={...}, ...): a validated spec over an s3 model by default."""

    def make(**sections: Any) -> InferenceServiceSpec:
        raw: dict[str, Any] = {"model": {"storageUri": "s3://models/repository"}}
        raw.update(sections)
        return InferenceServiceSpec.model_validate(raw)

    return make
