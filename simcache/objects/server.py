"""The server's answer: batched k-NN of many requests over the whole catalogue with FAISS.

One L2 search serves the three metrics (see :mod:`simcache.objects.metrics`): the catalogue is
indexed as :func:`~simcache.objects.metrics.l2_vectors` and queried with
:func:`~simcache.objects.metrics.l2_queries`. ``flat`` is exact (up to float32 ties); ``ivf`` and
``hnsw`` are approximate. Requests are searched in large batches, never one at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.objects.catalogue import as_catalogue
from simcache.objects.metrics import PreparedCatalogue, l2_queries, l2_vectors, prepare_catalogue, prepare_queries

#: requests per FAISS search call
SEARCH_BATCH = 16384


def build_index(cat: PreparedCatalogue, index: str = "flat", options: dict[str, Any] | None = None, seed: int = 0):
    """A FAISS index over the catalogue's L2 vectors (``options``: ``nlist``/``nprobe`` for IVF,
    ``m``/``ef_search``/``ef_construction`` for HNSW)."""
    import faiss

    opts = dict(options or {})
    v = l2_vectors(cat)
    dim = v.shape[1]
    if index == "flat":
        idx = faiss.IndexFlatL2(dim)
    elif index == "ivf":
        nlist = int(opts.get("nlist") or max(1, min(int(4 * len(v) ** 0.5), len(v) // 39)))
        quantizer = faiss.IndexFlatL2(dim)
        idx = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_L2)
        idx.cp.seed = int(seed)
        idx.train(v)
        idx.nprobe = int(opts.get("nprobe", 16))
    elif index == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, int(opts.get("m", 32)))
        idx.hnsw.efConstruction = int(opts.get("ef_construction", 128))
        idx.hnsw.efSearch = int(opts.get("ef_search", 128))
    else:
        raise UserError(f"unknown index {index!r}; expected flat, ivf or hnsw")
    idx.add(v)
    return idx


def search_prepared(idx, q: np.ndarray, cat: PreparedCatalogue, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (n, k), L2 squared distances float32 (n, k)) for prepared requests."""
    dist, ids = idx.search(l2_queries(q, cat), k)
    return ids, dist


def server_answers(vectors: np.ndarray, catalogue: Any, k: int, *, metric: str = "l2", index: str = "flat",
                   options: dict[str, Any] | None = None, seed: int = 0) -> np.ndarray:  # fmt: skip
    """The k nearest catalogue objects of every request, (n, k) int64, searched in batches of
    :data:`SEARCH_BATCH` (``catalogue``: a :class:`~simcache.objects.catalogue.Catalogue` or an
    (N, d) array). With ``index="flat"`` this is the exact answer up to float32 ties."""
    vecs, bias = as_catalogue(catalogue)
    cat = prepare_catalogue(vecs, bias, metric)
    if not 1 <= k <= cat.size:
        raise UserError(f"k must be between 1 and the catalogue size {cat.size}, got {k}")
    idx = build_index(cat, index, options, seed)
    x = np.asarray(vectors)
    out = np.empty((x.shape[0], k), np.int64)
    for b0 in range(0, x.shape[0], SEARCH_BATCH):
        q, _, _ = prepare_queries(x[b0 : b0 + SEARCH_BATCH], cat, b0)
        out[b0 : b0 + q.shape[0]] = search_prepared(idx, q, cat, k)[0]
    return out
