"""``replay``: run a similarity cache over a sequence of request vectors.

Two engines share every decision (see :mod:`simcache.cache.kernels` for the distance, tie and
hit rules, and :mod:`simcache.cache.policies` for the policies):

* ``plain``: the reference. One search of the *current* cache per request, then the policy.
* ``block`` (default): one batched search of a whole block of requests against the cache as it
  was at the start of the block, then a compiled sequential pass that applies the policy request
  by request, ignoring candidates evicted inside the block and checking entries inserted (or
  whose key moved, CLS-LRU) inside the block directly. Its hit/miss sequence, served entries,
  distances, insertions and evictions are identical to the plain engine's (tested).

Input is streamed block by block (a memory-mapped array is never copied whole); memory is
O((capacity + block_size) * (d + block_size)) floats and the per-request log (22 bytes a request).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.cache import kernels as K
from simcache.cache.config import ReplayConfig
from simcache.cache.log import ReplayLog
from simcache.cache.search import Searcher, make_searcher
from simcache.cache.streams import request_blocks
from simcache.cache.threads import MIN_SPLIT_MACS, ThreadPlan, faiss_threads, single_threaded_blas

_FIELDS = ("outcome", "served", "distance", "inserted", "evicted")
#: candidates taken from each batched top-m search (the FAISS path)
N_CANDIDATES = 8
#: up to this capacity (flat CPU index) the block engine runs its own block products and row
#: scans (:func:`simcache.cache.kernels.serve_chunk_dense`) instead of a FAISS top-m search per
#: block (measured faster at every capacity up to 10,000; the products of a block take
#: ``block * (capacity + block)`` floats)
DENSE_MAX_CAPACITY = 16384
#: requests read from the input (and handed to the compiled dense loop) at once
READ_CHUNK = 8192


def default_block_size(capacity: int) -> int:
    """Block size when none is given (chosen from timings on the replay-speed benchmark's trace,
    ``python -m benchmarks.replay_threads``; ``block_size=`` overrides it).

    Row scans (flat CPU caches): 48 per 1,000 entries (rounded), within [24, 240] --
    each request's row holds a column for every request of its block before it (the block's
    Gram matrix, about B / 2C of the block-versus-cache products), while every block restarts
    the tiles and resets its column state (O(C)). A multiple of the tiles' ``ROWS`` (6): a
    smaller last tile of a block costs a whole one. FAISS: 1,024 queries per search amortise the
    search's fixed costs while few of the C entries go stale within a block.
    """
    if capacity <= DENSE_MAX_CAPACITY:
        return int(min(240, max(24, 48 * round(capacity / 1000))))
    return 1024


def _chunk_rows(block_size: int) -> int:
    """Rows read from the input at once: whole blocks, about ``READ_CHUNK``."""
    return block_size * max(1, READ_CHUNK // block_size)


class _Engine:
    """State shared by both engines: slots, policy state, searcher, output log."""

    def __init__(self, cfg: ReplayConfig, dim: int, block_size: int) -> None:
        if dim < 1:
            raise UserError("vectors must have at least one dimension")
        self.policy = cfg.make_policy()
        self.metric = K.METRIC_CODES[cfg.metric]
        self.dim = dim
        cap = cfg.capacity
        self.slots = np.zeros((cap, dim), dtype=np.float32)
        self.slot_id = np.full(cap, -1, dtype=np.int64)  # what the log records (inserting request)
        self.slot_version = np.full(cap, -1, dtype=np.int64)  # write count at insertion / key move (staleness)
        self.slot_owner = np.full(cap, -1, dtype=np.int64)  # user code of the inserting request
        self.counters = np.zeros(K.N_COUNTERS, dtype=np.int64)
        self.meta, self.fmeta, self.glob = self.policy.new_state()
        self.fpar = self.policy.rule_parameters()
        self.kern = self.policy.kernels().refs()
        self.keep = 2 if self.policy.needs_second else 1
        self.key = K.seed_key(cfg.seed)
        self.searcher: Searcher = make_searcher(cfg.index, cfg.device, self.slots, self.slot_version, self.counters)
        self.block_size = block_size
        self.slot_norm2 = np.zeros(cap, dtype=np.float32)  # kept by the block kernels
        # [tolerance coefficient, largest norm seen so far] (see kernels.block_norms)
        self.norm_state = np.array([K.TOL_FACTOR * self.searcher.tol_scale * (dim + 4) * 2.0**-24, 0.0])
        macs = block_size * (cap + block_size) * dim
        self.plan = ThreadPlan(cfg.threads, auto_most=1 if self.dense and macs < MIN_SPLIT_MACS else None)
        self.parallel = True  # the current chunk's choice: the block products on two threads

    def prepare(self, raw: np.ndarray, t0: int, norms: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checked, contiguous float32 (normalised for cosine) block; its squared norms; tolerances
        (``norms`` False: left to the dense kernel, which computes and checks them block by block)."""
        if raw.ndim != 2 or raw.shape[1] != self.dim:
            raise UserError(f"request vectors must have dimension {self.dim}, got a block of shape {raw.shape}")
        q = np.ascontiguousarray(raw, dtype=np.float32)
        if not q.flags.writeable:
            q = q.copy()  # read-only memory map: the compiled loops take writeable arrays
        if self.metric == K.METRIC_CODES["cosine"]:
            out = np.empty_like(q)
            bad = K.normalize_rows(q, out)  # (a non-finite row normalises to non-finite: caught below)
            if bad >= 0:
                raise UserError(f"request {t0 + bad} is the zero vector, which has no cosine distance")
            q = out
        qnorm2 = np.empty(q.shape[0], dtype=np.float32)
        tol = np.empty(q.shape[0], dtype=np.float64)
        if norms:
            self.norm_state[1], bad = K.block_norms(q, qnorm2, tol, self.norm_state[0], self.norm_state[1])
            check_row(q, t0, bad)
        return q, qnorm2, tol

    @contextlib.contextmanager
    def chunk(self, rows: int) -> Iterator[None]:
        """Run one chunk with the thread count the plan chooses (:class:`ThreadPlan`): the block
        products on two threads or on the calling thread, FAISS on that many threads."""
        with self.plan.chunk(rows) as n, faiss_threads(n):
            self.parallel = n > 1
            yield

    def block_searches(self, q: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, tuple]]:
        """The searcher's search of each block of ``q`` in turn (the top-m path): (b0, b1, the
        block's Gram matrix, (dist, slot, version)), each block searched when the previous one is
        done."""
        for b0 in range(0, q.shape[0], self.block_size):
            qb = q[b0 : b0 + self.block_size]
            yield b0, b0 + qb.shape[0], self.searcher.gram(qb), self.searcher.search(qb, N_CANDIDATES)

    def kernel_args(self) -> tuple:
        """Policy kernels and cache state as the compiled loops take them."""
        k = self.kern
        return (k.decide, k.touch, k.insert, k.remove, k.victim, k.move, self.meta, self.fmeta, self.glob,
                self.slots, self.slot_id, self.slot_version, self.slot_owner, self.counters)  # fmt: skip

    @property
    def dense(self) -> bool:
        """Whether the block engine uses its own block products and row scans instead of the
        searcher's top-m search (flat CPU caches up to ``DENSE_MAX_CAPACITY``)."""
        return self.searcher.dense_capable and self.policy.capacity <= DENSE_MAX_CAPACITY

    def fill(self, vectors: np.ndarray) -> None:
        """Make the cache hold ``vectors`` (one entry per row, ids 0..) without replaying them."""
        full, norm2, _ = self.prepare(vectors, 0)
        n = full.shape[0]
        self.slots[:n] = full
        self.slot_norm2[:n] = norm2
        self.slot_id[:n] = np.arange(n)
        self.slot_version[:n] = np.arange(n)
        self.counters[K.N_USED] = n
        self.counters[K.N_WRITES] = n


