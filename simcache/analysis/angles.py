"""``angles``: angles to the coordinate axes and between random pairs, against the isotropic law.

For a direction uniform on the sphere of ``R^p`` the angle ``theta`` to any fixed unit vector has
density ``h(theta) = Gamma(p/2) / (sqrt(pi) Gamma((p-1)/2)) sin(theta)^(p-2)`` on ``[0, pi]``; its
CDF is ``I_{(1 - cos theta)/2}((p-1)/2, (p-1)/2)`` (regularised incomplete beta), used for the
goodness of fit.

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

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import histogram, make_rng, random_pairs, summarize
from simcache.analysis.plotting import (THEORY_STYLE, new_figure, plot_order, save_figure, step_histogram, style,
                                        subtitle)

NAME = "angles"
MAX_AXIS_VALUES = 4_000_000  # rows are subsampled so that n * p axis angles stay below this


def angle_density(theta: Any, p: int) -> np.ndarray:
    """The isotropic angle density ``h(theta)`` in dimension ``p >= 2``."""
    from scipy.special import gammaln

    if p < 2:
        raise ValueError("the angle density needs p >= 2")
    t = np.asarray(theta, dtype=np.float64)
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


def analyze_angles(points: Any, *, baselines: Baselines | None = None, seed: int = 0, n_pairs: int = 20000,
                   bins: int = 80, center: bool = False) -> dict[str, Any]:
    """Axis and pair angles of the data and the baselines, with KS distances to ``h`` (see module)."""
    sets, binfo = resolve_sets(points, baselines, seed)
    p = int(sets["data"].shape[1])
    if p < 2:
        raise ValueError("angles need dimension >= 2")
    raw: dict[str, dict[str, np.ndarray]] = {}
    for k, (name, x) in enumerate(sets.items()):
        rng = make_rng(seed, 20 + k)
        if center:
            x = x - x.mean(axis=0)
        rows = x
        if x.size > MAX_AXIS_VALUES:
            rows = x[np.sort(rng.choice(len(x), MAX_AXIS_VALUES // p, replace=False))]
        raw[name] = {"axis": axis_angles(rows), "pair": pair_angles(x, n_pairs, rng), "rows": len(rows)}

    # shared plotting range: the central part of every sample and of the theoretical law
    sd = 1.0 / np.sqrt(max(p - 1, 1))
    th_lo, th_hi = max(0.0, np.pi / 2 - 6 * sd), min(np.pi, np.pi / 2 + 6 * sd)
    out_sets: dict[str, Any] = {}
    ranges = {}
    for kind in ("axis", "pair"):
        lo = min([th_lo] + [float(np.quantile(r[kind], 0.001)) for r in raw.values()])
        hi = max([th_hi] + [float(np.quantile(r[kind], 0.999)) for r in raw.values()])
        ranges[kind] = np.linspace(lo, hi, bins + 1)
    for name, r in raw.items():
        ax = r["axis"]
        per_axis = np.array([ks_distance(ax[:, j], p) for j in range(p)])
        worst = np.argsort(per_axis)[::-1][: min(5, p)]
        out_sets[name] = {
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
                "ks": ks_distance(r["pair"], p),
                "ks_pvalue": _ks_pvalue(ks_distance(r["pair"], p), r["pair"].size),
                "histogram": histogram(r["pair"], ranges["pair"]),
            },
        }
    return {
        "analysis": NAME,
        "n": int(sets["data"].shape[0]),
        "dim": p,
        "params": {"n_pairs": int(n_pairs), "bins": int(bins), "center": bool(center), "seed": seed},
        "baselines": binfo,
        "theory": {"mean": float(np.pi / 2), "sd_approx": float(sd),
                   "density": "Gamma(p/2) / (sqrt(pi) Gamma((p-1)/2)) sin(theta)^(p-2)"},
        "edges": {"axis": ranges["axis"], "pair": ranges["pair"]},
        "sets": out_sets,
    }


def _ks_pvalue(d: float, m: int) -> float:
    from scipy.stats import kstwo

    return float(kstwo.sf(d, m)) if m > 0 and np.isfinite(d) else float("nan")


def plot_angles(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Axis-angle and pair-angle histograms (density) of every set with the theoretical ``h``."""
    fig, axes = new_figure(1, 2, width=6.4, height=4.6)
    p = result["dim"]
    titles = {"axis": "Angle between x and each coordinate axis", "pair": "Angle between random pairs"}
    for ax, kind in zip(axes[0], ("axis", "pair")):
        edges = np.asarray(result["edges"][kind], dtype=np.float64)
        for name in plot_order(result["sets"]):
            s = result["sets"][name][kind]
            step_histogram(ax, edges, s["histogram"]["counts"], name,
                           label=f"{style(name)['label']} (KS D = {s['ks']:.3f})")
        t = np.linspace(edges[0], edges[-1], 400)
        ax.plot(t, angle_density(t, p), label=f"theory h(θ), p = {p}", **THEORY_STYLE)
        ax.set_xlabel("angle θ (radians)")
        ax.set_ylabel("density")
        centred = " (centred)" if result["params"].get("center") else ""
        ax.set_title(f"{titles[kind]}{centred}\n{subtitle(result)}")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    save_figure(fig, path)

