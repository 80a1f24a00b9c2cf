"""GRADES: the engine equals the plain reference; points move the cache toward the requests."""

from __future__ import annotations

import pytest

from tests.simcache.objects.test_engine_reference import assert_same, run_both


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
