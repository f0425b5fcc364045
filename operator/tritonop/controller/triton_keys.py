"""The operator secret, and each InferenceService's Triton control-API key derived from it.

The secret comes from ``--api-key-secret-file`` (the chart mounts a Secret generated at
install there). Without one (unset, or the file absent: the chart's mount is optional)
the operator still runs, with a random secret of its own and a warning: inference is
never restricted, so every model keeps serving, but the keys change on every restart and
Triton pods started before a restart refuse the operator's control calls (a canary's gate
stays closed) until they restart. See docs/security.md, "Triton's control API".
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from tritonop.children.refs import IsvcRef
from tritonop.children.triton_key import derive_key
from tritonop.config import OperatorConfig

log = logging.getLogger("tritonop")

MIN_SECRET_CHARS = 32


def read_operator_secret(path: str | None) -> bytes | None:
    """The secret in ``path`` (surrounding whitespace ignored); None when unset or absent.

    ValueError when the file exists but cannot be read or holds too short a secret.
    """
    if not path:
        return None
    file = Path(path)
    if not file.exists():
        return None
    try:
        secret = file.read_bytes().strip()
    except OSError as err:
        raise ValueError(f"cannot read the API key secret file {path}: {err.strerror or err}") from err
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(
            f"the API key secret file {path} holds {len(secret)} characters; at least {MIN_SECRET_CHARS} are needed"
        )
    return secret


@dataclass(frozen=True)
class TritonKeys:
    """Derives keys; never logged or printed (the secret is left out of repr)."""

    secret: bytes = field(repr=False)

    @classmethod
    def from_config(cls, config: OperatorConfig) -> TritonKeys:
        secret = read_operator_secret(config.api_key_secret_file)
        if secret is None:
            where = f"{config.api_key_secret_file} does not exist" if config.api_key_secret_file else "none is set"
            log.warning(
                "no API key secret file (%s): using a random secret, so Triton control-API keys change "
                "whenever the operator restarts; set --api-key-secret-file (the Helm chart does)",
                where,
            )
            secret = secrets.token_hex(32).encode()
        return cls(secret)

    def key_for(self, ref: IsvcRef) -> str:
        return derive_key(self.secret, ref.uid)
