"""Exact k-nearest neighbours: FAISS flat search for candidates, distances recomputed in float64.

FAISS computes ``||x||^2 + ||y||^2 - 2 x.y`` in float32, which loses the small distances that
intrinsic-dimension estimators live on; the neighbours it returns are therefore re-measured
exactly (``||x - y||`` in float64) and re-sorted.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 2048


def knn(database: np.ndarray, k: int, queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices ``(m, k)`` of the ``k`` nearest rows of ``database``, sorted ascending.

    With ``queries=None`` the queries are the database rows themselves and each row's own index is
    excluded (so the first column is the nearest *other* point).
    """
    import faiss

    db = np.ascontiguousarray(database, dtype=np.float64)
    self_query = queries is None
    q = db if self_query else np.ascontiguousarray(queries, dtype=np.float64)
    n = len(db)
    k_avail = n - 1 if self_query else n
    if not 1 <= k <= k_avail:
        raise ValueError(f"k must be between 1 and {k_avail}, got {k}")
    k_search = min(k + 1, n) if self_query else k
    index = faiss.IndexFlatL2(db.shape[1])
    index.add(db.astype(np.float32))
    _, idx = index.search(q.astype(np.float32), k_search)
    idx = idx.astype(np.int64)
    if self_query:
        own = np.arange(n)[:, None]
        keep = idx != own
        # move the query's own index (wherever it landed) to the end, keep the first k others
        order = np.argsort(~keep, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)[:, :k]
    dist = np.empty(idx.shape, dtype=np.float64)
    for s in range(0, len(q), _CHUNK):
        diff = db[idx[s : s + _CHUNK]] - q[s : s + _CHUNK, None, :]
        dist[s : s + _CHUNK] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)
