"""Small request traces for the replay front-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simcache.trace.io import write_requests


def make_columns(n: int = 400, d: int = 6, k: int = 10, seed: int = 0) -> dict:
    """Clustered vectors (so that radii give a mix of hits), with every trace column."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(15, d)).astype(np.float32)
    which = rng.integers(0, 15, n)
    vectors = (centers[which] + 0.05 * rng.normal(size=(n, d))).astype(np.float32)
    repeat = rng.random(n) < 0.1  # some exact repeats of earlier vectors -> exact hits
    for t in np.flatnonzero(repeat):
        if t > 0:
            vectors[t] = vectors[rng.integers(0, t)]
    return {
        "vectors": vectors,
        "timestamp": np.sort(rng.integers(0, 10**6, n)).astype(np.int64),
        "user_id": np.array([f"u{u}" for u in rng.integers(0, 25, n)], dtype=object),
        "seq": np.zeros(n, np.int64),
        "n_items": np.ones(n, np.int64),
        "split": np.array(["train", "validation", "test"], dtype=object)[rng.integers(0, 3, n)],
        "topk": np.stack([rng.choice(40, k, replace=False) for _ in range(n)]).astype(np.int32),
    }


@pytest.fixture
def trace_columns() -> dict:
    return make_columns()


@pytest.fixture
def trace_file(tmp_path: Path, trace_columns: dict) -> Path:
    """A full trace (all columns, metadata with a long vocabulary list) in one record batch."""
    c = trace_columns
    return write_requests(tmp_path / "trace.arrow", c["vectors"], timestamp=c["timestamp"],
                          user_id=c["user_id"], seq=c["seq"], n_items=c["n_items"], split=c["split"],
                          topk=c["topk"], metadata={"dataset": "synthetic", "items": list(range(300))})
