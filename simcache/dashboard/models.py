"""The numbers behind the Models page: norm and angle distributions of several embedding spaces.

A *space* is one trace (a seeded sample of its rows, optionally each user's latest embedding only)
or one analysis folder (the ``norms.json`` and ``angles.json`` histograms ``simcache analyze``
wrote). Angles are between random pairs of points, measured from the origin, as in
:mod:`simcache.analysis.angles`; the isotropic law of each dimension is drawn beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recvae.errors import UserError
from simcache.trace.io import Requests

ANGLE_PAIRS = 20_000


@dataclass
class Space:
    """Histograms of one space: norms and pair angles as (counts, edges), its dimension and size."""

    label: str
    dim: int
    rows: int
    norm_counts: np.ndarray
    norm_edges: np.ndarray
    angle_counts: np.ndarray
    angle_edges: np.ndarray
    norm_median: float


def space_from_trace(label: str, requests: Requests, *, max_rows: int = 5_000, latest: bool = False,
                     seed: int = 0, bins: int | None = None) -> Space:
    """Norms and pair angles of a seeded sample of the trace (each user's latest row with ``latest``).

    ``bins`` defaults to about the square root of the sample size, between 10 and 60.
    """
    from simcache.analysis.angles import pair_angles
    from simcache.analysis.common import make_rng, subsample_indices
    from simcache.analysis.inputs import latest_per_user

    rows = np.arange(len(requests))
    if latest and requests.user_id is not None:
        rows = latest_per_user(requests.user_id, requests.seq)
    idx = subsample_indices(len(rows), max_rows, make_rng(seed, 90))
    if idx is not None:
        rows = rows[idx]
    x = np.asarray(requests.vectors[rows], dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    bins = int(bins or min(60, max(10, round(np.sqrt(len(x))))))
    nc, ne = np.histogram(norms, bins=bins)
    if len(x) >= 2 and x.shape[1] >= 2 and (norms > 0).sum() >= 2:
        angles = pair_angles(x, ANGLE_PAIRS, make_rng(seed, 91))
        ac, ae = np.histogram(angles, bins=bins)
    else:
        ac, ae = np.zeros(0), np.zeros(1)
    return Space(label, int(x.shape[1]), int(len(x)), nc, ne, ac, ae, float(np.median(norms)))


def space_from_analysis(label: str, folder: str | Path) -> Space:
    """The data histograms of ``norms.json`` and ``angles.json`` in an analysis folder."""
    folder = Path(folder)
    norms, angles = _read(folder / "norms.json"), _read(folder / "angles.json")
    if norms is None and angles is None:
        raise UserError(f"{folder}: no norms.json or angles.json to compare")
    dim = int((norms or angles)["dim"])
    rows = int((norms or angles)["n"])
    if norms is not None:
        data = norms["sets"]["data"]
        nc, ne = np.asarray(data["histogram"]["counts"], float), np.asarray(norms["edges"], float)
        median = float(data["summary"].get("q50", np.nan))
    else:
        nc, ne, median = np.zeros(0), np.zeros(1), float("nan")
    if angles is not None:
        pair = angles["sets"]["data"]["pair"]
        ac, ae = np.asarray(pair["histogram"]["counts"], float), np.asarray(angles["edges"]["pair"], float)
    else:
        ac, ae = np.zeros(0), np.zeros(1)
    return Space(label, dim, rows, nc, ne, ac, ae, median)


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None


def density_frame(spaces: list[Space], kind: str, *, scale_by_median: bool = False) -> pd.DataFrame:
    """Step-density rows (``space``, ``x``, ``density``) of ``kind`` ("norm" or "angle") per space.

    Each bin contributes its two edges at the bin's density, so a line through the rows draws the
    histogram's outline; ``scale_by_median`` divides norms by each space's median norm.
    """
    parts = []
    for s in spaces:
        counts, edges = (s.norm_counts, s.norm_edges) if kind == "norm" else (s.angle_counts, s.angle_edges)
        if len(counts) == 0 or counts.sum() == 0:
            continue
        edges = np.asarray(edges, dtype=np.float64)
        if kind == "norm" and scale_by_median and s.norm_median > 0:
            edges = edges / s.norm_median
        dens = counts / counts.sum() / np.diff(edges)
        parts.append(pd.DataFrame({"space": s.label, "x": np.repeat(edges, 2)[1:-1],
                                   "density": np.repeat(dens, 2)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["space", "x", "density"])


def isotropic_angles(dims: list[int], points: int = 200) -> pd.DataFrame:
    """The angle density of directions uniform on the sphere, for each dimension (``dimension``, ``x``, ``density``)."""
    from simcache.analysis.angles import angle_density

    parts = []
    for p in sorted({d for d in dims if d >= 2}):
        sd = 1.0 / np.sqrt(p - 1)
        t = np.linspace(max(0.0, np.pi / 2 - 5 * sd), min(np.pi, np.pi / 2 + 5 * sd), points)
        parts.append(pd.DataFrame({"dimension": f"isotropic, d={p}", "x": t, "density": angle_density(t, p)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["dimension", "x", "density"])


def summary_table(spaces: list[Space]) -> pd.DataFrame:
    """One row per space: dimension, rows used, median norm, median pair angle (degrees)."""
    rows = []
    for s in spaces:
        med = np.nan
        if len(s.angle_counts) and s.angle_counts.sum() > 0:
            cum = np.cumsum(s.angle_counts) / s.angle_counts.sum()
            i = int(np.searchsorted(cum, 0.5))
            med = float(np.degrees(0.5 * (s.angle_edges[i] + s.angle_edges[i + 1])))
        rows.append({"space": s.label, "dimension": s.dim, "points": s.rows, "median norm": s.norm_median,
                     "median pair angle (°)": med})
    return pd.DataFrame(rows)
