"""GRADES: the engine equals the plain reference; points move the cache toward the requests; the
certified nearest-object mapping equals a brute-force scan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcache.objects import ObjectReplayConfig, replay_objects
from simcache.objects.policies.grades import NEIGHBOURS, mapped_object, scan_counters
from tests.simcache.objects.conftest import make_instance
from tests.simcache.objects.reference import REF_POLICIES, Model, lane_sum, replay
from tests.simcache.objects.test_engine_reference import assert_same, run_both


def lane_nearest(p: np.ndarray, items: np.ndarray) -> int:
    """The full scan's rule, plainly: the smallest lane-order squared distance, ties to the smaller index."""
    return int(np.argmin(lane_sum((p[None, :] - items.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
@pytest.mark.parametrize("k,capacity,c_f", [(1, 5, 0.5), (3, 12, 2.0), (5, 3, 1.0)])
def test_grades_equals_reference(metric, k, capacity, c_f):
    alpha = 0.3 if metric == "ip" else 0.2
    log, ref = run_both("grades", metric, k, capacity, c_f, params={"alpha": alpha})
    assert_same(log, ref)
    assert log.local.any() and (~log.local).any()


@pytest.mark.parametrize("dissimilarity,radius", [("squared", 0.0), ("radius", 0.8)])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_grades_other_dissimilarities(metric, dissimilarity, radius):
    log, ref = run_both("grades", metric, 2, 8, 1.0, params={"alpha": 0.3}, dissimilarity=dissimilarity,
                        radius=radius, seed=5)  # fmt: skip
    assert_same(log, ref)


def test_points_move_objects():
    log, _ = run_both("grades", "l2", 1, 6, 1.0, params={"alpha": 0.5}, seed=1)
    assert log.evicted.sum() > 0


# --- the certified mapping (anchored lists) ---------------------------------------------------
def brute_nearest(p: np.ndarray, items: np.ndarray) -> int:
    """The nearest object by the documented keys (lane order) and ties (smaller index), in numpy."""
    e = lane_sum((p[None, :] - items.astype(np.float64)) ** 2)
    return int(np.lexsort((np.arange(len(e)), e))[0])


class OneSlot:
    """The state of one slot with an anchored list of ``size`` objects, driven directly."""

    def __init__(self, items: np.ndarray, size: int) -> None:
        self.items = items
        dim = items.shape[1]
        self.meta = np.full((1, 1), -1, np.int64)
        self.glob = np.full(size, -1, np.int64)
        self.fstate = np.zeros(2 * dim + 1 + size + 2, np.float64)
        self.oj = np.empty(size + 1, np.int64)
        self.oe = np.empty(size + 1, np.float64)

    def nearest(self, p: np.ndarray) -> int:
        return int(mapped_object(0, p, self.items, self.meta, self.glob, self.fstate, 1, self.oj, self.oe))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_obj=st.integers(1, 40), dim=st.sampled_from([1, 2, 3, 7, 33, 40]),
       size=st.integers(1, 8), grid=st.sampled_from([0, 2, 1000]),
       scales=st.lists(st.sampled_from([0.0, 1e-9, 1e-3, 0.05, 0.3, 1.0, 10.0]), min_size=1, max_size=12))  # fmt: skip
def test_certified_nearest_equals_brute_force(seed, n_obj, dim, size, grid, scales):
    """Points near and far from the anchor (certified or full scan), on catalogues with duplicate
    objects (grid = 2: few distinct values, many ties), points exactly on objects and halfway
    between two."""
    rng = np.random.default_rng(seed)
    if grid:
        items = (rng.integers(-grid, grid + 1, (n_obj, dim)) / max(1, grid // 2)).astype(np.float32)
    else:
        items = rng.standard_normal((n_obj, dim)).astype(np.float32)
    slot = OneSlot(items, size)
    p = items[rng.integers(n_obj)].astype(np.float64)
    for scale in scales:
        u = rng.random()
        if u < 0.2:
            p = items[rng.integers(n_obj)].astype(np.float64)  # exactly on an object (and its duplicates)
        elif u < 0.4:  # halfway between two objects: equal keys, the tie rule decides
            p = (items[rng.integers(n_obj)].astype(np.float64) + items[rng.integers(n_obj)]) / 2
        else:
            p = p + scale * rng.standard_normal(dim)
        got = slot.nearest(p)
        assert got == brute_nearest(p, items)
        assert got == lane_nearest(p, items)


def test_certificate_and_full_scan_both_used():
    """Small steps are certified from the anchor's list, far jumps are not (and re-anchor)."""
    rng = np.random.default_rng(3)
    items = rng.standard_normal((500, 6)).astype(np.float32)
    slot = OneSlot(items, 16)
    p = items[7].astype(np.float64)
    for i in range(200):
        p = p + (0.01 if i % 20 else 3.0) * rng.standard_normal(6)
        assert slot.nearest(p) == brute_nearest(p, items)
    proven, scans = scan_counters(slot.fstate)
    assert proven + scans == 200
    assert proven > 150 and scans >= 10


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_replay_with_certified_mappings_equals_reference(metric):
    """A catalogue much longer than the lists: the replay (proven mappings and re-anchoring
    scans) equals the reference's full scans."""
    x, cat, bias = make_instance(4, n_obj=3 * NEIGHBOURS + 50, dim=3, n_req=250, noise=0.3)
    capacity, k, alpha = 6, 3, 0.6
    cfg = ObjectReplayConfig(policy="grades", capacity=capacity, k=k, c_f=1.0, metric=metric,
                             params={"alpha": alpha}, block_size=16, seed=4)  # fmt: skip
    log = replay_objects(x, (cat, bias), cfg)
    ref = replay(x, Model.make(cat, bias, metric, k, 1.0), REF_POLICIES["grades"](capacity, 4, alpha=alpha))
    assert_same(log, ref)
    assert log.evicted.sum() > 0
    proven, scans = scan_counters(log.fstate)
    assert proven > 0 and scans > capacity  # some mappings proven, some slots re-anchored
