"""DUEL: the engine equals the brute-force reference; duels replace objects."""

from __future__ import annotations

import pytest

from tests.simcache.objects.test_engine_reference import assert_same, run_both


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
@pytest.mark.parametrize("k,capacity,c_f", [(1, 5, 0.5), (3, 12, 2.0), (5, 3, 1.0)])
def test_duel_equals_reference(metric, k, capacity, c_f):
    log, ref = run_both("duel", metric, k, capacity, c_f, params={"tau": 20, "delta": 0.3, "max_duels": 3})
    assert_same(log, ref)
    assert log.local.any() and (~log.local).any()


VARIANTS = [{"beta": 0.0, "tau": 5, "delta": 0.1}, {"beta": 1.0, "interference": 1.5}, {"max_duels": 1, "delta": 0.05},
            {"challenger": "fetched", "delta": 0.2}]


@pytest.mark.parametrize("params", VARIANTS)
def test_duel_variants_equal_reference(params):
    log, ref = run_both("duel", "l2", 2, 8, 1.0, params=params, seed=3)
    assert_same(log, ref)


def test_duels_replace_objects():
    log, _ = run_both("duel", "l2", 2, 8, 1.0, params={"delta": 0.1, "tau": 10}, seed=1)
    assert log.evicted.sum() > 0  # replacements happened after the cache filled
