"""Sweep figures name every line: facets with a legend of every policy, or a colour bar of every
value, and a note when policies give identical results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simcache.replay.curves import MAX_FACETS, curve_figure, identical_policies, plot_curves


def table(policies, radii, capacities=(20, 100, 400), same_as=None) -> pd.DataFrame:
    rows = []
    for i, pol in enumerate(policies):
        for r in radii:
            for c in capacities:
                j = 0 if same_as and pol in same_as else i
                hits = int(50 * r * np.log(c)) + 7 * j
                rows.append(dict(policy=pol, capacity=c, radius=r, requests=2000, hits=hits, hit_ratio=hits / 2000,
                                 other_user_hit_ratio=hits / 4000, mean_service_cost=1 - hits / 2000))
    return pd.DataFrame(rows)


def test_facets_legend_lists_every_policy_once():
    df = table(["lru", "fifo", "lfu"], [0.5, 1.0])
    fig = curve_figure(df, "capacity")
    axes = fig.axes
    assert len(axes) == 3 * 2  # hit ratio, other-user hit ratio, cost x two radii
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lru", "fifo", "lfu"]
    assert all(len(ax.get_lines()) == 3 for ax in axes)
    styles = {(ln.get_marker(), ln.get_linestyle()) for ln in axes[0].get_lines()}
    assert len(styles) == 3  # distinct marker and dash per policy


def test_many_values_get_a_colour_bar_with_every_value():
    radii = [round(0.2 * k, 1) for k in range(1, MAX_FACETS + 3)]
    fig = curve_figure(table(["lru", "lfu"], radii), "capacity")
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == 3 * 2 and all(len(ax.get_lines()) == len(radii) for ax in panels)
    bar = [ax for ax in fig.axes if not ax.get_lines()]
    assert len(bar) == 1 and [t.get_text() for t in bar[0].get_yticklabels()] == [f"{r:g}" for r in radii]


def test_identical_policies_are_named_in_the_figure(tmp_path):
    df = table(["lru", "rnd-lru", "lfu"], [0.5, 1.0], same_as={"lru", "rnd-lru"})
    assert identical_policies(df) == [["lru", "rnd-lru"]]
    fig = curve_figure(df, "radius")
    assert any("lru = rnd-lru" in t.get_text() for t in fig.texts)
    assert [p.name for p in plot_curves(df, tmp_path)] == ["curves_capacity.png", "curves_radius.png"]
