"""Reproducible benchmark scripts; `python -m benchmarks` runs them all and assembles the report."""
