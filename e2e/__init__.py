"""End-to-end scenarios for tritonop: a local harness (e2e.local) and real-cluster scripts (e2e/kind)."""
