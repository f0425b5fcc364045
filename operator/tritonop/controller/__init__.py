"""The controller: orchestration (orchestrator.py) over its parts, one module each.

- triton_checks: the canary's gate and the stable's model facts (Triton and pod I/O)
- revisions: each revision's children and the routing objects (expected -> apply -> prune)
- status_store: reading status (stale-body detection) and writing it (one place)
- telemetry: the operator's own metrics per object
"""

from tritonop.controller.orchestrator import Controller
from tritonop.controller.status_store import UnreadableStatus

__all__ = ["Controller", "UnreadableStatus"]
