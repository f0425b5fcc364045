"""The local end-to-end harness: a real control plane, Triton, Prometheus and operator; a kubelet stand-in and router.

Run the demo with ``python -m e2e.local.demo`` from the repository root.
"""
