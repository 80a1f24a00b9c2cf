"""Angles: the theoretical law h(θ), and KS distances that separate isotropic from anisotropic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from simcache.analysis import analyze_angles, angle_cdf, angle_density, plot_result
from simcache.analysis.baselines import matched_baselines


@pytest.mark.parametrize("p", [2, 3, 10, 200])
def test_density_integrates_to_one_and_matches_cdf(p):
    total, _ = integrate.quad(angle_density, 0, np.pi, args=(p,), points=[np.pi / 2], limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    for t in (0.3, 1.2, np.pi / 2, 2.5):
        part, _ = integrate.quad(angle_density, 0, t, args=(p,), limit=200)
        assert angle_cdf(t, p) == pytest.approx(part, abs=1e-6)


def test_p2_is_uniform_and_p3_is_half_sine():
    t = np.linspace(0.1, 3.0, 7)
    assert angle_density(t, 2) == pytest.approx(np.full(7, 1 / np.pi))
    assert angle_density(t, 3) == pytest.approx(np.sin(t) / 2)


def test_isotropic_matches_h_and_anisotropic_does_not(isotropic, anisotropic, tmp_path, assert_png):
    iso = analyze_angles(isotropic, seed=0, n_pairs=5000)["sets"]["data"]
    aniso_res = analyze_angles(anisotropic, seed=0, n_pairs=5000)
    aniso = aniso_res["sets"]["data"]
    assert iso["axis"]["ks"] < 0.02
    assert iso["pair"]["ks"] < 0.03
    assert iso["axis"]["ks_per_axis_max"] < 0.05
    assert aniso["axis"]["ks"] > 0.1
    assert aniso["pair"]["ks"] > 0.1
    assert aniso["axis"]["ks_per_axis_max"] > 0.3
    # the most deviating axis of the anisotropic data is its high-variance end
    assert aniso["axis"]["worst_axes"][0]["axis"] in (0, 11)
    # the isotropic baselines (origin-centred) match h whatever the data
    base = aniso_res["sets"]["gaussian"]
    assert base["axis"]["ks"] < 0.02
    plot_result(aniso_res, tmp_path / "angles.png")
    assert_png(tmp_path / "angles.png")


def test_offset_data_deviates_unless_centred(isotropic):
    shifted = isotropic + 3.0
    raw = analyze_angles(shifted, seed=0, n_pairs=3000)
    centred = analyze_angles(shifted, seed=0, n_pairs=3000, center=True,
                             baselines=matched_baselines(shifted, seed=0, center="origin"))
    assert raw["sets"]["data"]["pair"]["ks"] > 0.5
    assert centred["sets"]["data"]["pair"]["ks"] < 0.04


def test_origin_centred_baselines_follow_h_and_mean_centred_ones_show_the_offset(isotropic):
    shifted = isotropic + 3.0
    res = analyze_angles(shifted, seed=0, n_pairs=3000)
    assert res["baselines"]["center"] == "origin" and res["mean_centred"]["baselines"]["center"] == "mean"
    for name in ("gaussian", "uniform_ball"):
        assert res["sets"][name]["pair"]["ks"] < 0.04  # isotropic about the origin: follows h
        # centred on the data mean, the baseline deviates as the offset data do
        assert res["mean_centred"]["sets"][name]["pair"]["ks"] > 0.5
    assert set(res["mean_centred"]["sets"]) == {"gaussian", "uniform_ball"}
    # the data's numbers do not depend on which baselines sit beside them
    alone = analyze_angles(shifted, seed=0, n_pairs=3000, compare_mean=False)
    assert alone["sets"]["data"]["pair"]["ks"] == res["sets"]["data"]["pair"]["ks"] and "mean_centred" not in alone


def test_figure_has_a_row_per_baseline_centring(isotropic, tmp_path, legend_lists_every_line):
    fig = plot_result(analyze_angles(isotropic + 1.0, seed=0, n_pairs=2000), tmp_path / "angles.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert sum("centred on the origin" in t for t in titles) == 2
    assert sum("centred on the data mean" in t for t in titles) == 2
    legend_lists_every_line(fig)
