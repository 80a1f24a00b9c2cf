"""Block engine == plain engine on larger traces, for every policy, both metrics, both block modes
(its own two-thread dense search for small caches, FAISS for large ones; both top-m with staleness
and exact fallback), and whatever the number of threads."""

from __future__ import annotations

import multiprocessing
import os

import numba
import pytest

from simcache.cache import POLICIES, CostModel, replay
from tests.simcache.cache.helpers import assert_same_log, clustered, mixed

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
    for capacity in (40, 700, 2500):  # 2500 > the dense limit: FAISS top-m path
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
