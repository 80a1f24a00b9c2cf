"""The numbers behind the Trace page: a seeded sample of a trace, its 2-D map, one user's trajectory.

Everything works on a memory-mapped trace (:func:`simcache.trace.io.load_requests`): only the
sampled rows are read into memory, so a trace larger than memory still gives a map. Samples are
drawn as *whole users* (all the embeddings of randomly chosen users, up to the row cap) so that
every user on the map can show their trajectory; a trace without user ids is sampled row by row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simcache.trace.io import Requests

#: Projection methods of the map: key -> label.
METHODS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
#: Colourings of the map: key -> label (offered when the trace has the column).
COLOURINGS = {"split": "split", "time": "time", "norm": "norm", "per_user": "embeddings per user"}


def umap_available() -> bool:
    """Whether the optional ``umap-learn`` package is installed."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def sample_rows(requests: Requests, max_rows: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: every row of randomly chosen users until ``max_rows`` (rows without users).

    Users are taken in a seeded random order while their rows still fit; the first user is always
    taken, so the sample is never empty.
    """
    n = len(requests)
    max_rows = max(1, int(max_rows))
    if n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    users = requests.user_id
    if users is None:
        return np.sort(rng.choice(n, size=max_rows, replace=False))
    _, codes, counts = np.unique(users, return_inverse=True, return_counts=True)
    order = rng.permutation(len(counts))
    cum = np.cumsum(counts[order])
    chosen = order[: max(1, int(np.searchsorted(cum, max_rows, side="right")))]
    keep = np.zeros(len(counts), dtype=bool)
    keep[chosen] = True
    return np.flatnonzero(keep[codes.ravel()])


def sample_frame(requests: Requests, rows: np.ndarray) -> pd.DataFrame:
    """One row per sampled request: ``row``, ``norm`` and the trace columns present.

    ``per_user`` counts the user's embeddings in the whole trace; ``time`` is the timestamp as a
    date (a plain number for a ``file-order`` clock).
    """
    rows = np.asarray(rows, dtype=np.int64)
    vectors = np.asarray(requests.vectors[rows], dtype=np.float64)
    frame: dict[str, Any] = {"row": rows, "norm": np.sqrt(np.einsum("ij,ij->i", vectors, vectors))}
    if requests.user_id is not None:
        users, codes, counts = np.unique(requests.user_id, return_inverse=True, return_counts=True)
        frame["user_id"] = np.asarray(requests.user_id[rows], dtype=str)
        frame["per_user"] = counts[codes.ravel()[rows]]
    if requests.seq is not None:
        frame["seq"] = requests.seq[rows]
    if requests.timestamp is not None:
        ts = requests.timestamp[rows]
        frame["timestamp"] = ts
        frame["time"] = ts if _file_order(requests) else pd.to_datetime(ts, unit="s")
    if requests.split is not None:
        frame["split"] = np.asarray(requests.split[rows], dtype=str)
    return pd.DataFrame(frame)


def _file_order(requests: Requests) -> bool:
    return (requests.metadata or {}).get("clock") == "file-order"


def colourings(frame: pd.DataFrame) -> dict[str, str]:
    """The colourings of :data:`COLOURINGS` that ``frame`` has columns for."""
    return {k: v for k, v in COLOURINGS.items() if k in frame.columns}


def project(points: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """``(m, 2)`` coordinates of ``points`` by PCA, t-SNE or UMAP (the analyses' own t-SNE/UMAP).

    PCA is exact (SVD of the centred points); t-SNE and UMAP first reduce to 50 principal
    components, as ``simcache analyze map`` does. UMAP without ``umap-learn`` is a ``ValueError``.
    """
    x = np.asarray(points, dtype=np.float64)
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    if len(x) < 3 or method == "pca":
        return pca_2d(x)
    from simcache.analysis.maps import tsne_2d, umap_2d

    if method == "tsne":
        return tsne_2d(x, seed=seed)[0]
    y = umap_2d(x, seed=seed)
    if y is None:
        raise ValueError("UMAP needs umap-learn (pip install 'simcache[umap]')")
    return y


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Coordinates on the first two principal axes (zeros where the points span fewer dimensions).

    Each axis is oriented so that its largest coefficient is positive, so the map does not flip
    between runs.
    """
    xc = x - x.mean(axis=0)
    out = np.zeros((len(x), 2))
    if len(x) < 2:
        return out
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    out[:, : len(axes)] = xc @ axes.T
    return out


def user_track(frame: pd.DataFrame, coords: np.ndarray, vectors: np.ndarray, user: str) -> pd.DataFrame:
    """One user's sampled embeddings in order (``seq``, else row), with map coordinates and steps.

    ``step`` is the Euclidean distance from the previous embedding of the user (NaN for the first);
    ``order`` numbers the embeddings from 0. ``vectors`` are the sampled rows' vectors.
    """
    if "user_id" not in frame.columns:
        raise ValueError("the trace has no user ids")
    mask = (frame["user_id"] == user).to_numpy()
    sub = frame[mask].copy()
    sub["x"], sub["y"] = coords[mask, 0], coords[mask, 1]
    v = np.asarray(vectors[mask], dtype=np.float64)
    keys = [c for c in ("seq", "row") if c in sub.columns]
    order = np.lexsort(tuple(sub[c].to_numpy() for c in reversed(keys)))
    sub, v = sub.iloc[order].reset_index(drop=True), v[order]
    steps = np.full(len(sub), np.nan)
    if len(sub) > 1:
        steps[1:] = np.sqrt(((v[1:] - v[:-1]) ** 2).sum(axis=1))
    sub["order"] = np.arange(len(sub))
    sub["step"] = steps
    return sub


def users_by_embeddings(frame: pd.DataFrame) -> list[str]:
    """Users of the sample, those with most embeddings first (ties by id)."""
    if "user_id" not in frame.columns:
        return []
    counts = frame.groupby("user_id").size().reset_index(name="n")
    counts = counts.sort_values(["n", "user_id"], ascending=[False, True], kind="stable")
    return counts["user_id"].tolist()


def quantile_table(info: Any) -> pd.DataFrame:
    """The distance-scale quantiles of a :class:`~simcache.trace.info.TraceInfo`, one row per scale."""
    from simcache.trace.info import QUANTILE_KEYS, QUANTILE_LABELS

    rows = {}
    for name, qs in (("L2 norm", info.norms), ("NN distance, other user", info.nn_other_user),
                     ("step distance, same user", info.consecutive_same_user)):
        if qs:
            rows[name] = [qs.get(k) for k in QUANTILE_KEYS]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(QUANTILE_LABELS))
