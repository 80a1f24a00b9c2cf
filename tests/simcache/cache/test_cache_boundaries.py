"""Boundary cases: d == r, duplicates, capacity 1, capacity above the trace, empty cache, and the
qLRU-ΔC reduction to SIM-LRU."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from simcache.cache import POLICIES, CostModel, replay
from simcache.cache import kernels as K
from tests.simcache.cache.helpers import assert_same_log
from tests.simcache.cache.reference_policies import squared

ENGINES = [("block", None), ("block", 1), ("plain", None)]


def run_all(x, **kw):
    """The log of every engine; asserts they agree and returns one. Without ``params``/``cost``,
    the policy runs at its hard-radius example (the boundary these tests pin)."""
    if "params" not in kw and "cost" not in kw:
        kw.update(POLICIES[kw.get("policy", "lru")].hard_radius_settings() or {})
    logs = [replay(x, engine=e, block_size=b, **kw) for e, b in ENGINES]
    for other in logs[1:]:
        assert_same_log(logs[0], other, str(kw))
    return logs[0]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_distance_exactly_equal_to_radius_is_a_hit(policy):
    x = np.array([[0, 0, 0], [3, 4, 0]], dtype=np.float32)  # distance exactly 5
    log = run_all(x, policy=policy, capacity=4, radius=5.0)
    assert log.distance[1] == 5.0
    assert log.outcome.tolist() == [0, 2] and log.served[1] == 0 and not log.inserted[1]
    below = run_all(x, policy=policy, capacity=4, radius=float(np.nextafter(5.0, 0.0)))
    assert below.outcome.tolist() == [0, 0] and below.inserted.tolist() == [True, True]


def test_cosine_distance_exactly_equal_to_radius():
    x = np.array([[2, 0], [0, 3]], dtype=np.float32)  # orthogonal: 1 - cos = 1 exactly
    assert run_all(x, policy="lru", capacity=2, radius=1.0, metric="cosine").outcome.tolist() == [0, 2]
    assert run_all(x, policy="lru", capacity=2, radius=0.999999, metric="cosine").outcome.tolist() == [0, 0]
    # parallel vectors of different lengths are at cosine distance 0: an exact hit
    y = np.array([[1, 2, 2], [2, 4, 4]], dtype=np.float32)
    assert run_all(y, policy="lru", capacity=2, radius=0.0, metric="cosine").outcome.tolist() == [0, 1]


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_duplicates_are_exact_hits_served_by_the_first(policy, metric):
    v = np.random.default_rng(0).standard_normal((1, 5)).astype(np.float32)
    x = np.repeat(v, 6, axis=0)
    log = run_all(x, policy=policy, capacity=3, radius=0.0, metric=metric)
    assert log.outcome.tolist() == [0, 1, 1, 1, 1, 1]
    assert log.served.tolist() == [-1, 0, 0, 0, 0, 0]
    assert log.inserted.tolist() == [True] + [False] * 5
    assert np.isinf(log.distance[0]) and np.all(log.distance[1:] == 0)


@pytest.mark.parametrize(
    ("metric", "y", "radius"),
    [
        ("l2", [[1, 0], [1, 2], [1, 1]], 1.0),  # request 2 is at distance 1 from both entries
        ("cosine", [[1, 1], [1, -1], [1, 0]], 0.5),  # mirror images: exactly equal distances
    ],
)
def test_equal_distances_tie_break_to_the_oldest_entry(metric, y, radius):
    y = np.array(y, dtype=np.float32)
    log = run_all(y, policy="lru", capacity=4, radius=radius, metric=metric)
    assert log.outcome.tolist() == [0, 0, 2] and log.served[2] == 0
    z = y[[1, 0, 2]]  # other insertion order: still the oldest entry (now the other vector)
    log = run_all(z, policy="lru", capacity=4, radius=radius, metric=metric)
    assert log.outcome.tolist() == [0, 0, 2] and log.served[2] == 0


def test_capacity_one():
    x = np.eye(3, dtype=np.float32)[[0, 1, 0, 0, 2, 2]]
    log = run_all(x, policy="lru", capacity=1)
    assert log.outcome.tolist() == [0, 0, 0, 1, 0, 1]
    assert log.evicted.tolist() == [-1, 0, 1, -1, 2, -1]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_capacity_larger_than_trace(policy):
    x = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    log = run_all(x, policy=policy, capacity=1000, radius=0.0)
    assert np.all(log.evicted == -1)
    assert log.inserted.all() and np.all(log.outcome == 0)


def test_empty_cache_and_empty_trace():
    x = np.ones((1, 3), dtype=np.float32)
    log = run_all(x, policy="lru", capacity=5, radius=100.0)
    assert log.outcome.tolist() == [0] and np.isinf(log.distance[0]) and log.served[0] == -1
    empty = replay(np.zeros((0, 3), dtype=np.float32), capacity=5)
    assert len(empty) == 0 and empty.hit_ratio == 0.0
    assert len(replay(iter([]), capacity=5)) == 0


def test_qlru_dc_reduces_to_sim_lru():
    """q = 1, hard radius (cost zero) and C_r = 1: identical to SIM-LRU whenever no request has two
    cached entries within r -- at r = 0 with distinct vectors, and with well-separated clusters."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 60, size=3000)
    centres = rng.standard_normal((60, 16)).astype(np.float32) * 10  # pairwise distances >> 1
    cost = CostModel("zero", retrieval_cost=1.0)
    for x, r in ((centres[ids], 0.0), (centres[ids] + 0.05 * rng.standard_normal((3000, 16)).astype(np.float32), 1.0)):
        for capacity in (1, 10, 40):
            sim = replay(x, policy="lru", capacity=capacity, radius=r)
            q = replay(x, policy="qlru-dc", capacity=capacity, radius=r, params={"q": 1.0}, cost=cost, seed=9)
            assert_same_log(sim, q, f"r={r} C={capacity}")
            assert 0 < sim.hit_ratio < 1


@settings(deadline=None)  # the first example may compile the kernel
@given(
    hnp.arrays(np.float32, st.integers(1, 200), elements=st.floats(-1e3, 1e3, width=32)),
    st.integers(0, 2**32 - 1),
)
def test_exact_distance_follows_the_documented_summation_order(x, seed):
    """The compiled exact distance equals the reference's lane-by-lane sum bit for bit."""
    y = (x + np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)).astype(np.float32)
    assert K.sqdist(x, y) == squared([float(v) for v in x], [float(v) for v in y])


def test_summation_order_is_observable():
    """A single running sum gives another value on these vectors, so the test above can fail."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200).astype(np.float32)
    y = rng.standard_normal(200).astype(np.float32)
    running = 0.0
    for a, b in zip(x.astype(np.float64), y.astype(np.float64)):
        running += (a - b) * (a - b)
    assert K.sqdist(x, y) != running
