"""Acceptance tensors: spec values to numpy, and outputs against expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tritonop.api.models import AcceptanceOutput, AcceptanceTensor
from tritonop.triton.tensors import compare_output, input_array, preview, shorten


def tensor(datatype: str, shape: list[int], data: list) -> AcceptanceTensor:
    return AcceptanceTensor(name="IN", datatype=datatype, shape=shape, data=data)


def expected(data: list, tolerance: float = 0.0) -> AcceptanceOutput:
    return AcceptanceOutput(name="OUT", data=data, tolerance=tolerance)


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [
        ("BOOL", np.bool_),
        ("UINT8", np.uint8),
        ("UINT64", np.uint64),
        ("INT8", np.int8),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("FP16", np.float16),
        ("FP32", np.float32),
        ("FP64", np.float64),
    ],
)
def test_input_array_has_the_triton_dtype_and_shape(datatype: str, dtype: type) -> None:
    array = input_array(tensor(datatype, [2, 2], [1, 0, 1, 1]))
    assert array.dtype == dtype
    assert array.shape == (2, 2)
    assert array.tolist() == np.array([[1, 0], [1, 1]], dtype=dtype).tolist()


def test_bytes_inputs_are_utf8_object_arrays() -> None:
    array = input_array(tensor("BYTES", [3], ["héllo", b"raw", 7]))
    assert array.dtype == np.object_
    assert array.tolist() == ["héllo".encode(), b"raw", b"7"]


def test_shape_must_match_the_data() -> None:
    with pytest.raises(ValueError, match=r"shape \[2, 3\] holds 6 values, data has 5"):
        input_array(tensor("FP32", [2, 3], [1, 2, 3, 4, 5]))


def test_shape_must_be_concrete() -> None:
    with pytest.raises(ValueError, match="no -1"):
        input_array(tensor("FP32", [-1], [1.0]))


@pytest.mark.parametrize(("datatype", "value"), [("UINT8", 256), ("INT8", -129), ("UINT32", -1)])
def test_integers_out_of_range_are_refused_not_wrapped(datatype: str, value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        input_array(tensor(datatype, [1], [value]))


@pytest.mark.parametrize("value", [1.5, "3", True])
def test_integer_inputs_must_be_integers(value: object) -> None:
    with pytest.raises(ValueError, match="not an integer"):
        input_array(tensor("INT32", [1], [value]))


def test_non_numeric_float_input() -> None:
    with pytest.raises(ValueError, match="not FP32"):
        input_array(tensor("FP32", [1], ["abc"]))


def test_numbers_match_within_tolerance() -> None:
    got = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    assert compare_output(expected([1.05, 2.0, 2.95, 4.0], tolerance=0.1), got) is None
    problem = compare_output(expected([1.05, 2.0, 2.95, 4.0], tolerance=0.01), got)
    assert problem is not None
    assert "first difference at index 0" in problem and "2 of 4 values outside tolerance 0.01" in problem


def test_exact_numbers_by_default() -> None:
    assert compare_output(expected([2, 4]), np.array([2, 4], dtype=np.int64)) is None
    assert compare_output(expected([2, 5]), np.array([2, 4], dtype=np.int64)) == (
        "expected [2, 5], got [2, 4] (first difference at index 1: expected 5.0, got 4; "
        "1 of 2 values outside tolerance 0.0)"
    )


def test_nan_matches_nan_only() -> None:
    got = np.array([math.nan, 1.0], dtype=np.float32)
    assert compare_output(expected([math.nan, 1.0]), got) is None
    assert compare_output(expected([0.0, 1.0], tolerance=1e9), got) is not None


def test_length_mismatch_is_reported_with_both_counts() -> None:
    problem = compare_output(expected([1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert problem == "expected 2 values [1.0, 2.0], got 3 values [1.0, 2.0, 3.0]"


def test_missing_output() -> None:
    assert compare_output(expected([1.0]), None) == "missing from the response"


def test_bytes_outputs_compare_as_utf8() -> None:
    got = np.array([b"cat", "dög".encode()], dtype=np.object_)
    assert compare_output(expected(["cat", "dög"]), got) is None
    problem = compare_output(expected(["cat", "dog"]), got)
    assert problem is not None and "index 1: expected 'dog', got 'dög'" in problem


def test_booleans_compare_exactly() -> None:
    got = np.array([True, False])
    assert compare_output(expected([True, False]), got) is None
    assert compare_output(expected([True, True]), got) is not None
    assert compare_output(expected(["yes", "no"]), got) == "expected values ['yes', 'no'] are not booleans"


def test_non_numeric_expectation_for_numeric_output() -> None:
    problem = compare_output(expected(["a"]), np.array([1.0], dtype=np.float32))
    assert problem == "expected values ['a'] are not numbers, output is float32"


def test_preview_truncates_long_tensors() -> None:
    assert preview(np.arange(10, dtype=np.int32)) == "[0, 1, 2, 3, 4, 5, 6, 7, ...]"
    assert preview([b"x"]) == "['x']"


def test_shorten_makes_one_bounded_line() -> None:
    assert shorten("a\n\n  b\tc") == "a b c"
    long = shorten("x" * 1000, limit=50)
    assert len(long) == 50 and long.endswith("…")
