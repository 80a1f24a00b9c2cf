"""Block engine == plain engine on larger traces, for every policy, both metrics, both block modes
(its own block products and row scans for flat CPU caches up to DENSE_MAX_CAPACITY, FAISS top-m
with staleness and exact fallback above), and whatever the number of threads."""

from __future__ import annotations

import multiprocessing
import os

import numba
import numpy as np
import pytest

from simcache.cache import POLICIES, CostModel, engine as engine_module, replay
from tests.simcache.cache.helpers import assert_same_log, clustered, grid, mixed

PARAMS = {"rnd-lru": {"acceptance": "linear", "scale": 1.0}, "qlru-dc": {"q": 0.7}}
COST = CostModel("linear", retrieval_cost=1.0, scale=0.5)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize(
    ("trace", "metric", "radius"),
    [("clustered", "l2", 0.8), ("clustered", "cosine", 0.01), ("mixed", "l2", 0.0), ("mixed", "cosine", 0.2)],
)
def test_block_equals_plain(policy, trace, metric, radius):
    if trace == "clustered":
        x = clustered(4000, 24, 2000, 0.1, seed=11, zipf=0.8)
    else:
        x = mixed(4000, 24, seed=12)
    for capacity in (40, 700, 2500):
        kw = dict(policy=policy, capacity=capacity, radius=radius, metric=metric, params=PARAMS.get(policy),
                  cost=COST, seed=5)  # fmt: skip
        plain = replay(x, engine="plain", **kw)
        for block in (None, 97):
            block_log = replay(x, engine="block", block_size=block, **kw)
            assert_same_log(block_log, plain, f"{policy} {trace} {metric} C={capacity} B={block}")
        assert 0.0 < plain.hit_ratio < 1.0


@pytest.mark.parametrize("capacity", [40, 700, 2500])
def test_block_engine_does_not_depend_on_thread_count(capacity):
    x = clustered(3000, 24, 1500, 0.1, seed=21, zipf=0.8)
    kw = dict(policy="lru", capacity=capacity, radius=0.8, seed=2)
    two = replay(x, **kw)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = replay(x, **kw)
    finally:
        numba.set_num_threads(before)
    assert_same_log(one, two, f"C={capacity}")
    assert 0.0 < two.hit_ratio < 1.0


def _replay_in_child(capacity: int) -> list[int]:
    x = clustered(3000, 24, 1500, 0.1, seed=21, zipf=0.8)
    return replay(x, policy="lru", capacity=capacity, radius=0.8, seed=2).served.tolist()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_replay_works_in_a_process_forked_after_a_replay():
    """GNU OpenMP cannot run again in a forked child (numba aborts it, FAISS hangs): children
    forked after a replay (multiprocessing's default on Linux) replay single-threaded instead."""
    expected = {c: _replay_in_child(c) for c in (40, 2500)}  # starts OpenMP threads here
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        for c, want in expected.items():
            assert pool.apply_async(_replay_in_child, (c,)).get(timeout=120) == want


ROW_SCAN_TRACES = {
    "clustered-l2": (lambda: clustered(900, 16, 300, 0.1, seed=31, zipf=0.9), "l2", 0.6),
    "grid-l2": (lambda: grid(900, 4, 3, seed=32), "l2", 1.0),  # exact duplicates and tied distances
    "mixed-cosine": (lambda: mixed(900, 8, seed=33) + 0.5, "cosine", 0.1),
}


@pytest.mark.parametrize("policy", ["lru", "qlru-dc"])  # qlru-dc needs the second nearest entry
@pytest.mark.parametrize("trace", sorted(ROW_SCAN_TRACES))
@pytest.mark.parametrize("exclude_self", [False, True])
def test_row_scan_equals_plain(policy, trace, exclude_self):
    """The row-scan path (flat CPU, C up to DENSE_MAX_CAPACITY) equals the plain engine at block
    sizes from 1 to beyond the capacity, with caches that fill up inside a block, turn over
    within a block (C < B) and rows wider than the scan's lanes; with exclude_self (users making
    runs of requests) a request's own entries are hidden in its row."""
    make, metric, radius = ROW_SCAN_TRACES[trace]
    x = make()
    owners = np.repeat(np.random.default_rng(4).integers(0, 9, size=300), 3) if exclude_self else None
    for capacity in (1, 3, 40, 300):
        kw = dict(policy=policy, capacity=capacity, radius=radius, metric=metric, params=PARAMS.get(policy), seed=8,
                  exclude_self=exclude_self, owners=owners)  # fmt: skip
        plain = replay(x, engine="plain", **kw)
        for block in (1, 7, 64, 500):
            log = replay(x, engine="block", block_size=block, **kw)
            assert log.stats["searcher"] == "flat-dense"
            assert_same_log(log, plain, f"{policy} {trace} self={exclude_self} C={capacity} B={block}")
        assert 0.0 < plain.hit_ratio < 1.0


def test_faiss_top_m_path_equals_plain_on_a_large_cache(monkeypatch):
    """The FAISS top-m path (caches above DENSE_MAX_CAPACITY), forced at C = 2,500."""
    monkeypatch.setattr(engine_module, "DENSE_MAX_CAPACITY", 1024)
    x = clustered(4000, 24, 2000, 0.1, seed=11, zipf=0.8)
    for policy in ("lru", "qlru-dc"):
        kw = dict(policy=policy, capacity=2500, radius=0.8, params=PARAMS.get(policy), seed=5)
        log = replay(x, **kw)
        assert log.stats["searcher"] == "flat"
        assert_same_log(log, replay(x, engine="plain", **kw), policy)
