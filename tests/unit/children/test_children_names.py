"""IsvcRef, model name and status URL."""

from __future__ import annotations

import pytest

from tritonop.children import BuildError, IsvcRef, triton_model_name
from tritonop.traffic import status_url


def test_ref_from_object_and_owner_reference() -> None:
    ref = IsvcRef.from_object({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u-1", "generation": 4}})
    assert ref == IsvcRef(name="resnet", namespace="ml", uid="u-1", generation=4)
    assert ref.owner_reference() == {
        "apiVersion": "serving.tritonop.dev/v1alpha1",
        "kind": "InferenceService",
        "name": "resnet",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_ref_needs_a_name() -> None:
    with pytest.raises(BuildError):
        IsvcRef.from_object({"metadata": {"namespace": "ml"}})


def test_model_name_defaults_to_the_isvc_name(ref, make_spec) -> None:
    assert triton_model_name(ref, make_spec()) == "resnet"
    assert triton_model_name(ref, make_spec(model={"storageUri": "s3://b/r", "name": "resnet50"})) == "resnet50"


@pytest.mark.parametrize(
    "traffic, url",
    [
        ({}, "http://resnet.ml.svc.cluster.local:8000"),
        (
            {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}], "hostnames": ["*.x.io", "a.x.io"]}},
            "http://a.x.io",
        ),
        (
            {"provider": "gateway-api", "gateway": {"parentRefs": [{"name": "gw"}]}},
            "http://resnet.ml.svc.cluster.local:8000",
        ),
        ({"provider": "istio", "istio": {"hosts": ["resnet.example.com"]}}, "http://resnet.example.com"),
        ({"provider": "istio"}, "http://resnet.ml.svc.cluster.local:8000"),
        ({"provider": "nginx", "nginx": {"host": "r.example.com"}}, "http://r.example.com"),
        ({"provider": "nginx", "nginx": {"host": "r.example.com", "path": "/resnet/"}}, "http://r.example.com/resnet"),
        # Only the active provider's hostname counts.
        (
            {"provider": "service", "istio": {"hosts": ["resnet.example.com"]}},
            "http://resnet.ml.svc.cluster.local:8000",
        ),
    ],
)
def test_status_url(ref, make_spec, config, traffic, url) -> None:
    assert status_url(ref, make_spec(traffic=traffic)) == url
