"""Pure helpers for acceptance inference: spec tensors to numpy, outputs against expectations.

Values in the spec are flat row-major lists (as written in YAML); BYTES values are
strings (UTF-8 encoded on the wire) or bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tritonop.api.models import AcceptanceOutput, AcceptanceTensor

NUMPY_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
PREVIEW_VALUES = 8
MESSAGE_LIMIT = 400


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def preview(values: Sequence[Any] | NDArray[Any], limit: int = PREVIEW_VALUES) -> str:
    """The first ``limit`` values as a list literal, ``...`` when there are more."""
    items = [_plain(v) for v in list(values)[:limit]]
    more = ", ..." if len(values) > limit else ""
    return "[" + ", ".join(repr(v) for v in items) + more + "]"


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so previews read like the YAML the user wrote."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value.item() if isinstance(value, np.generic) else value


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.bytes_):
        return bytes(value)
    return str(value).encode()


def input_array(tensor: AcceptanceTensor) -> NDArray[Any]:
    """The numpy array for an acceptance input; ValueError says what is wrong with it."""
    if any(dim < 0 for dim in tensor.shape):
        raise ValueError(f"input {tensor.name}: shape {tensor.shape} must be concrete (no -1)")
    count = math.prod(tensor.shape)
    if count != len(tensor.data):
        raise ValueError(f"input {tensor.name}: shape {tensor.shape} holds {count} values, data has {len(tensor.data)}")
    dtype = NUMPY_DTYPES[tensor.datatype]
    if tensor.datatype == "BYTES":
        return np.array([_as_bytes(v) for v in tensor.data], dtype=np.object_).reshape(tensor.shape)
    try:
        if np.issubdtype(dtype, np.integer):
            _check_integers(tensor, dtype)
        return np.array(tensor.data, dtype=dtype).reshape(tensor.shape)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"input {tensor.name}: data is not {tensor.datatype}: {error}") from error


def _check_integers(tensor: AcceptanceTensor, dtype: Any) -> None:
    # numpy would silently wrap out-of-range integers; say so instead.
    info = np.iinfo(dtype)
    for value in tensor.data:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"input {tensor.name}: {value!r} is not an integer")
        if not info.min <= value <= info.max:
            raise ValueError(f"input {tensor.name}: {value} is out of range for {tensor.datatype}")


def compare_output(expected: AcceptanceOutput, got: NDArray[Any] | None) -> str | None:
    """None when ``got`` matches ``expected``, else what differs (flat, row-major).

    Numbers match within ``expected.tolerance`` (absolute; NaN matches NaN), booleans
    and BYTES exactly (strings compared as UTF-8).
    """
    if got is None:
        return "missing from the response"
    values = got.reshape(-1)
    if len(values) != len(expected.data):
        return (
            f"expected {len(expected.data)} values {preview(expected.data)}, got {len(values)} values {preview(values)}"
        )
    if values.dtype == np.object_ or values.dtype.kind in ("S", "U"):
        return _compare_exact([_as_bytes(v) for v in values], [_as_bytes(v) for v in expected.data], expected, values)
    if values.dtype == np.bool_:
        if not all(isinstance(v, (bool, int)) for v in expected.data):
            return f"expected values {preview(expected.data)} are not booleans"
        return _compare_exact(values.tolist(), [bool(v) for v in expected.data], expected, values)
    return _compare_numbers(values, expected)


def _compare_exact(got: list[Any], wanted: list[Any], expected: AcceptanceOutput, values: NDArray[Any]) -> str | None:
    for index, (g, w) in enumerate(zip(got, wanted, strict=False)):
        if g != w:
            return (
                f"expected {preview(expected.data)}, got {preview(values)} "
                f"(first difference at index {index}: expected {_plain(w)!r}, got {_plain(g)!r})"
            )
    return None


def _compare_numbers(values: NDArray[Any], expected: AcceptanceOutput) -> str | None:
    try:
        wanted = np.array(expected.data, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected values {preview(expected.data)} are not numbers, output is {values.dtype}"
    actual = values.astype(np.float64)
    both_nan = np.isnan(actual) & np.isnan(wanted)
    differences = np.where(both_nan, 0.0, np.abs(actual - wanted))
    bad = np.flatnonzero(~(differences <= expected.tolerance))  # NaN differences count as bad
    if bad.size == 0:
        return None
    index = int(bad[0])
    return (
        f"expected {preview(expected.data)}, got {preview(values)} "
        f"(first difference at index {index}: expected {_plain(wanted[index])!r}, got {_plain(values[index])!r}; "
        f"{bad.size} of {len(values)} values outside tolerance {expected.tolerance})"
    )
