"""Benchmarks that print figures (not tests). Run from the repository root: python -m bench.<name>."""
