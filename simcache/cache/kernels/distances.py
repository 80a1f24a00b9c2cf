"""Distances, the hit rule and the tie rule: how every decision measures a request against an entry.

* **Distance.** Vectors are float32 (unit-normalised first for ``cosine``, see
  :func:`normalize_rows`). The distance between a request ``x`` and a cached entry ``y`` is computed
  from ``sq = sum_k (float64(x_k) - float64(y_k))**2`` accumulated in float64
  (:func:`sqdist`, :mod:`~simcache.cache.kernels.lanesum`: component ``k`` into partial sum
  ``k % 32``, each in increasing ``k``, then neighbouring partial sums added in pairs until one is
  left; a fixed order, the same on every machine), then
  ``d = sqrt(sq)`` for ``l2`` (Euclidean, not squared) or ``d = sq / 2`` for ``cosine``
  (= 1 - cos for unit vectors; exactly 0 for identical vectors). FAISS distances are only used to
  pick candidates; every decision uses this recomputation, so the block engine, the plain engine
  and the test reference agree bit for bit.
* **Nearest entry and ties.** ``y*`` is the cached entry with the smallest ``sq``; equal ``sq``
  are broken by the smallest entry id (for a query cache the request index that inserted the
  entry: the oldest entry) (:func:`offer`). The second nearest (for qLRU-ΔC) follows the same order.
* **Hit rule.** ``d <= r`` (:func:`within_radius`), decided in float64 on the recomputed distance:
  at r = 0 an identical vector hits. This is the only place the comparison is written.
* **Approximate distances only select candidates.** Float32 squared distances (FAISS, BLAS, panel tiles)
  (``|x|^2 + |y|^2 - 2 x.y``) are within ``tol = TOL_FACTOR * (d + 4) * 2**-24 * (|x| + M)**2``
  of the exact value (M: the largest norm seen so far; standard dot-product error bound with a
  safety factor); see :mod:`~simcache.cache.kernels.sequential` for how candidates are proven
  complete.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from simcache.cache.kernels.lanesum import product_sum, sqdiff_sum
from simcache.cache.options import METRICS

#: metric name -> code inside the compiled loops
METRIC_CODES = {name: code for code, name in enumerate(METRICS)}

#: Safety factor on the float32 error bound of FAISS / BLAS squared distances (see module doc).
TOL_FACTOR = 4.0
#: largest squared norm a request may have: float32 values |x|^2 + |y|^2 - 2 x.y then stay finite
#: (no overflow, hence no NaN, in the row scans)
MAX_NORM2 = 1e37


@nb.njit(cache=True, inline="always")
def within_radius(d: float, r: float) -> bool:
    """THE hit rule: a cached entry at distance ``d`` may serve the request iff ``d <= r``."""
    return d <= r


@nb.njit(cache=True, inline="always")
def sqdist(x: np.ndarray, y: np.ndarray) -> float:
    """Exact squared Euclidean distance ``sum_k (float64(x_k) - float64(y_k))**2`` in the fixed
    lane order (:mod:`~simcache.cache.kernels.lanesum`; ``x``, ``y`` contiguous float32 or float64)."""
    return sqdiff_sum(x, y)


@nb.njit(cache=True, inline="always")
def lane_dot(x: np.ndarray, y: np.ndarray) -> float:
    """``sum_k float64(x_k) * float64(y_k)`` in the order of :func:`sqdist`."""
    return product_sum(x, y)


@nb.njit(cache=True, inline="always")
def sqnorm(x: np.ndarray) -> float:
    """:func:`sqdist` from ``x`` to the origin, bit for bit (``float64(x_k) - 0.0`` is
    ``float64(x_k)``, so each term is ``x_k * x_k``), without reading a vector of zeros."""
    return lane_dot(x, x)


@nb.njit(cache=True, inline="always")
def to_metric(sq: float, metric: int) -> float:
    """Distance in the replay's metric from the exact squared Euclidean distance."""
    if metric == 0:
        return math.sqrt(sq)
    return 0.5 * sq


@nb.njit(cache=True)
def normalize_rows(x: np.ndarray, out: np.ndarray) -> int:
    """Unit-normalise float32 rows into ``out``: ``float32(x_k / |x|)`` in float64, the squared norm
    summed by :func:`sqnorm` (vectorised, unlike one running sum).

    Returns the index of the first all-zero row, or -1 if there is none.
    """
    bad = -1
    for i in range(x.shape[0]):
        s = sqnorm(x[i])
        if s == 0.0:
            if bad < 0:
                bad = i
            for k in range(x.shape[1]):
                out[i, k] = 0.0
            continue
        n = math.sqrt(s)
        for k in range(x.shape[1]):
            out[i, k] = np.float32(np.float64(x[i, k]) / n)
    return bad


@nb.njit(cache=True)
def block_norms(q, qnorm2, tol, tol_coef, max_norm):
    """Squared norms (float32, rounded from :func:`sqnorm`: vectorised, unlike one
    running sum) and per-request tolerances of a block.

    ``tol[i] = tol_coef * (|q_i| + M)**2`` with M the largest norm seen so far, this block
    included (every cached entry is an earlier request). Returns (new M, index of the first row
    with a non-finite value or a squared norm above ``MAX_NORM2``, or -1).
    """
    bad = -1
    n = q.shape[0]
    for i in range(n):
        acc = np.float32(sqnorm(q[i]))  # a NaN or inf component makes it NaN or inf
        if not acc <= MAX_NORM2 and bad < 0:
            bad = i
        qnorm2[i] = acc
        norm = math.sqrt(np.float64(acc)) * (1.0 + 1e-6)
        if norm > max_norm:
            max_norm = norm
    for i in range(n):
        r = math.sqrt(np.float64(qnorm2[i])) + max_norm
        tol[i] = tol_coef * r * r
    return max_norm, bad


@nb.njit(cache=True, inline="always")
def offer(sq, req, slot, bsq, breq, bslot, nbest, keep):
    """Insert (sq, req, slot) into the best list ordered by (sq, req); return the new length."""
    pos = nbest
    while pos > 0 and (sq < bsq[pos - 1] or (sq == bsq[pos - 1] and req < breq[pos - 1])):
        pos -= 1
    if pos >= keep:
        return nbest
    j = nbest if nbest < keep else keep - 1
    while j > pos:
        bsq[j] = bsq[j - 1]
        breq[j] = breq[j - 1]
        bslot[j] = bslot[j - 1]
        j -= 1
    bsq[pos] = sq
    breq[pos] = req
    bslot[pos] = slot
    return nbest + 1 if nbest < keep else keep
