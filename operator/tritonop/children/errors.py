"""The one error the builders raise for specs that pass the schema but cannot be built."""

from __future__ import annotations


class BuildError(ValueError):
    """A spec the CRD schema accepts but the builders cannot turn into children.

    ``reason`` is a CamelCase word for status conditions and Events; ``str()`` is a
    one-line message fit for ``kubectl describe``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.reason = reason
