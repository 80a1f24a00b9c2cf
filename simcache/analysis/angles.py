"""``angles``: angles to the coordinate axes and between random pairs, against the isotropic law.

For a direction uniform on the sphere of ``R^p`` the angle ``theta`` to any fixed unit vector has
density ``h(theta) = Gamma(p/2) / (sqrt(pi) Gamma((p-1)/2)) sin(theta)^(p-2)`` on ``[0, pi]``; its
CDF is ``I_{(1 - cos theta)/2}((p-1)/2, (p-1)/2)`` (regularised incomplete beta), used for the
goodness of fit.

The baselines the law is checked against are centred on the origin (where an isotropic cloud
follows ``h``); the baselines centred on the data mean are measured too and drawn as a second row
of panels, because norms and angles are measured from the origin and an offset cloud deviates
from ``h`` by its offset alone.

Definitions (measured from the origin, as the vectors are given; ``center=True`` subtracts the
set's mean first):

- axis angles: ``arccos(x_i / ||x||)`` in ``[0, pi]`` for every point and every axis ``e_i``
  (signed, not ``|x_i|``, so isotropic data follow ``h`` exactly);
- pair angles: ``arccos(<x, y> / (||x|| ||y||))`` for ``n_pairs`` random pairs of distinct points.

Goodness of fit: the Kolmogorov-Smirnov distance ``D = sup |F_emp - F_h|`` of the pooled axis
angles, of the pair angles, and of each axis separately (max and median over axes reported). The
pooled axis angles of one point are not independent, so only ``D`` (not a p-value) is meaningful
there; the pair-angle p-value is reported for reference. Zero vectors are skipped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import DATA, GAUSSIAN, UNIFORM_BALL, Baselines, resolve_sets
from simcache.analysis.common import histogram, make_rng, random_pairs, summarize
from simcache.analysis.plotting import (THEORY_STYLE, legend_below, new_figure, plot_order, save_figure,
                                        step_histogram, style, subtitle)
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

NAME = "angles"
MAX_AXIS_VALUES = 4_000_000  # rows are subsampled so that n * p axis angles stay below this


def angle_density(theta: Any, p: int) -> np.ndarray:
    """The isotropic angle density ``h(theta)`` in dimension ``p >= 2``."""
    from scipy.special import gammaln

    if p < 2:
        raise ValueError("the angle density needs p >= 2")
    t = np.clip(np.asarray(theta, dtype=np.float64), 0.0, np.pi)  # edges read back from JSON may pass pi by 1e-7
    log_c = gammaln(p / 2) - gammaln((p - 1) / 2) - 0.5 * np.log(np.pi)
    with np.errstate(divide="ignore"):
        return np.exp(log_c + (p - 2) * np.log(np.sin(t))) if p > 2 else np.full_like(t, np.exp(log_c))


def angle_cdf(theta: Any, p: int) -> np.ndarray:
    """CDF of ``h``: ``I_{(1 - cos theta)/2}((p-1)/2, (p-1)/2)``."""
    from scipy.special import betainc

    t = np.clip(np.asarray(theta, dtype=np.float64), 0.0, np.pi)
    a = (p - 1) / 2
    return betainc(a, a, (1.0 - np.cos(t)) / 2.0)


def ks_distance(values: np.ndarray, p: int) -> float:
    """Kolmogorov-Smirnov distance between the sample ``values`` and the law ``h`` in dimension ``p``."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    m = v.size
    if m == 0:
        return float("nan")
    f = angle_cdf(v, p)
    hi = np.arange(1, m + 1) / m - f
    lo = f - np.arange(0, m) / m
    return float(max(hi.max(), lo.max()))


def axis_angles(x: np.ndarray) -> np.ndarray:
    """``(n, p)`` angles between each row and each coordinate axis (zero rows dropped)."""
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 0]
    return np.arccos(np.clip(x / norms[norms > 0, None], -1.0, 1.0))


