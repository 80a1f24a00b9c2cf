"""Turning a trace or an embedding matrix into the points the analyses run on.

:func:`prepare_input` reads any file :func:`simcache.trace.io.load_requests` reads (a simcache trace,
an Arrow/Parquet file with a vector column, a ``.npy`` matrix), optionally keeps only the latest
embedding of each user (highest ``seq``; the last row of the user when there is no ``seq``),
then draws a seeded subsample of at most ``sample`` rows and says so in ``info``. The full request
set stays available (``requests``) for the drift analysis, which needs every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.analysis.common import make_rng, subsample_indices
from simcache.trace.info import user_order


def latest_per_user(user_ids: Any, seq: Any = None) -> np.ndarray:
    """Sorted row indices of each user's latest embedding: highest ``seq`` (ties: last row), else last row."""
    order, codes = user_order(user_ids, seq)
    sc = codes[order]
    last = np.r_[sc[1:] != sc[:-1], True]
    return np.sort(order[last])


@dataclass
class AnalysisInput:
    """The analysed points (float64 ``(m, d)``), the request file they come from, and a description."""

    points: np.ndarray
    requests: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_users(self) -> bool:
        return getattr(self.requests, "user_id", None) is not None


def prepare_input(path: str | Path, *, vector_column: str | None = None, latest: bool = False,
                  sample: int | None = 20_000, seed: int = 0) -> AnalysisInput:
    """Load ``path`` and select the rows to analyse (see the module docstring); user errors are :class:`UserError`."""
    from simcache.trace.io import load_requests

    req = load_requests(path, vector_column=vector_column, sort=True)
    n = len(req)
    rows = np.arange(n)
    if latest:
        if req.user_id is None:
            raise UserError(f"{path}: --latest-per-user needs a user_id column (this input has none)")
        rows = latest_per_user(req.user_id, req.seq)
    selected = len(rows)
    idx = subsample_indices(selected, sample, make_rng(seed, 70))
    if idx is not None:
        rows = rows[idx]
    vectors = req.vectors
    points = np.asarray(vectors[rows] if len(rows) < n else vectors, dtype=np.float64)
    info = {
        "path": str(path),
        "rows": int(n),
        "dim": int(req.dim),
        "latest_per_user": bool(latest),
        "rows_selected": int(selected),
        "rows_analysed": int(len(rows)),
        "subsampled": idx is not None,
        "sample_cap": sample,
        "seed": seed,
        "columns": list(getattr(req, "column_names", [])),
    }
    if req.user_id is not None:
        info["users_analysed"] = int(len(np.unique(req.user_id[rows])))
    if getattr(req, "metadata", None):
        meta = req.metadata
        info["trace_metadata"] = {k: meta[k] for k in ("dataset", "schedule", "seed", "dim", "version")
                                  if k in meta and not isinstance(meta[k], (list, dict))}
    return AnalysisInput(points=points, requests=req, info=info)