def check_row(q: np.ndarray, t0: int, bad: int) -> None:
    """Raise for request ``t0 + bad`` (row ``bad`` of ``q``) if ``bad >= 0``: a row whose squared norm
    is not finite or above ``MAX_NORM2`` (:func:`simcache.cache.kernels.block_norms`)."""
    if bad < 0:
        return
    if not np.isfinite(q[bad]).all():
        raise UserError(f"request {t0 + bad} has a non-finite (NaN or inf) component")
    raise UserError(f"request {t0 + bad} has a squared norm above {K.MAX_NORM2:g}, too large for "
                    "float32 distances; rescale the vectors")  # fmt: skip


def _run_block(eng: _Engine, q, owner, qnorm2, tol, t0, outs) -> None:
    if eng.dense:
        bad = K.serve_chunk_dense(q, owner, t0, qnorm2, tol, eng.norm_state, eng.block_size, eng.parallel, eng.keep,
                                  eng.metric, eng.key, eng.fpar, *eng.kernel_args(), eng.slot_norm2,
                                  *outs)  # fmt: skip
        check_row(q, t0, bad)
        return
    for b0, b1, gram, (dist, slot, version) in eng.block_searches(q):
        qb = q[b0:b1]
        block_outs = tuple(o[b0:b1] for o in outs)
        before = eng.slot_version.copy() if eng.searcher.tracks_inserts else None
        K.serve_block(
            qb, owner[b0:b1], t0 + b0, slot, version, dist, gram, qnorm2[b0:b1], tol[b0:b1], eng.searcher.exact,
            eng.keep, eng.metric, eng.key, eng.fpar, *eng.kernel_args(), eng.slot_norm2, *block_outs,
        )  # fmt: skip
        if before is not None:
            eng.searcher.after_insert(np.flatnonzero(eng.slot_version != before))


