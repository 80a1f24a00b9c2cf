"""gmm: a 3-cluster mixture chooses 3, structureless baselines choose 1."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.analysis import analyze_gmm, gmm_labels, plot_result
from simcache.analysis.mixtures import select_components


def test_three_clusters_choose_three_and_baselines_one(three_clusters, tmp_path, assert_png):
    x, _ = three_clusters
    res = analyze_gmm(x, seed=0, max_components=5)
    assert res["chosen_k"] == 3
    assert res["sets"]["data"]["chosen_k_bic"] == 3
    assert res["sets"]["gaussian"]["chosen_k_bic"] == 1
    assert res["sets"]["uniform_ball"]["chosen_k_bic"] == 1
    assert res["sets"]["data"]["k"] == [1, 2, 3, 4, 5]
    assert sorted(res["sets"]["data"]["chosen_weights"]) == pytest.approx([1 / 3] * 3, abs=0.02)
    plot_result(res, tmp_path / "gmm.png")
    assert_png(tmp_path / "gmm.png")


def test_pca_projection_and_subsample_reported(three_clusters):
    x, _ = three_clusters
    wide = np.hstack([x, 0.01 * np.random.default_rng(0).standard_normal((len(x), 20))])
    sel = select_components(wide, max_components=4, pca_dims=4, seed=0)
    assert sel["dims_fitted"] == 4 and 0.9 < sel["pca_variance_kept"] < 1.0
    assert sel["chosen_k_bic"] == 3
    res = analyze_gmm(wide, seed=0, max_components=3, pca_dims=4, max_points=300, covariance_type="diag")
    assert res["subsampled"] and res["sets"]["data"]["points_fitted"] == 300


def test_labels_recover_clusters_and_are_seeded(three_clusters):
    from sklearn.metrics import adjusted_rand_score

    x, truth = three_clusters
    a = gmm_labels(x, 3, seed=0)
    assert adjusted_rand_score(truth, a) > 0.99
    assert np.array_equal(a, gmm_labels(x, 3, seed=0))
    assert set(np.unique(a)) == {0, 1, 2}


def test_bad_covariance_refused(three_clusters):
    with pytest.raises(ValueError, match="covariance_type"):
        select_components(three_clusters[0], covariance_type="banana")


def test_range_grows_until_the_bic_minimum_is_inside(three_clusters):
    x, _ = three_clusters
    sel = select_components(x, max_components=2, seed=0)
    # K = 2 is lowest on 1..2, so the range grows by at least two: 1..4, where 3 is an inner minimum
    assert sel["k"] == [1, 2, 3, 4] and sel["chosen_k_bic"] == 3
    assert sel["range_extended"] and sel["bic_minimum_inside"] and "note" not in sel
    assert sel["bic"][2] == min(sel["bic"]) < sel["bic"][3]
    res = analyze_gmm(x, seed=0, max_components=2)
    assert res["chosen_k"] == 3 and res["bic_minimum_inside"] and "warning" not in res


def test_says_plainly_when_the_range_hits_its_limit(three_clusters):
    x, _ = three_clusters
    sel = select_components(x, max_components=2, seed=0, k_limit=2)
    assert sel["k"] == [1, 2] and sel["chosen_k_bic"] == 2
    assert not sel["bic_minimum_inside"] and "no minimum inside the range" in sel["note"]
    assert "limit of 2" in sel["note"]
    fixed = select_components(x, max_components=2, seed=0, extend=False)
    assert fixed["k"] == [1, 2] and not fixed["bic_minimum_inside"] and "limit" not in fixed["note"]


def test_warning_reaches_the_report(three_clusters):
    from simcache.analysis.mixtures import report

    x, _ = three_clusters
    res = analyze_gmm(x, seed=0, max_components=2, extend=False)
    assert res["warning"].startswith("BIC is lowest at the largest K searched (2)")
    assert any(line.startswith("**Warning: BIC is lowest") for line in report(res))


@pytest.mark.parametrize("covariance", ["full", "diag", "tied", "spherical"])
def test_parameter_count_matches_sklearn(covariance):
    from sklearn.mixture import GaussianMixture

    from simcache.analysis.mixtures import n_parameters

    x = np.random.default_rng(0).standard_normal((60, 4))
    gm = GaussianMixture(3, covariance_type=covariance, random_state=0).fit(x)
    assert n_parameters(3, 4, covariance) == gm._n_parameters()


def test_warns_when_the_mixture_has_more_parameters_than_points():
    x = np.random.default_rng(0).standard_normal((40, 10))  # one full Gaussian in R^10 already has 65
    sel = select_components(x, max_components=2, seed=0)
    assert sel["chosen_n_parameters"] > 40 and "parameters for 40 points" in sel["note"]
