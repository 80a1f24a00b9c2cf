"""Baselines: the uniform ball's norms follow r^p, scales match the data, seeds reproduce."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simcache.analysis import analyze_norms, isotropic_gaussian, matched_baselines, uniform_ball
from simcache.analysis.common import random_pairs


@pytest.mark.parametrize("p", [2, 5, 30])
def test_uniform_ball_norms_follow_r_to_the_p(p):
    radius = 3.0
    x = uniform_ball(4000, p, radius=radius, rng=0)
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= radius
    d, pvalue = stats.kstest(r, lambda t: np.clip(t / radius, 0, 1) ** p)
    assert pvalue > 1e-3, (d, pvalue)
    # directions are uniform: the mean direction is near 0
    assert np.linalg.norm((x / r[:, None]).mean(axis=0)) < 0.1


def test_uniform_ball_norms_via_analyze_norms():
    """The same law seen through the norms analysis (origin-centred baselines of origin-centred data)."""
    p = 8
    x = uniform_ball(3000, p, radius=2.0, rng=5)
    res = analyze_norms(x, seed=0, baselines=matched_baselines(x, seed=0, center="origin"))
    q50 = res["sets"]["data"]["summary"]["q50"]
    assert q50 == pytest.approx(2.0 * 0.5 ** (1 / p), rel=0.02)
    # the matched ball baseline has radius sqrt(E||x||^2 (p+2)/p), which is 2.0 for this data
    assert res["baselines"]["uniform_ball_radius"] == pytest.approx(2.0, rel=0.02)
    assert res["sets"]["uniform_ball"]["summary"]["max"] <= res["baselines"]["uniform_ball_radius"]


def test_gaussian_scale_and_center():
    x = isotropic_gaussian(5000, 4, sigma=2.0, center=np.array([1.0, 0, 0, 0]), rng=1)
    assert x.mean(axis=0) == pytest.approx([1, 0, 0, 0], abs=0.1)
    assert x.std(axis=0) == pytest.approx([2, 2, 2, 2], rel=0.05)


def test_matched_baselines_share_total_variance_and_mean():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3000, 10)) * np.arange(1, 11) + 5.0
    b = matched_baselines(data, seed=0)
    total_var = data.var(axis=0).sum()
    for base in (b.uniform_ball, b.gaussian):
        assert base.shape == data.shape
        assert base.var(axis=0).sum() == pytest.approx(total_var, rel=0.05)
        assert base.mean(axis=0) == pytest.approx(data.mean(axis=0), abs=0.5)
    assert b.info["center"] == "mean"


def test_baselines_reproducible_from_seed():
    data = np.random.default_rng(0).standard_normal((100, 3))
    a, b, c = (matched_baselines(data, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a.gaussian, b.gaussian) and np.array_equal(a.uniform_ball, b.uniform_ball)
    assert not np.array_equal(a.gaussian, c.gaussian)


def test_bad_center_refused():
    with pytest.raises(ValueError, match="center"):
        matched_baselines(np.zeros((5, 2)), center="median")


def test_random_pairs_distinct_and_uniform():
    i, j = random_pairs(5, 20000, np.random.default_rng(0))
    assert (i != j).all()
    counts = np.bincount(j, minlength=5)
    assert counts.min() > 3500
