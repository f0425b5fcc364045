"""The local end-to-end harness: emulated control plane, real Triton, Prometheus and operator.

Run the demo with ``python -m e2e.local.demo`` from the repository root.
"""
