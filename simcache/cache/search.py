"""Candidate search over the cache slots: exact flat search (FAISS CPU, FAISS GPU or torch), HNSW, IVF.

The engines own the slot arrays (``slots`` (C, d) float32, ``slot_version`` (C,) int64: the write
count at which the entry in the slot was inserted, the number of used slots in
``counters[N_USED]``); a searcher reads them and returns, for each query, ``m`` candidates as
(float32 squared L2 distance, slot, version of the entry in that slot at search time), padded with
slot -1 / distance +inf. The kernels treat these only as *candidates*: each is
re-checked exactly, a candidate whose slot has since been rewritten is ignored, and with an exact
searcher the kernels prove the list complete or fall back to an exact scan.

Removal strategy of the approximate indexes: FAISS HNSW cannot remove and IVF removal scans the
whole index, so neither removes anything. Entries are added with id ``version * C + slot``;
an evicted entry stays in the index as a tombstone and is recognised as stale when its slot holds
a newer version. When tombstones outnumber the capacity, the index is rebuilt from the live slots
(amortised O(1) rebuild work per insertion). IVF is trained on the cache contents the first time
the cache is full (exact search is used until then).
"""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np
from scipy.linalg import blas as _blas

from recvae.errors import UserError
from simcache.cache.kernels.signatures import N_USED
from simcache.cache.options import DEVICES, INDEXES
from simcache.cache.threads import faiss_threads


