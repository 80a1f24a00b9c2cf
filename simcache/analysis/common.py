"""Helpers shared by the analyses: input checks, seeded sampling, summaries, JSON output, progress.

Conventions used by every analysis module:

- points are an ``(n, d)`` array; they are checked and converted once (to C-contiguous float64)
  by :func:`as_points` at each public entry point;
- randomness comes from a seed (an ``int``) or a :class:`numpy.random.Generator`; the same seed
  gives the same numbers;
- a result is a plain ``dict`` of numbers and lists (written by :func:`simcache.jsonout.write_json`
  with ``JSON_DIGITS`` significant digits) whose
  per-point-set part lives under ``"sets"`` keyed ``"data"``, ``"uniform_ball"``, ``"gaussian"``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Significant digits of the numbers in analysis JSON files.
JSON_DIGITS = 7

#: Quantiles reported by :func:`summarize` (as fractions).
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def as_points(points: Any, *, name: str = "points", min_rows: int = 2) -> np.ndarray:
    """``points`` as a C-contiguous float64 ``(n, d)`` array; refuse other shapes, NaN/inf, too few rows."""
    arr = np.asarray(points)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no columns")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def make_rng(seed: int | np.random.Generator | None, *stream: int) -> np.random.Generator:
    """A generator from ``seed``; ``stream`` integers select an independent stream of the same seed."""
    if isinstance(seed, np.random.Generator):
        return seed
    base = 0 if seed is None else int(seed)
    return np.random.default_rng([base, *stream]) if stream else np.random.default_rng(base)


def subsample_indices(n: int, max_points: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of ``max_points`` rows drawn without replacement, or ``None`` when ``n <= max_points``."""
    if max_points is None or max_points <= 0 or n <= max_points:
        return None
    return np.sort(rng.choice(n, size=int(max_points), replace=False))


def subsample(points: np.ndarray, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    """``points`` itself, or a seeded random subset of ``max_points`` rows (in their original order)."""
    idx = subsample_indices(len(points), max_points, rng)
    return points if idx is None else points[idx]


def summarize(values: np.ndarray, quantiles: Iterable[float] = QUANTILES) -> dict[str, float]:
    """count, min, max, mean, std and quantiles (keys ``q01``, ``q50``, ...) of a 1-D sample."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {"count": 0}
    out: dict[str, float] = {
        "count": int(v.size),
        "min": float(v.min()),
        "max": float(v.max()),
        "mean": float(v.mean()),
        "std": float(v.std()),
    }
    qs = list(quantiles)
    for q, val in zip(qs, np.quantile(v, qs)):
        out[f"q{round(q * 100):02d}"] = float(val)
    return out


def shared_edges(samples: Iterable[np.ndarray], bins: int, *, lo_q: float = 0.0, hi_q: float = 1.0,
                 extra: Iterable[float] = ()) -> np.ndarray:
    """``bins + 1`` histogram edges covering every sample (between the given quantiles), for same-axes plots."""
    lows, highs = [], []
    for s in samples:
        s = np.asarray(s, dtype=np.float64).ravel()
        if s.size:
            lo, hi = np.quantile(s, [lo_q, hi_q]) if (lo_q > 0 or hi_q < 1) else (s.min(), s.max())
            lows.append(lo)
            highs.append(hi)
    lows.extend(extra)
    highs.extend(extra)
    lo, hi = (min(lows), max(highs)) if lows else (0.0, 1.0)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(bins) + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Counts of ``values`` in ``edges`` plus the number that fell outside them."""
    v = np.asarray(values, dtype=np.float64).ravel()
    counts, _ = np.histogram(v, bins=edges)
    return {"counts": counts.astype(np.int64), "outside": int(v.size - counts.sum())}


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, enabled: bool | None = None) -> Iterator[Any]:
    """A tqdm bar on stderr whose clock keeps ticking during a long step (t-SNE, one EM fit).

    ``enabled``: ``None`` shows it only when stderr is a terminal, ``True`` always, ``False`` never.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=None if enabled is None else not enabled, leave=False,
               dynamic_ncols=True, file=sys.stderr)
    stop = threading.Event()
    ticker = None
    if not bar.disable:
        def tick() -> None:
            while not stop.wait(1.0):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    try:
        yield bar
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        bar.close()


def progress(iterable: Iterable[T], desc: str, total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """``iterable`` with a :func:`progress_bar` advanced once per item."""
    with progress_bar(total, desc, enabled) as bar:
        for item in iterable:
            yield item
            bar.update()


def limited_threads(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS/OpenMP thread pools to ``threads`` inside the block (``None``: leave them alone).

    Oversubscribed thread pools (more threads than free cores) can slow EM and t-SNE tenfold.
    """
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads))


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread: for loops of small matrix products (EM), where threads only add overhead."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def pairwise_row_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between matching rows of ``a`` and ``b`` (both ``(m, d)``)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def random_pairs(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``m`` random index pairs ``(i, j)`` with ``i != j`` drawn uniformly (with replacement) from ``range(n)``."""
    if n < 2:
        raise ValueError("need at least 2 points to draw pairs")
    i = rng.integers(0, n, size=m)
    j = rng.integers(0, n - 1, size=m)
    j = j + (j >= i)  # uniform over the n - 1 other indices
    return i, j
