"""Equality-based label selectors as the operator's flags take them: "key=value,key2=value2"."""

from __future__ import annotations

import re

from tritonop.api.kube_types import LABEL_VALUE_PATTERN, QUALIFIED_NAME

_KEY = re.compile(QUALIFIED_NAME)
_VALUE = re.compile(LABEL_VALUE_PATTERN)
_KEY_MAX_LENGTH = 317  # a 253-character prefix, "/", a 63-character name


def parse_selector(text: str) -> dict[str, str]:
    """The matchLabels ``text`` means; "" (or blanks) is {}, which selects everything.

    Raises ValueError for anything but comma-separated key=value pairs with valid label
    keys and values, or for a key given twice.
    """
    labels: dict[str, str] = {}
    if not text.strip():
        return labels
    for term in (t.strip() for t in text.split(",")):
        key, sep, value = (part.strip() for part in term.partition("="))
        if not sep or value.startswith("=") or not key or len(key) > _KEY_MAX_LENGTH or not _KEY.match(key):
            raise ValueError(f"label selector {text!r}: {term!r} is not key=value with a valid label key")
        if not _VALUE.match(value):
            raise ValueError(f"label selector {text!r}: {value!r} is not a valid label value")
        if key in labels:
            raise ValueError(f"label selector {text!r}: {key!r} is given twice")
        labels[key] = value
    return labels
