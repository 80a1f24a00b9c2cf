"""The engine equals the plain reference exactly: answers, origins, costs, insertions, evictions."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.objects import ObjectReplayConfig, replay_objects
from tests.simcache.objects.conftest import make_instance
from tests.simcache.objects.reference import REF_POLICIES, Model, replay


def run_both(policy, metric, k, capacity, c_f, seed=0, params=None, dim=7, block_size=16, dissimilarity="distance",
             radius=0.0, preload=()):  # fmt: skip
    x, cat, bias = make_instance(seed, dim=dim)
    cfg = ObjectReplayConfig(policy=policy, capacity=capacity, k=k, c_f=c_f, metric=metric, params=params or {},
                             block_size=block_size, seed=seed, dissimilarity=dissimilarity, radius=radius)  # fmt: skip
    log = replay_objects(x, (cat, bias), cfg)
    model = Model.make(cat, bias, metric, k, c_f, dissimilarity, radius)
    ref = replay(x, model, REF_POLICIES[policy](capacity, seed, **(params or {})), preload=preload)
    return log, ref


def assert_same(log, ref):
    np.testing.assert_array_equal(log.server, np.array(ref.server))
    np.testing.assert_array_equal(log.served, np.array(ref.served))
    np.testing.assert_array_equal(log.local, np.array(ref.local))
    np.testing.assert_array_equal(log.origin, np.array(ref.origin))
    np.testing.assert_array_equal(log.cost, np.array(ref.cost))  # exact, not approximately
    np.testing.assert_array_equal(log.cost_empty, np.array(ref.cost_empty))
    np.testing.assert_array_equal(log.cost_opt, np.array(ref.cost_opt))
    np.testing.assert_array_equal(log.inserted, np.array(ref.inserted))
    np.testing.assert_array_equal(log.evicted, np.array(ref.evicted))


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
@pytest.mark.parametrize("policy", ["obj-lru", "obj-lfu", "obj-sim-lru"])
@pytest.mark.parametrize("k,capacity,c_f", [(1, 5, 0.5), (3, 12, 2.0), (5, 3, 1.0)])
def test_engine_equals_reference(policy, metric, k, capacity, c_f):
    log, ref = run_both(policy, metric, k, capacity, c_f)
    assert_same(log, ref)
    assert log.local.any() and (~log.local).any()  # the trace exercises hits and fetches


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
@pytest.mark.parametrize("capacity,c_f,q", [(4, 0.5, 0.2), (10, 3.0, 1.0)])
def test_qlru_dc_equals_reference(metric, capacity, c_f, q):
    log, ref = run_both("obj-qlru-dc", metric, 1, capacity, c_f, params={"q": q})
    assert_same(log, ref)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_dimension_above_lane_count(metric):
    log, ref = run_both("obj-lru", metric, 4, 8, 1.0, dim=45, seed=3)
    assert_same(log, ref)


@pytest.mark.parametrize("dissimilarity,radius", [("squared", 0.0), ("radius", 0.8)])
def test_other_dissimilarities(dissimilarity, radius):
    log, ref = run_both("obj-lru", "l2", 3, 10, 1.0, dissimilarity=dissimilarity, radius=radius, seed=1)
    assert_same(log, ref)


def test_sim_lru_absolute_radius():
    log, ref = run_both("obj-sim-lru", "l2", 3, 10, 1.0, params={"radius": 0.6}, seed=2)
    assert_same(log, ref)


@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_block_size_does_not_change_the_log(block_size):
    a, _ = run_both("obj-lfu", "l2", 3, 10, 1.0, block_size=16)
    b, _ = run_both("obj-lfu", "l2", 3, 10, 1.0, block_size=block_size)
    for f in ("served", "local", "origin", "cost", "inserted", "evicted"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_streamed_blocks_equal_array():
    x, cat, bias = make_instance(4)
    cfg = ObjectReplayConfig(policy="obj-lru", capacity=10, k=3)
    a = replay_objects(x, cat, cfg)
    b = replay_objects((x[i : i + 23] for i in range(0, len(x), 23)), cat, cfg)
    np.testing.assert_array_equal(a.served, b.served)
    np.testing.assert_array_equal(a.cost, b.cost)


def test_duplicate_objects_force_exact_rows():
    """Many equal objects crowd the selection band: the whole row is evaluated exactly, same result."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 6)).astype(np.float32)
    cat = np.repeat(base, 80, axis=0)  # 240 objects, 80 copies of each
    x = (base[rng.integers(0, 3, 40)] + 0.01 * rng.standard_normal((40, 6))).astype(np.float32)
    cfg = ObjectReplayConfig(policy="obj-lru", capacity=20, k=4, block_size=8)
    log = replay_objects(x, cat, cfg)
    assert log.stats["exact_row_evaluations"] > 0
    ref = replay(x, Model.make(cat, None, "l2", 4, 1.0), REF_POLICIES["obj-lru"](20))
    assert_same(log, ref)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_approximate_index_equals_reference_with_the_same_lists(metric):
    """With an IVF index the uncached answer objects come from the index's lists: the engine
    equals the reference given those lists, and some answers differ from the exact-index run."""
    from simcache.objects.metrics import prepare_catalogue, prepare_queries
    from simcache.objects.server import build_index, search_prepared

    x, cat, bias = make_instance(8, n_obj=320, dim=6, n_req=150)
    options = {"nlist": 8, "nprobe": 1}
    cfg = ObjectReplayConfig(policy="obj-lru", capacity=10, k=3, metric=metric, index="ivf", index_params=options,
                             index_candidates=5, block_size=32)  # fmt: skip
    log = replay_objects(x, (cat, bias), cfg)
    pc = prepare_catalogue(cat, bias, metric)
    ext = search_prepared(build_index(pc, "ivf", cfg.index_options(len(cat)), 0), prepare_queries(x, pc)[0], pc, 5)[0]
    ref = replay(x, Model.make(cat, bias, metric, 3, 1.0), REF_POLICIES["obj-lru"](10), ext=ext)
    assert_same(log, ref)
    exact = replay_objects(x, (cat, bias), ObjectReplayConfig(policy="obj-lru", capacity=10, k=3, metric=metric))
    assert (exact.served != log.served).any()
    assert (exact.gain.mean() >= log.gain.mean())
