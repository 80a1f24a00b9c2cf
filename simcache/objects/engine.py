"""``replay_objects``: replay requests against an object cache over a catalogue, under a policy.

Per block of B requests the engine makes one float32 product of the block with the whole
catalogue (``G = Q V^T``: the same work as the server's batched search); a compiled pass then
serves each request in order: the exact k nearest objects (the server's answer) and the exact
nearest cached objects are selected from G's row (exact keys recomputed for the few candidates,
see :mod:`simcache.objects.kernels`), the optimal answer for the current content is served and
costed, and the policy's ``update`` kernel runs. Memory: B x N floats for G plus the log.

With ``index="ivf"``/``"hnsw"`` the answer's uncached objects come from an approximate FAISS
index over the catalogue (one batched search per block; AÇAI's setting); the cached ones, the
server's list and every cost are still exact.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.cache.streams import request_blocks
from simcache.cache.threads import MIN_SPLIT_MACS, ThreadPlan, numpy_blas_threads
from simcache.objects import kernels as K
from simcache.objects.catalogue import as_catalogue
from simcache.objects.config import ObjectReplayConfig
from simcache.objects.greedy import GreedyFit, fit_greedy
from simcache.objects.log import ObjectReplayLog
from simcache.objects.metrics import PreparedCatalogue, prepare_catalogue, prepare_queries
from simcache.objects.policies import OBJECT_POLICIES, Setup

#: floats of the block-by-catalogue product G (16 MiB)
PRODUCT_FLOATS = 1 << 22
#: extra candidates kept in a selection band before a row is evaluated exactly
BAND_CAP = 64


def default_block_size(n_objects: int) -> int:
    """Requests per product: G holds about :data:`PRODUCT_FLOATS` floats, 16 <= B <= 1024."""
    return int(min(1024, max(16, 16 * (PRODUCT_FLOATS // max(1, n_objects) // 16))))


class _Cache:
    """Slots and policy state of one replay (see :mod:`simcache.objects.kernels` for the layout)."""

    def __init__(self, policy, n_objects: int) -> None:
        cap = policy.capacity
        self.slot_obj = np.full(cap, -1, np.int64)
        self.obj_slot = np.full(n_objects, -1, np.int64)
        self.slot_req = np.full(cap, -1, np.int64)
        self.free = np.arange(cap - 1, -1, -1, dtype=np.int64)  # the next slot used is free[n_free - 1]
        self.cstate = np.zeros(K.CSTATE_SIZE, np.int64)
        self.cstate[K.N_FREE] = cap
        self.meta, self.glob, self.fstate = policy.new_state()

    def preload(self, objects: np.ndarray) -> None:
        objects = np.asarray(objects, dtype=np.int64)
        if len(np.unique(objects)) != len(objects) or len(objects) > len(self.slot_obj):
            raise ValueError("initial objects must be distinct and at most the capacity")
        for o in objects:
            K.cache_insert(int(o), K.PRELOADED, self.slot_obj, self.obj_slot, self.slot_req, self.free, self.cstate)

    def args(self) -> tuple:
        return (self.slot_obj, self.obj_slot, self.slot_req, self.free, self.cstate, self.meta, self.glob, self.fstate)


def _env(config: ObjectReplayConfig) -> np.ndarray:
    env = np.zeros(K.ENV_SIZE, np.float64)
    env[K.ENV_CF] = config.c_f
    env[K.ENV_METRIC] = K.METRICS[config.metric]
    env[K.ENV_DKIND] = K.DISSIMILARITIES[config.dissimilarity]
    env[K.ENV_RADIUS] = config.radius
    env[K.ENV_K] = config.k
    return env


def _product(q: np.ndarray, cat: PreparedCatalogue, out: np.ndarray | None) -> np.ndarray:
    """G = q V^T (float32), into ``out`` when it has the right shape."""
    if out is None or out.shape[0] != q.shape[0]:
        out = np.empty((q.shape[0], cat.size), np.float32)
    np.matmul(q, cat.items.T, out=out)
    return out


def replay_objects(vectors: Any, catalogue: Any, config: ObjectReplayConfig | None = None, *,
                   progress: bool = False) -> ObjectReplayLog:  # fmt: skip
    """Replay requests through an object cache and record every answer.

    ``vectors``: (n, d) float array of request vectors (a memory map is read block by block) or an
    iterable of (n_i, d) blocks. ``catalogue``: a :class:`~simcache.objects.catalogue.Catalogue`,
    an (N, d) array, or a (vectors, bias) pair (bias used by ``ip``). ``config``: the replay's
    settings (default: :class:`ObjectReplayConfig`'s).
    """
    config = config if config is not None else ObjectReplayConfig()
    if not isinstance(config, ObjectReplayConfig):
        raise UserError("config must be an ObjectReplayConfig")
    started = time.perf_counter()
    vecs, bias = as_catalogue(catalogue)
    cat = prepare_catalogue(vecs, bias, config.metric)
    config.check_catalogue(cat.size)
    policy = OBJECT_POLICIES[config.policy](config.capacity, config.k, cat.size, dict(config.params), dim=cat.dim)
    m_all, m_c = (max(config.k, m) for m in policy.candidates())
    block = config.block_size or default_block_size(cat.size)
    n, _, blocks = request_blocks(vectors, block)
    cache = _Cache(policy, cat.size)
    initial = policy.initial_objects(Setup(vectors if n is not None else None, cat, config))
    fit_seconds = time.perf_counter() - started
    if initial is not None:
        cache.preload(initial)
    index = None
    m_x = 0
    if config.approximate:
        from simcache.objects.server import build_index

        index = build_index(cat, config.index, config.index_options(cat.size), config.seed)
        m_x = max(config.k, config.index_candidates or config.k)
    no_ext = np.zeros((1, 0), np.int64)
    env = _env(config)
    fpar = np.ascontiguousarray(policy.parameters(), dtype=np.float64)
    update = K.kernel_ref(policy.kernel())
    key = K.seed_key(config.seed)
    counters = np.zeros(K.N_COUNTERS, np.int64)
    attrs = dict(config=config, params=policy.describe())
    parts: list[ObjectReplayLog] = []
    log = ObjectReplayLog.empty(n, config.k, **attrs) if n is not None else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="req", desc=f"replay {config.policy} C={config.capacity}")
    g_buf = None
    t0 = 0
    # the product of each block with the catalogue on one BLAS thread or on all cores, whichever is
    # faster as the machine is loaded now (OpenBLAS's threads spin through the sequential pass)
    plan = ThreadPlan(None, auto_most=None if block * cat.size * cat.dim >= MIN_SPLIT_MACS else 1)
    try:
        for raw in blocks:
            q, qn2, tol = prepare_queries(raw, cat, t0)
            b = q.shape[0]
            with plan.chunk(b) as threads, numpy_blas_threads(threads):
                if log is not None:
                    part, off = log, t0
                else:
                    part, off = ObjectReplayLog.empty(b, config.k), 0
                    parts.append(part)
                g_buf = _product(q, cat, g_buf)
                ext = no_ext
                if index is not None:
                    from simcache.objects.server import search_prepared

                    ext = np.ascontiguousarray(search_prepared(index, q, cat, m_x)[0])
                sl = slice(off, off + b)
                K.serve_block(g_buf, q, qn2, tol, t0, cat.items, cat.norm2, cat.bias, env, m_all, m_c, BAND_CAP,
                              ext, index is not None, update, key, *cache.args(), fpar,
                              part.server[sl], part.served[sl], part.local[sl], part.origin[sl], part.cost[sl],
                              part.cost_empty[sl], part.cost_opt[sl], part.inserted[sl], part.evicted[sl],
                              counters)  # fmt: skip
            t0 += b
            if bar is not None:
                bar.update(b)
    finally:
        if bar is not None:
            bar.close()
    if log is None:
        log = _concatenate(parts, config.k, attrs)
    log.params = policy.describe()
    log.fstate = cache.fstate
    log.stats = {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds if initial is not None else 0.0,
        "block_size": block,
        "index": config.index,
        "index_options": config.index_options(cat.size) if config.approximate else {},
        "exact_row_evaluations": int(counters[K.FULL_ROWS]),
        "catalogue_size": cat.size,
        "dim": cat.dim,
        "final_objects": int(cache.cstate[K.N_USED]),
        "threads": dict(plan.used),  # BLAS threads of the products -> blocks run with them
    }
    return log


def _concatenate(parts: list[ObjectReplayLog], k: int, attrs: dict) -> ObjectReplayLog:
    if not parts:
        return ObjectReplayLog.empty(0, k, **attrs)
    names = ("server", "served", "local", "origin", "cost", "cost_empty", "cost_opt", "inserted", "evicted")
    return ObjectReplayLog(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in names}, **attrs)


def nearest_lists(vectors: np.ndarray, cat: PreparedCatalogue, config: ObjectReplayConfig,
                  m: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every request's exact ``m`` nearest objects and their ``c_d``: (int32 (n, m), float64 (n, m))."""
    x = np.asarray(vectors)
    n = x.shape[0]
    obj = np.empty((n, m), np.int32)
    h = np.empty((n, m), np.float64)
    block = config.block_size or default_block_size(cat.size)
    metric = K.METRICS[config.metric]
    counters = np.zeros(K.N_COUNTERS, np.int64)
    g_buf = None
    o_obj = np.empty((block, m), np.int64)
    o_e = np.empty((block, m), np.float64)
    for b0 in range(0, n, block):
        q, qn2, tol = prepare_queries(x[b0 : b0 + block], cat, b0)
        b = q.shape[0]
        g_buf = _product(q, cat, g_buf)
        K.nearest_block(g_buf, q, qn2, tol, cat.items, cat.norm2, cat.bias, metric, m, BAND_CAP,
                        o_obj[:b], o_e[:b], counters)  # fmt: skip
        obj[b0 : b0 + b] = o_obj[:b]
        h[b0 : b0 + b] = costs_from_keys(o_e[:b], config)
    return obj, h


def costs_from_keys(e: np.ndarray, config: ObjectReplayConfig) -> np.ndarray:
    """``c_d`` from exact keys sorted along each row (numpy form of the kernels' rule)."""
    if config.metric == "l2":
        d = np.sqrt(e)
    elif config.metric == "cosine":
        d = 0.5 * e
    else:
        d = e - e[:, :1]
    if config.dissimilarity == "distance":
        return d
    if config.dissimilarity == "squared":
        return d * d
    return np.where(d <= config.radius, 0.0, config.c_f)


def fit_static(vectors: np.ndarray, cat: PreparedCatalogue, config: ObjectReplayConfig, m: int) -> GreedyFit:
    """The greedy set for ``vectors`` (see :mod:`simcache.objects.greedy`), ``m`` candidates each."""
    obj, h = nearest_lists(vectors, cat, config, m)
    return fit_greedy(obj, h, config.k, config.c_f, config.capacity, cat.size, complete=m >= cat.size)
