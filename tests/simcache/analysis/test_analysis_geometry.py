"""norms, balls, projections: numbers against direct computation, figures written."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.analysis import analyze_balls, analyze_norms, analyze_projections, plot_result
from simcache.jsonout import to_jsonable


def test_norms_summary_and_histogram(anisotropic, tmp_path, assert_png):
    res = analyze_norms(anisotropic, seed=0, bins=30)
    norms = np.linalg.norm(anisotropic, axis=1)
    s = res["sets"]["data"]["summary"]
    assert s["min"] == pytest.approx(norms.min()) and s["max"] == pytest.approx(norms.max())
    assert s["q50"] == pytest.approx(np.median(norms))
    for name in ("data", "uniform_ball", "gaussian"):
        h = res["sets"][name]["histogram"]
        assert sum(h["counts"]) + h["outside"] == len(anisotropic)
        assert h["outside"] == 0  # shared edges cover every set
    assert len(res["edges"]) == 31
    plot_result(res, tmp_path / "norms.png")
    assert_png(tmp_path / "norms.png")


def test_norms_reproducible(isotropic):
    a, b, c = (to_jsonable(analyze_norms(isotropic, seed=s)["sets"]) for s in (3, 3, 4))
    assert a == b
    assert a["gaussian"] != c["gaussian"] and a["data"]["summary"] == c["data"]["summary"]


def test_balls_counts_and_growth(subspace5, tmp_path, assert_png):
    res = analyze_balls(subspace5, seed=0, centers=10)
    for name, s in res["sets"].items():
        q50 = np.asarray(s["fraction_inside"]["q50"])
        assert (np.diff(q50) >= 0).all() and q50[-1] == pytest.approx(1.0)
        assert s["distances"]["count"] == 10 * (len(subspace5) - 1)
    # count grows like r^m with m near the intrinsic dimension (5) for the data, far more for the baselines
    assert 3.0 < res["sets"]["data"]["growth_exponent"]["median"] < 6.5
    assert res["sets"]["gaussian"]["growth_exponent"]["median"] > 8.0
    plot_result(res, tmp_path / "balls.png")
    assert_png(tmp_path / "balls.png")


def test_projections_spectrum_and_pairs(subspace5, tmp_path, assert_png):
    res = analyze_projections(subspace5, seed=0, n_pairs=4, max_scatter=500)
    assert len(res["pairs"]) == 4 and len(set(res["pairs"])) == 4
    assert all(i < j < 20 for i, j in res["pairs"])
    data, gauss = res["sets"]["data"], res["sets"]["gaussian"]
    assert data["spectrum"]["components_for"]["99%"] == 5
    assert 4.0 < data["spectrum"]["participation_ratio"] <= 5.0
    assert gauss["spectrum"]["participation_ratio"] > 18.0
    assert np.asarray(data["scatter"][0]).shape == (500, 2)
    i, j = res["pairs"][0]
    assert data["correlation"][0] == pytest.approx(np.corrcoef(subspace5[:, i], subspace5[:, j])[0, 1])
    plot_result(res, tmp_path / "proj.png")
    assert_png(tmp_path / "proj.png")
