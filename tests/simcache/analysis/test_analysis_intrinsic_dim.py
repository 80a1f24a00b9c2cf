"""knn-radius, Levina-Bickel and TwoNN on data with a known intrinsic dimension."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.analysis import analyze_intrinsic_dim, estimate_intrinsic_dim, plot_result
from simcache.analysis.intrinsic_dim import knn_radius_slopes
from simcache.analysis.neighbors import knn


def test_five_dimensional_subspace_gives_five_by_each_estimator(subspace5):
    est = estimate_intrinsic_dim(subspace5)
    for key in ("knn_radius", "knn_radius_median", "mle", "twonn"):
        assert est[key] == pytest.approx(5.0, abs=0.6), key


def test_analysis_reports_baselines_higher_than_data(subspace5, tmp_path, assert_png):
    res = analyze_intrinsic_dim(subspace5, seed=0)
    data, gauss = res["sets"]["data"], res["sets"]["gaussian"]
    assert data["knn_radius"] == pytest.approx(5.0, abs=0.6)
    # the baselines fill all 20 dimensions: their estimates are far above 5 (biased low, but > 10)
    for name in ("gaussian", "uniform_ball"):
        for key in ("knn_radius", "mle", "twonn"):
            assert res["sets"][name][key] > 10.0
    assert gauss["n_distinct"] == len(subspace5)
    plot_result(res, tmp_path / "knn.png")
    assert_png(tmp_path / "knn.png")


def test_knn_matches_brute_force():
    x = np.random.default_rng(0).standard_normal((300, 7))
    dist, idx = knn(x, 6)
    full = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(full, np.inf)
    assert np.allclose(dist, np.sort(full, axis=1)[:, :6])
    assert (idx != np.arange(300)[:, None]).all()
    q = np.random.default_rng(1).standard_normal((20, 7))
    dq, iq = knn(x, 3, queries=q)
    fq = np.linalg.norm(q[:, None] - x[None], axis=2)
    assert np.allclose(dq, np.sort(fq, axis=1)[:, :3])
    assert np.array_equal(iq, np.argsort(fq, axis=1)[:, :3])


def test_slopes_of_exact_power_law():
    """R(k) = c k^(1/m) exactly gives slope 1/m for every point."""
    k = np.arange(1, 21)
    dists = np.outer([1.0, 2.0, 0.5], k ** (1 / 4))
    assert knn_radius_slopes(dists, 5, 20) == pytest.approx([0.25] * 3)


def test_mle_matches_closed_form(subspace5):
    """skdim's Levina-Bickel with precomputed neighbours equals the textbook formula."""
    from simcache.analysis.intrinsic_dim import levina_bickel_mle

    x = np.unique(subspace5, axis=0)
    dist, idx = knn(x, 20)
    per_point = (20 - 1) / np.log(dist[:, -1:] / dist[:, :-1]).sum(axis=1)
    expected = 1.0 / np.mean(1.0 / per_point)
    assert levina_bickel_mle(x, dist, idx, 20) == pytest.approx(expected, rel=1e-9)


def test_duplicates_are_removed_before_neighbours(subspace5):
    doubled = np.vstack([subspace5, subspace5[:100]])
    est = estimate_intrinsic_dim(doubled)
    assert est["n_points"] == 1600 and est["n_distinct"] == 1500
    assert est["mle"] == pytest.approx(5.0, abs=0.6)


def test_too_few_points_refused():
    with pytest.raises(ValueError, match="distinct points"):
        estimate_intrinsic_dim(np.random.default_rng(0).standard_normal((15, 3)))
