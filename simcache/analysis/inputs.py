"""Turning a trace or an embedding matrix into the points the analyses run on.

:func:`prepare_input` reads any file :func:`simcache.trace.io.load_requests` reads (a simcache trace,
an Arrow/Parquet file with a vector column, a ``.npy`` matrix), keeps by default only the latest
embedding of each user (highest ``seq``; the last row of the user when there is no ``seq``) when
the input has user ids, so that users with many embeddings do not dominate the geometry, then
draws a seeded subsample of at most ``sample`` rows; ``info`` says what was chosen. The full request
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


def row_selection_text(latest: bool, asked: bool | None, rows: int, has_users: bool) -> str:
    """How the rows were chosen, in words (printed by the CLI and in the report)."""
    if latest:
        how = "the default" if asked is None else "--latest-per-user"
        return f"latest embedding of each user, {rows:,} rows ({how}; --all-rows analyses every row)"
    if not has_users:
        return f"every row, {rows:,} rows (the input has no user ids)"
    return f"every row, {rows:,} rows (--all-rows; users with many embeddings weigh more)"


def prepare_input(path: str | Path, *, vector_column: str | None = None, latest: bool | None = None,
                  sample: int | None = 20_000, seed: int = 0) -> AnalysisInput:
    """Load ``path`` and select the rows to analyse (see the module docstring); user errors are :class:`UserError`.

    ``latest``: ``None`` (default) keeps each user's latest embedding when the input has user ids
    and every row otherwise; ``True`` insists on it (an input without user ids is refused);
    ``False`` keeps every row.
    """
    from simcache.trace.io import load_requests

    req = load_requests(path, vector_column=vector_column, sort=True)
    n = len(req)
    rows = np.arange(n)
    asked = latest
    if latest and req.user_id is None:
        raise UserError(f"{path}: --latest-per-user needs a user_id column (this input has none)")
    latest = req.user_id is not None if latest is None else bool(latest)
    if latest:
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
        "row_selection": row_selection_text(latest, asked, selected, req.user_id is not None),
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