def pair_angles(x: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Angles between ``n_pairs`` random pairs of distinct nonzero rows."""
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 0] / norms[norms > 0, None]
    i, j = random_pairs(len(x), int(n_pairs), rng)
    cos = np.einsum("ij,ij->i", x[i], x[j])
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _angles_of(x: np.ndarray, n_pairs: int, center: bool, rng: np.random.Generator) -> dict[str, Any]:
    if center:
        x = x - x.mean(axis=0)
    rows = x
    p = x.shape[1]
    if x.size > MAX_AXIS_VALUES:
        rows = x[np.sort(rng.choice(len(x), MAX_AXIS_VALUES // p, replace=False))]
    return {"axis": axis_angles(rows), "pair": pair_angles(x, n_pairs, rng), "rows": len(rows)}


def _fit(r: dict[str, Any], p: int, ranges: dict[str, np.ndarray]) -> dict[str, Any]:
    ax = r["axis"]
    per_axis = np.array([ks_distance(ax[:, j], p) for j in range(p)])
    worst = np.argsort(per_axis)[::-1][: min(5, p)]
    pair_ks = ks_distance(r["pair"], p)
    return {
        "axis": {
            "rows_used": int(r["rows"]),
            "summary": summarize(ax),
            "ks": ks_distance(ax, p),
            "ks_per_axis_max": float(per_axis.max()),
            "ks_per_axis_median": float(np.median(per_axis)),
            "worst_axes": [{"axis": int(j), "ks": float(per_axis[j]),
                            "mean_angle": float(ax[:, j].mean())} for j in worst],
            "histogram": histogram(ax, ranges["axis"]),
        },
        "pair": {
            "summary": summarize(r["pair"]),
            "ks": pair_ks,
            "ks_pvalue": _ks_pvalue(pair_ks, r["pair"].size),
            "histogram": histogram(r["pair"], ranges["pair"]),
        },
    }


def analyze_angles(points: Any, *, baselines: Baselines | None = None, seed: int = 0, n_pairs: int = 20000,
                   bins: int = 80, center: bool = False, mean_baselines: Baselines | None = None,
                   compare_mean: bool = True) -> dict[str, Any]:
    """Axis and pair angles of the data and the baselines, with KS distances to ``h`` (see module).

    ``baselines`` (under ``sets``) are centred on the origin unless given: the isotropic law is
    about directions from the origin, which is where an origin-centred cloud follows it. With
    ``compare_mean`` the baselines centred on the data mean (``mean_baselines``, drawn from the
    seed unless given) are measured too, under ``mean_centred``: they show how much of the data's
    deviation its offset from the origin alone would cause.
    """
    sets, binfo = resolve_sets(points, baselines, seed, center="origin")
    x = sets[DATA]
    p = int(x.shape[1])
    if p < 2:
        raise ValueError("angles need dimension >= 2")
    raw: dict[str, dict[str, Any]] = {}
    for k, (name, xs) in enumerate(sets.items()):
        raw[name] = _angles_of(xs, n_pairs, center, make_rng(seed, 20 + k))
    raw_mean: dict[str, dict[str, Any]] = {}
    mean_info: dict[str, Any] = {}
    if compare_mean:
        msets, mean_info = resolve_sets(x, mean_baselines, seed, center="mean")
        for k, name in enumerate((UNIFORM_BALL, GAUSSIAN)):
            raw_mean[name] = _angles_of(msets[name], n_pairs, center, make_rng(seed, 23 + k))

    # shared plotting range: the central part of every sample and of the theoretical law
    sd = 1.0 / np.sqrt(max(p - 1, 1))
    th_lo, th_hi = max(0.0, np.pi / 2 - 6 * sd), min(np.pi, np.pi / 2 + 6 * sd)
    every = [*raw.values(), *raw_mean.values()]
    ranges = {}
    for kind in ("axis", "pair"):
        lo = min([th_lo] + [float(np.quantile(r[kind], 0.001)) for r in every])
        hi = max([th_hi] + [float(np.quantile(r[kind], 0.999)) for r in every])
        ranges[kind] = np.linspace(lo, hi, bins + 1)
    out: dict[str, Any] = {
        "analysis": NAME,
        "n": int(x.shape[0]),
        "dim": p,
        "params": {"n_pairs": int(n_pairs), "bins": int(bins), "center": bool(center), "seed": seed,
                   "compare_mean": bool(compare_mean)},
        "baselines": binfo,
        "theory": {"mean": float(np.pi / 2), "sd_approx": float(sd),
                   "density": "Gamma(p/2) / (sqrt(pi) Gamma((p-1)/2)) sin(theta)^(p-2)"},
        "edges": {"axis": ranges["axis"], "pair": ranges["pair"]},
        "sets": {name: _fit(r, p, ranges) for name, r in raw.items()},
    }
    if compare_mean:
        out["mean_centred"] = {"baselines": mean_info,
                               "sets": {name: _fit(r, p, ranges) for name, r in raw_mean.items()}}
    return out


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``angles`` on a run's input: origin-centred baselines, then the mean-centred ones (the run's shared
    baselines stand in for whichever of the two they are)."""
    o, b = ctx.options, ctx.baselines
    centre = b.info.get("center") if b is not None else None
    return analyze_angles(ctx.points, baselines=b if centre == "origin" else None,
                          mean_baselines=b if centre == "mean" else None, seed=o.seed, n_pairs=o.angle_pairs,
                          center=o.center_angles)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: KS distances to the isotropic law per set, for both baseline centrings."""
    def cells(s: dict[str, Any]) -> list[str]:
        return [fmt(s["axis"]["ks"]), fmt(s["axis"]["ks_per_axis_max"]), fmt(s["pair"]["ks"])]

    rows = set_rows(r["sets"], cells)
    rows = [[f"{lab} (origin-centred)" if lab != style(DATA)["label"] else lab, *c] for lab, *c in rows]
    alt = r.get("mean_centred")
    if alt:
        rows += [[f"{lab} (mean-centred)", *c] for lab, *c in set_rows(alt["sets"], cells)]
    lines = table(["set", "KS D, axis angles", "max KS D over axes", "KS D, pair angles"], rows)
    how = " (vectors centred first)." if r["params"].get("center") else " (vectors as given, from the origin)."
    lines += ["", f"Against the isotropic density h(θ) for p = {r['dim']}{how} The origin-centred baselines "
              "follow h; the mean-centred ones show what the data's offset from the origin alone would do."]
    return lines


def _ks_pvalue(d: float, m: int) -> float:
    from scipy.stats import kstwo

    return float(kstwo.sf(d, m)) if m > 0 and np.isfinite(d) else float("nan")


def plot_angles(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Axis-angle and pair-angle histograms (density) with the theoretical ``h``; one row per baseline centring."""
    p = result["dim"]
    rows = [("centred on the origin", result["sets"], "")]
    alt = result.get("mean_centred")
    if alt:
        rows.append(("centred on the data mean", {DATA: result["sets"][DATA], **alt["sets"]}, ", mean-centred"))
    fig, axes = new_figure(len(rows), 2, width=6.4, height=4.8)
    titles = {"axis": "Angle between x and each coordinate axis", "pair": "Angle between random pairs"}
    centred = " (vectors centred)" if result["params"].get("center") else ""
    for r, (where, sets, tag) in enumerate(rows):
        for ax, kind in zip(axes[r], ("axis", "pair")):
            edges = np.asarray(result["edges"][kind], dtype=np.float64)
            for name in plot_order(sets):
                s = sets[name][kind]
                suffix = "" if name == DATA else tag
                step_histogram(ax, edges, s["histogram"]["counts"], name,
                               label=f"{style(name)['label']}{suffix} (KS D = {s['ks']:.3f})")
            t = np.linspace(edges[0], edges[-1], 400)
            ax.plot(t, angle_density(t, p), label=f"isotropic law h(θ), p = {p}", **THEORY_STYLE)
            ax.set_xlabel("angle θ (radians)")
            ax.set_ylabel("density")
            ax.set_title(f"{titles[kind]}{centred}\nbaselines {where}; {subtitle(result)}")
            legend_below(ax, ncol=2)
            ax.grid(alpha=0.3)
    save_figure(fig, path)
    return fig
