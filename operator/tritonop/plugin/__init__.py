"""`kubectl tritonop`, the kubectl plugin (docs/plugin.md): the console script
kubectl-tritonop runs ``main``."""

from tritonop.plugin.cli import main

__all__ = ["main"]