def _pad(dist: np.ndarray, idx: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad (n, k) search results to (n, m) with +inf / -1."""
    n, k = idx.shape
    if k == m:
        return np.ascontiguousarray(dist, dtype=np.float32), np.ascontiguousarray(idx, dtype=np.int64)
    d_out = np.full((n, m), np.inf, dtype=np.float32)
    i_out = np.full((n, m), -1, dtype=np.int64)
    d_out[:, :k] = dist
    i_out[:, :k] = idx
    return d_out, i_out


def _empty(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full((n, m), np.inf, np.float32), np.full((n, m), -1, np.int64), np.full((n, m), -1, np.int64)


class Searcher:
    """Base class. ``exact``: whether the top-m lists are exact up to float32 rounding."""

    exact = True
    #: multiplier on the float32 tolerance (devices with other reduction orders get more room)
    tol_scale = 1.0
    name = "flat"
    #: whether :meth:`after_insert` must be called (the searcher keeps its own copy of the entries)
    tracks_inserts = False
    #: whether the block engine may replace this searcher's search by its own compiled dense
    #: products over the slot array (:mod:`simcache.cache.kernels.rowscan`): an exact CPU search that
    #: keeps no state of its own
    dense_capable = False

    def __init__(self, slots: np.ndarray, slot_version: np.ndarray, counters: np.ndarray) -> None:
        self.slots = slots
        self.slot_version = slot_version
        self.counters = counters

    def search(self, q: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dist (n, m) float32, slot (n, m) int64, slot version (n, m) int64) for queries ``q``."""
        raise NotImplementedError

    def gram(self, q: np.ndarray) -> np.ndarray:
        """``q @ q.T`` as C-contiguous float32 (n, n), used to pre-filter entries inserted within a
        block; only the strictly lower triangle (``[i, p]`` with p < i) is meaningful (BLAS syrk
        computes one triangle, half the work of a full product)."""
        if q.shape[0] < 2:
            return np.zeros((q.shape[0], q.shape[0]), dtype=np.float32)
        return _blas.ssyrk(1.0, q.T, trans=1).T  # (q.T).T @ q.T, upper in Fortran = lower in C order

    def after_insert(self, written: np.ndarray) -> None:
        """Called with the slots rewritten since the last call (after a block or a request)."""

    def _with_versions(self, dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        version = np.where(idx >= 0, self.slot_version[np.maximum(idx, 0)], -1)
        return dist, idx, version


#: below this many multiply-adds a search runs on one thread: waking an OpenMP team costs more
#: than it saves, and on a busy machine its barriers can cost milliseconds
SMALL_SEARCH = 4_000_000


def knn_cpu(q: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``faiss.knn`` (squared L2), single-threaded for small problems."""
    if q.shape[0] * base.shape[0] * base.shape[1] >= SMALL_SEARCH:
        return faiss.knn(q, base, k)
    with faiss_threads(1):
        return faiss.knn(q, base, k)


class FlatCPU(Searcher):
    """Exact search with ``faiss.knn`` directly on the slot array (nothing to maintain)."""

    name = "flat"
    dense_capable = True

    def search(self, q, m):
        n_used = int(self.counters[N_USED])
        if n_used == 0:
            return _empty(q.shape[0], m)
        dist, idx = knn_cpu(q, self.slots[:n_used], min(m, n_used))
        return self._with_versions(*_pad(dist, idx, m))


class FlatFaissGPU(Searcher):
    """Exact search with ``faiss.knn_gpu`` (FAISS GPU build)."""

    name = "flat-faiss-gpu"
    tol_scale = 4.0

    def __init__(self, slots, slot_version, counters) -> None:
        super().__init__(slots, slot_version, counters)
        self.res = faiss.StandardGpuResources()

    def search(self, q, m):
        n_used = int(self.counters[N_USED])
        if n_used == 0:
            return _empty(q.shape[0], m)
        dist, idx = faiss.knn_gpu(self.res, q, self.slots[:n_used], min(m, n_used))
        return self._with_versions(*_pad(dist, idx, m))


class FlatTorch(Searcher):
    """Exact search as a float32 matrix product on a torch device (GPU, or CPU for tests).

    A device copy of the slots is kept and only rewritten slots are uploaded after each block.
    """

    name = "flat-torch"
    tol_scale = 4.0
    tracks_inserts = True

    def __init__(self, slots, slot_version, counters, device: str = "cuda") -> None:
        import torch

        super().__init__(slots, slot_version, counters)
        self.torch = torch
        self.device = torch.device(device)
        self.dev_slots = torch.from_numpy(slots).to(self.device)
        self.dev_norm2 = (self.dev_slots * self.dev_slots).sum(1)

    def after_insert(self, written):
        if written.size == 0:
            return
        torch = self.torch
        idx = torch.from_numpy(np.ascontiguousarray(written, dtype=np.int64)).to(self.device)
        rows = torch.from_numpy(self.slots[written]).to(self.device)
        self.dev_slots.index_copy_(0, idx, rows)
        self.dev_norm2.index_copy_(0, idx, (rows * rows).sum(1))

    def _matmul(self, a, b):
        torch = self.torch
        if self.device.type == "cuda":
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would break the error bound
            try:
                return a @ b
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old
        return a @ b

    def search(self, q, m):
        n_used = int(self.counters[N_USED])
        if n_used == 0:
            return _empty(q.shape[0], m)
        torch = self.torch
        qd = torch.from_numpy(q).to(self.device)
        s = self.dev_slots[:n_used]
        dist = (qd * qd).sum(1, keepdim=True) + self.dev_norm2[:n_used][None, :] - 2.0 * self._matmul(qd, s.T)
        k = min(m, n_used)
        vals, idx = torch.topk(dist, k, dim=1, largest=False, sorted=True)
        return self._with_versions(*_pad(vals.cpu().numpy(), idx.cpu().numpy(), m))

    def gram(self, q):
        qd = self.torch.from_numpy(q).to(self.device)
        return self._matmul(qd, qd.T).cpu().numpy()


class Tombstoned(Searcher):
    """Approximate index (HNSW or IVF) with tombstones and periodic rebuild; see module doc."""

    exact = False
    tracks_inserts = True

    def __init__(self, slots, slot_version, counters, kind: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(slots, slot_version, counters)
        self.kind = kind
        self.name = kind
        self.options = dict(options or {})
        self.capacity, self.dim = slots.shape
        self.index: Any = None
        self.n_indexed = 0
        self.trained = kind == "hnsw"
        self._new_index()

    def _new_index(self) -> None:
        d = self.dim
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(d, int(self.options.get("M", 32)))
            inner.hnsw.efSearch = int(self.options.get("efSearch", 64))
            inner.hnsw.efConstruction = int(self.options.get("efConstruction", 64))
            self._inner = inner
            self.index = faiss.IndexIDMap(inner)
        elif self.trained:
            self.index.reset()
        self.n_indexed = 0

    def _train_ivf(self) -> None:
        n_used = int(self.counters[N_USED])
        nlist = int(self.options.get("nlist", max(1, round(math.sqrt(self.capacity)))))
        nlist = max(1, min(nlist, n_used // 39 if n_used >= 39 else 1))
        quantizer = faiss.IndexFlatL2(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_L2)
        index.train(self.slots[:n_used])
        index.nprobe = int(self.options.get("nprobe", max(1, nlist // 8)))
        self._quantizer = quantizer
        self.index = index
        self.trained = True
        self.n_indexed = 0

    def _ids(self, written: np.ndarray) -> np.ndarray:
        return self.slot_version[written] * self.capacity + written

    def after_insert(self, written):
        n_used = int(self.counters[N_USED])
        if not self.trained:
            if n_used < self.capacity:
                return
            self._train_ivf()
            written = np.arange(n_used)
        if self.n_indexed + written.size > 2 * self.capacity:  # tombstones > capacity: rebuild
            self._new_index()
            written = np.arange(n_used)
        if written.size:
            self.index.add_with_ids(np.ascontiguousarray(self.slots[written]), self._ids(written))
            self.n_indexed += written.size

    def search(self, q, m):
        n_used = int(self.counters[N_USED])
        if n_used == 0:
            return _empty(q.shape[0], m)
        if not self.trained:
            dist, idx = knn_cpu(q, self.slots[:n_used], min(m, n_used))
            return self._with_versions(*_pad(dist, idx, m))
        dist, ids = self.index.search(q, m)
        ok = ids >= 0
        slot = np.where(ok, ids % self.capacity, -1)
        version = np.where(ok, ids // self.capacity, -1)
        return dist.astype(np.float32, copy=False), slot.astype(np.int64), version.astype(np.int64)


def gpu_available() -> str | None:
    """'faiss' if the FAISS GPU build sees a GPU, 'torch' if torch sees CUDA, else None."""
    try:
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            return "faiss"
    except Exception:  # pragma: no cover - depends on the build
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return "torch"
    except Exception:  # pragma: no cover
        pass
    return None


def make_searcher(
    index: str, device: str, slots: np.ndarray, slot_version: np.ndarray, counters: np.ndarray
) -> Searcher:
    """The searcher for ``index`` (flat, hnsw, ivf) on ``device`` (auto, cpu, cuda)."""
    if index not in INDEXES:
        raise UserError(f"unknown index {index!r}; expected one of {', '.join(INDEXES)}")
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if index != "flat":
        if device == "cuda":
            raise UserError(f"index {index!r} runs on the CPU only; use --device cpu or auto")
        return Tombstoned(slots, slot_version, counters, index)
    gpu = gpu_available() if device in ("auto", "cuda") else None
    if device == "cuda" and gpu is None:
        raise UserError("device 'cuda' requested but neither FAISS GPU nor torch CUDA is available")
    if gpu == "faiss":
        return FlatFaissGPU(slots, slot_version, counters)
    if gpu == "torch":
        return FlatTorch(slots, slot_version, counters, "cuda")
    return FlatCPU(slots, slot_version, counters)