def _run_plain(eng: _Engine, q, owner, qnorm2, tol, t0, outs) -> None:
    no_gram = np.zeros((1, 1), dtype=np.float32)  # a one-request block has no earlier insertions
    for i in range(q.shape[0]):
        writes = int(eng.counters[K.N_WRITES])
        dist, slot, version = eng.searcher.search(q[i : i + 1], N_CANDIDATES)
        K.serve_block(
            q[i : i + 1], owner[i : i + 1], t0 + i, slot, version, dist, no_gram, qnorm2[i : i + 1], tol[i : i + 1],
            eng.searcher.exact, eng.keep, eng.metric, eng.key, eng.fpar, *eng.kernel_args(), eng.slot_norm2,
            *(o[i : i + 1] for o in outs),
        )  # fmt: skip
        if eng.searcher.tracks_inserts and eng.counters[K.N_WRITES] != writes:  # inserted or moved a key
            eng.searcher.after_insert(np.flatnonzero(eng.slot_version >= writes))


def _owner_codes(owners: np.ndarray | None, exclude_self: bool) -> np.ndarray | None:
    """Checked per-request owner codes when ``exclude_self`` is on (else None: nothing hidden)."""
    if not exclude_self:
        return None
    if owners is None:
        raise UserError("exclude_self needs the requests' users (a trace with a user_id column)")
    owners = np.ascontiguousarray(owners, dtype=np.int64)
    if owners.ndim != 1 or (owners.size and owners.min() < 0):
        raise UserError("owners must be a 1-D array of non-negative user codes")
    return owners


def search_seconds(vectors: np.ndarray, capacity: int, *, block_size: int | None = None,
                   threads: int | None = None) -> float:  # fmt: skip
    """Seconds the block engine spends on its searches alone (L2, flat index, CPU): every block of
    ``vectors`` searched as :func:`replay` searches it, against a cache that stays full of the
    first ``capacity`` vectors. With a replay's time it splits the replay into search and
    sequential pass (``benchmarks/replay_speed.py``). ``threads``: as in :class:`ReplayConfig`
    (1: the block products on the calling thread, FAISS on one thread). The row-scan path's
    search is its block products (its row scans belong to the sequential pass).
    """
    cfg = ReplayConfig(capacity=capacity, index="flat", device="cpu", block_size=block_size, threads=threads)
    block = cfg.block_size or default_block_size(cfg.capacity)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] < capacity:
        raise UserError(f"need an (n, d) array with n >= capacity = {capacity}")
    eng = _Engine(cfg, vectors.shape[1], block)
    eng.fill(vectors[:capacity])
    with single_threaded_blas():
        start = time.perf_counter()
        step = _chunk_rows(block)
        for c0 in range(0, vectors.shape[0], step):
            q, qnorm2, _ = eng.prepare(vectors[c0 : c0 + step], c0, norms=not eng.dense)
            with eng.chunk(q.shape[0]):
                if eng.dense:
                    K.search_chunk_dense(q, eng.block_size, eng.parallel, eng.slots, eng.counters)
                    continue
                for _ in eng.block_searches(q):
                    pass
        return time.perf_counter() - start


