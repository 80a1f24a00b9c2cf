"""At r = 0 on Zipf id traces (one fixed random vector per id) the exact policies match libCacheSim
hit for hit. LFU tie-break: among equal frequencies the least recently accessed entry is evicted,
which is what libCacheSim's LFU does."""

from __future__ import annotations

import numpy as np
import pytest

libcachesim = pytest.importorskip("libcachesim")

from simcache.cache import replay  # noqa: E402

ORACLES = {"lru": "LRU", "fifo": "FIFO", "lfu": "LFU"}


def zipf_ids(n: int, n_ids: int, alpha: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_ids + 1) ** alpha
    return rng.choice(n_ids, size=n, p=p / p.sum())


def oracle_hits(policy: str, ids: np.ndarray, capacity: int) -> np.ndarray:
    cache = getattr(libcachesim, ORACLES[policy])(capacity)
    hits = np.zeros(len(ids), dtype=bool)
    for t, obj in enumerate(ids):
        req = libcachesim.Request()
        req.obj_id = int(obj)
        req.obj_size = 1
        req.clock_time = t
        hits[t] = cache.get(req)
    return hits


@pytest.mark.parametrize("policy", sorted(ORACLES))
@pytest.mark.parametrize("capacity", [1, 7, 60, 400])
@pytest.mark.parametrize("alpha", [0.7, 1.2])
def test_exact_policies_match_libcachesim(policy, capacity, alpha):
    ids = zipf_ids(4000, 500, alpha, seed=capacity)
    vectors = np.random.default_rng(5).standard_normal((500, 12)).astype(np.float32)[ids]
    expected = oracle_hits(policy, ids, capacity)
    for engine in ("block", "plain"):
        log = replay(vectors, policy=policy, capacity=capacity, radius=0.0, engine=engine)
        got = log.outcome != 0
        mismatch = np.flatnonzero(got != expected)
        assert mismatch.size == 0, f"{policy} C={capacity} {engine}: first mismatch at request {mismatch[:1]}"
        assert np.all(log.outcome[got] == 1)  # every hit at r = 0 is exact
        assert np.array_equal(ids[log.served[got]], ids[got])  # served by the same object
    assert 0 < expected.mean() < 1


def test_lfu_tie_break_is_least_recent():
    """Two entries with frequency 2; the one accessed less recently is evicted (as libCacheSim)."""
    ids = np.array([1, 2, 2, 1, 3, 1, 2])
    vectors = np.eye(4, dtype=np.float32)[ids]
    log = replay(vectors, policy="lfu", capacity=2)
    assert (log.outcome != 0).tolist() == oracle_hits("lfu", ids, 2).tolist()
    assert log.evicted[4] == 1  # request 1 (object 2, last accessed at t=2) is evicted, not object 1
