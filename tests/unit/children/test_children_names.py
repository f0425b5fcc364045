"""IsvcRef, model name and status URL."""

from __future__ import annotations

import pytest

from tritonop.children import BuildError, IsvcRef, triton_model_name, triton_models
from tritonop.children.names import default_case_model
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


def test_served_models_and_the_default_acceptance_model(ref, make_spec) -> None:
    one = make_spec(model={"storageUri": "s3://b/r", "name": "resnet50"})
    assert (triton_models(ref, one), default_case_model(ref, one)) == (("resnet50",), "resnet50")
    assert (triton_models(ref, make_spec()), default_case_model(ref, make_spec())) == (("resnet",), "resnet")
    listed_one = make_spec(model={"storageUri": "s3://b/r", "models": ["ensemble"]})
    assert (triton_models(ref, listed_one), default_case_model(ref, listed_one)) == (("ensemble",), "ensemble")
    several = make_spec(model={"storageUri": "s3://b/r", "models": ["pre", "ensemble"]})
    assert (triton_models(ref, several), default_case_model(ref, several)) == (("pre", "ensemble"), None)
    every = make_spec(model={"storageUri": "s3://b/r", "models": ["*"]})
    assert (triton_models(ref, every), default_case_model(ref, every)) == (("*",), None)


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
