"""The three metrics of the object cache and their reduction to one L2 search.

For a request ``x`` and an object ``o`` with vector ``w_o`` (and bias ``b_o``), the distance ``d``
and the dissimilarity cost ``c_d = h(d)`` (``h`` chosen by ``dissimilarity``, see
:mod:`simcache.objects.kernels`) are:

* ``l2``: ``d = ||x - w_o||`` (Euclidean, not squared).
* ``cosine``: ``d = 1 - cos(x, w_o)``, computed as ``||x/|x| - w_o/|w_o| ||^2 / 2`` on the
  normalised float32 vectors.
* ``ip``: objects ranked by the model's score ``s(x, o) = <x, w_o> + b_o`` (RecVAE: decoder weight
  row and bias); ``d = s*(x) - s(x, o)``, the score gap to the request's best object over the whole
  catalogue (``s*(x) = max_o s(x, o)``). A constant per request shifts every cost of that request
  alike, so answers and gains are those of the raw score ``-s``; the gap keeps ``c_d >= 0`` with
  ``c_d = 0`` for the server's first item.

**One L2 path for all three** (FAISS, approximate indexes): ``l2`` searches the raw vectors,
``cosine`` the normalised ones, ``ip`` the augmented ones (Bachrach et al., RecSys 2014): objects
``[w_o, b_o, sqrt(M^2 - ||[w_o, b_o]||^2)]`` with ``M = max_o ||[w_o, b_o]||``, queries
``[x, 1, 0]``; then ``||q - v_o||^2 = ||x||^2 + 1 + M^2 - 2 s(x, o)``, so L2 order is score order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recvae.errors import UserError
from simcache.objects import kernels as K

METRICS = tuple(K.METRICS)


@dataclass(frozen=True)
class PreparedCatalogue:
    """A catalogue ready for the kernels: ``items`` (n, d) float32 C-contiguous (normalised for
    ``cosine``), ``bias`` (n,) float64 (zeros except for ``ip``), ``norm2`` (n,) float64 exact
    squared norms, ``max_norm`` the largest norm (times 1 + 1e-6)."""

    metric: str
    items: np.ndarray
    bias: np.ndarray
    norm2: np.ndarray
    max_norm: float

    @property
    def size(self) -> int:
        return int(self.items.shape[0])

    @property
    def dim(self) -> int:
        return int(self.items.shape[1])


def check_metric(metric: str) -> int:
    """The metric's code; UserError for an unknown one."""
    if metric not in K.METRICS:
        raise UserError(f"unknown metric {metric!r}; expected one of {', '.join(K.METRICS)}")
    return K.METRICS[metric]


def _prepared_rows(x: np.ndarray, metric: str, what: str, row: str, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(contiguous writeable float32 rows, unit-normalised for ``cosine``; their exact squared norms)
    of catalogue objects or requests; a non-float dtype, a non-finite row or (cosine) a zero row is
    a UserError naming ``row`` and its index plus ``offset``."""
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{what} must be floating point, got {x.dtype}")
    v = np.ascontiguousarray(x, dtype=np.float32)
    if not v.flags.writeable:
        v = v.copy()
    norm2 = np.empty(v.shape[0], np.float64)
    bad = K.sq_norms(v, norm2)
    if bad >= 0:
        raise UserError(f"{row}{offset + bad} has a non-finite (NaN or inf) component")
    if metric == "cosine":
        out = np.empty_like(v)
        zero = K.normalize_rows(v, out)
        if zero >= 0:
            raise UserError(f"{row}{offset + zero} is the zero vector, which has no cosine distance")
        v = out
        K.sq_norms(v, norm2)
    return v, norm2


def prepare_catalogue(vectors: np.ndarray, bias: np.ndarray | None, metric: str) -> PreparedCatalogue:
    """Validate the object vectors (2-D, finite, non-zero for cosine) and prepare them for ``metric``."""
    check_metric(metric)
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise UserError(f"catalogue vectors must be a non-empty (n, d) matrix, got shape {tuple(v.shape)}")
    b = np.zeros(v.shape[0], np.float64)
    if bias is not None and metric == "ip":
        b = np.asarray(bias, dtype=np.float32).astype(np.float64)
        if b.shape != (v.shape[0],):
            raise UserError(f"catalogue bias must have one value per object ({v.shape[0]}), got shape {b.shape}")
        if not np.isfinite(b).all():
            raise UserError(f"catalogue bias of object {int(np.flatnonzero(~np.isfinite(b))[0])} is not finite")
    v, norm2 = _prepared_rows(v, metric, "catalogue vectors", "catalogue object ", 0)
    return PreparedCatalogue(metric, v, b, norm2, float(np.sqrt(norm2.max())) * (1 + 1e-6))


def prepare_queries(raw: np.ndarray, cat: PreparedCatalogue, t0: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prepared float32 block, exact squared norms, per-request tolerance) for the kernels."""
    if raw.ndim != 2 or raw.shape[1] != cat.dim:
        raise UserError(f"request vectors must have the catalogue's dimension {cat.dim}, got shape {tuple(raw.shape)}")
    q, n2 = _prepared_rows(raw, cat.metric, "request vectors", "request ", t0)
    norm = np.sqrt(n2)
    coef = K.TOL_FACTOR * (cat.dim + 4) * K.U32
    if cat.metric == "ip":
        tol = coef * norm * cat.max_norm
    else:
        tol = coef * (norm + cat.max_norm) ** 2
    return q, n2, tol


def l2_vectors(cat: PreparedCatalogue) -> np.ndarray:
    """The catalogue as vectors whose L2 order is the metric's order (augmented for ``ip``)."""
    if cat.metric != "ip":
        return cat.items
    wb2 = cat.norm2 + cat.bias**2
    m2 = float(wb2.max())
    extra = np.sqrt(np.maximum(m2 - wb2, 0.0))
    return np.ascontiguousarray(np.column_stack([cat.items, cat.bias, extra]), dtype=np.float32)


def l2_queries(q: np.ndarray, cat: PreparedCatalogue) -> np.ndarray:
    """Prepared requests as L2 queries against :func:`l2_vectors` (``[x, 1, 0]`` for ``ip``)."""
    if cat.metric != "ip":
        return q
    out = np.zeros((q.shape[0], q.shape[1] + 2), np.float32)
    out[:, : q.shape[1]] = q
    out[:, q.shape[1]] = 1.0
    return out
