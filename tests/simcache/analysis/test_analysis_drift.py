"""drift: consecutive distances per user against brute force; skipped without repeat users."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.analysis import analyze_drift, plot_result
from simcache.analysis.inputs import latest_per_user


def walk_users(n_users: int = 80, per: int = 5, d: int = 8, step: float = 0.1, seed: int = 0):
    """Users spread far apart, each taking small random steps; rows shuffled."""
    rng = np.random.default_rng(seed)
    start = 10.0 * rng.standard_normal((n_users, d))
    x = np.repeat(start, per, axis=0) + np.cumsum(step * rng.standard_normal((n_users * per, d)).reshape(
        n_users, per, d), axis=1).reshape(-1, d)
    users = np.repeat([f"user{u}" for u in range(n_users)], per).astype(object)
    seq = np.tile(np.arange(per), n_users)
    perm = rng.permutation(len(x))
    return x[perm], users[perm], seq[perm]


def test_drift_matches_brute_force_and_beats_other_users(tmp_path, assert_png):
    x, users, seq = walk_users()
    res = analyze_drift(x, users, seq, seed=0, max_pairs=5000, nn_queries=200)
    expected = []
    for u in np.unique(users):
        rows = np.flatnonzero(users == u)
        rows = rows[np.argsort(seq[rows])]
        expected.extend(np.linalg.norm(np.diff(x[rows], axis=0), axis=1))
    expected = np.sort(expected)
    assert res["consecutive_pairs"] == 80 * 4 == len(expected)
    s = res["drift"]["summary"]
    assert s["min"] == pytest.approx(expected[0]) and s["max"] == pytest.approx(expected[-1])
    assert s["q50"] == pytest.approx(np.median(expected))
    assert res["users"] == 80 and res["users_with_several"] == 80
    nn = res["nearest_other_user"]
    assert nn["queries"] == 200 and nn["frac_drift_below_nearest_other"] == 1.0
    assert res["ratio_median_drift_to_median_other"] < 0.05
    assert [b["step"] for b in res["drift"]["by_step"]] == [1, 2, 3, 4]
    # drift is ~ step * sqrt(d) whatever t for a random walk
    assert res["drift"]["by_step"][0]["median"] == pytest.approx(0.1 * np.sqrt(8), rel=0.3)
    plot_result(res, tmp_path / "drift.png")
    assert_png(tmp_path / "drift.png")


def test_row_order_used_without_seq():
    x = np.array([[0.0, 0], [1, 0], [0, 5], [1, 1], [0, 7]])
    users = np.array(["a", "a", "b", "a", "b"], dtype=object)
    res = analyze_drift(x, users, None, seed=0, max_pairs=100, nn_queries=10)
    # a: (0,0)->(1,0)->(1,1): 1, 1 ; b: (0,5)->(0,7): 2
    assert res["consecutive_pairs"] == 3
    assert res["drift"]["summary"]["max"] == pytest.approx(2.0)
    assert res["drift"]["summary"]["mean"] == pytest.approx(4 / 3)


def test_skipped_when_every_user_has_one_embedding(tmp_path, assert_png):
    x = np.random.default_rng(0).standard_normal((50, 3))
    res = analyze_drift(x, np.arange(50), seed=0)
    assert "skipped" in res and res["consecutive_pairs"] == 0
    plot_result(res, tmp_path / "drift.png")
    assert (tmp_path / "drift.png").stat().st_size > 1000


def test_latest_per_user():
    users = np.array(["a", "b", "a", "c", "b", "a"], dtype=object)
    seq = np.array([0, 1, 2, 0, 0, 1])
    assert latest_per_user(users, seq).tolist() == [1, 2, 3]
    assert latest_per_user(users).tolist() == [3, 4, 5]
