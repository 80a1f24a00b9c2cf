"""Reproducible benchmark scripts; `python -m benchmarks` runs them all and assembles the report."""

import os
from pathlib import Path

import simcache  # noqa: F401  (first: it chooses FAISS's OpenBLAS kernels before any script loads FAISS)

REPO = Path(__file__).resolve().parents[1]


def shared_ml100k() -> Path | None:
    """The real MovieLens-100K sample: ``$SIMCACHE_SHARED_DATA/ml-100k``, else ``shared/data/ml-100k``
    beside the checkout (or beside the folder holding it, for a git worktree); None when absent."""
    env = os.environ.get("SIMCACHE_SHARED_DATA")
    for base in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data"]:
        if (base / "ml-100k" / "u.data").is_file():
            return base / "ml-100k"
    return None
