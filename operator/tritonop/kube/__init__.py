"""The Kubernetes API edge: an async client for the kinds tritonop touches, and idempotent apply."""