def replay(vectors: Any, config: ReplayConfig | None = None, /, *, owners: np.ndarray | None = None,
           progress: bool = False, **settings: Any) -> ReplayLog:  # fmt: skip
    """Replay requests through a similarity cache and record what happened to each.

    ``vectors``: (n, d) float32 array (a memory-mapped view is streamed block by block) or an
    iterable of (n_i, d) blocks in request order. ``config``: a :class:`ReplayConfig`; or give
    its fields as keywords (``replay(x, policy="lru", capacity=100, radius=0.5)``), or both (the
    keywords then change the config). See :class:`ReplayConfig` for every field: policy and its
    ``params``, ``radius`` (hit iff d(x, y*) <= radius in ``metric``: "l2" Euclidean, not squared;
    "cosine" 1 - cosine similarity, vectors normalised internally), ``cost``, ``index`` ("flat"
    exact, "hnsw"/"ivf" approximate; :mod:`simcache.cache.search`), ``engine`` ("block" fast,
    "plain" the reference), ``device``, ``threads`` (None: chosen by measurement, see
    :class:`~simcache.cache.threads.ThreadPlan`; 1: the calling thread only; same results), ``seed``, ``exclude_self`` (a request never sees entries its own user inserted:
    then ``owners`` must give each request's user as a non-negative integer code, shape (n,)).
    """
    if config is None:
        cfg = ReplayConfig(**settings)
    else:
        cfg = config.with_(**settings) if settings else config
    block = cfg.block_size or default_block_size(cfg.capacity)
    owners = _owner_codes(owners, cfg.exclude_self)
    # input is read in chunks of whole blocks (bounded memory); the row-scan kernel runs a whole
    # chunk per call, the top-m path one block per search
    n, dim, blocks = request_blocks(vectors, _chunk_rows(block))
    policy_description = cfg.make_policy().describe()
    attrs = dict(policy=cfg.policy, capacity=cfg.capacity, radius=cfg.radius, metric=cfg.metric,
                 params=policy_description)  # fmt: skip
    started = time.perf_counter()
    log = ReplayLog.empty(n, **attrs) if n is not None else None
    parts: list[ReplayLog] = []
    eng: _Engine | None = None
    t0 = 0
    run = _run_block if cfg.engine == "block" else _run_plain
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="req", desc=f"replay {cfg.policy} C={cfg.capacity}")
    try:
        with single_threaded_blas():
            for raw in blocks:
                if eng is None:
                    eng = _Engine(cfg, int(dim if dim is not None else raw.shape[1]), block)
                q, qnorm2, tol = eng.prepare(raw, t0, norms=not (run is _run_block and eng.dense))
                b = q.shape[0]
                if log is not None:
                    outs = tuple(getattr(log, f)[t0 : t0 + b] for f in _FIELDS)
                else:
                    parts.append(ReplayLog.empty(b))
                    outs = tuple(getattr(parts[-1], f) for f in _FIELDS)
                if b:
                    owner = owners[t0 : t0 + b] if owners is not None else np.full(b, -1, dtype=np.int64)
                    if owner.shape[0] != b:
                        raise UserError(f"owners has {owners.shape[0]} entries, fewer than the requests")
                    with eng.chunk(b):
                        run(eng, q, owner, qnorm2, tol, t0, outs)
                t0 += b
                if bar is not None:
                    bar.update(b)
            if eng is None and dim is not None:
                eng = _Engine(cfg, dim, block)  # validates an empty (0, d) input
    finally:
        if bar is not None:
            bar.close()
    if log is None:
        log = ReplayLog.concatenate(parts, **attrs)
    log.stats = {
        "engine": cfg.engine,
        "index": cfg.index,
        "searcher": (eng.searcher.name + ("-dense" if cfg.engine == "block" and eng.dense else "")) if eng else None,
        "block_size": block if cfg.engine == "block" else 1,
        "exact_fallback_scans": int(eng.counters[K.N_FULL_SCANS]) if eng is not None else 0,
        "seconds": time.perf_counter() - started,
        "threads": dict(eng.plan.used) if eng is not None else {},
        "seed": cfg.seed,
    }
    return log
