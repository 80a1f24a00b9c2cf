"""Reproducible benchmark scripts; `python -m benchmarks` runs them all and assembles the report."""

import simcache  # noqa: F401  (first: it chooses FAISS's OpenBLAS kernels before any script loads FAISS)
