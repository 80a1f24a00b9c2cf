"""Sweep curves: hit ratio, cross-user hit ratio and cost against capacity or radius, every line named.

A sweep has three dimensions (policy x capacity x radius), and a plot can show two of them. The
figures keep every line identifiable:

- with a few values of the third dimension, one panel (facet) per value, and one line per policy
  in each panel (a colour, a marker and a dash per policy);
- with many values, one panel per policy, and one line per value, coloured along a colour bar;
- one row of panels per metric: hit ratio, the hit ratio from *other users'* entries when the
  trace has user ids (the reuse a shared cache is for), and mean service cost;
- the legend or colour bar sits outside the panels, and a note under the figure names policies
  whose results are identical at every point (their lines coincide).

Object-cache rows (``family == "object"``, see :mod:`simcache.replay.sweep`) get figures of their
own, ``object_curves_capacity.png`` and ``object_curves_k.png``: NAG, overlap@k with the server's
list and mean cost, with k as the third dimension (the radius does not apply to most of them).

:func:`curve_figure` builds a figure (tests read its lines and legend); :func:`plot_curves`
writes the PNGs of a sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recvae.storage import atomic_path

#: at most this many facets (values of the third dimension); more are drawn on a colour bar
MAX_FACETS = 4
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DASHES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1)))
_LABELS = {"capacity": "C", "radius": "r", "k": "k"}
#: the metrics of object-cache rows, in panel order
OBJECT_METRICS = (("nag", "NAG"), ("overlap_mean", "overlap@k with server"), ("mean_cost", "mean cost"))


def _present(df: pd.DataFrame, col: str) -> bool:
    return col in df and df[col].notna().any()


def is_object_table(df: pd.DataFrame) -> bool:
    """Whether every row of ``df`` is an object-cache point."""
    return "family" in df and bool((df["family"] == "object").all())


def metrics_of(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, axis label) of the metrics a sweep's table can show (NAG, overlap@k and mean cost
    for object-cache rows; hit ratios and service cost for query-cache rows)."""
    out = []
    if _present(df, "hit_ratio"):
        out.append(("hit_ratio", "hit ratio"))
        if _present(df, "other_user_hit_ratio"):
            out.append(("other_user_hit_ratio", "hit ratio from other users"))
        out.append(("mean_service_cost", "mean service cost"))
    out += [(col, label) for col, label in OBJECT_METRICS if _present(df, col)]
    return out


def identical_policies(df: pd.DataFrame) -> list[list[str]]:
    """Groups of policies whose plotted metrics are equal at every (capacity, radius, k) point."""
    axes = [c for c in ("capacity", "radius", "k") if c in df]
    values = [c for c, _ in metrics_of(df)] + (["hits"] if _present(df, "hits") else [])
    keyed = {}
    for pol, sub in df.groupby("policy", sort=False):
        sub = sub.sort_values(axes)
        key = tuple(tuple(sub[a]) for a in axes) + tuple(
            tuple(np.round(sub[c].to_numpy(float), 12)) for c in values)
        keyed.setdefault(key, []).append(pol)
    return [group for group in keyed.values() if len(group) > 1]


def curve_figure(df: pd.DataFrame, x: str, third: str | None = None) -> Any:
    """The figure of ``df``'s metrics against ``x`` ("capacity", "radius" or "k"), ``third`` the
    dimension of facets or colours (default: radius, or capacity when ``x`` is the radius), see the
    module doc."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if third is None:
        third = "radius" if x == "capacity" else "capacity"
    policies = list(dict.fromkeys(df["policy"]))
    values = sorted(df[third].unique())
    metrics = metrics_of(df)
    by_policy = len(values) > MAX_FACETS
    facets = policies if by_policy else values
    ncol = len(facets)
    fig, axes = plt.subplots(len(metrics), ncol, figsize=(3.4 * ncol + 2.2, 2.7 * len(metrics) + 0.9),
                             squeeze=False, sharex=True)  # fmt: skip
    cmap = plt.get_cmap("viridis")
    norm = matplotlib.colors.Normalize(vmin=min(values), vmax=max(values)) if by_policy else None
    style = {p: dict(color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], linestyle=DASHES[i % len(DASHES)])
             for i, p in enumerate(policies)}  # fmt: skip
    for col, facet in enumerate(facets):
        if by_policy:
            lines = [(v, df[(df["policy"] == facet) & (df[third] == v)]) for v in values]
        else:
            lines = [(p, df[(df["policy"] == p) & (df[third] == facet)]) for p in policies]
        for row, (metric, ylabel) in enumerate(metrics):
            ax = axes[row][col]
            for key, sub in lines:
                sub = sub.sort_values(x)
                if sub.empty:
                    continue
                if by_policy:
                    kw = dict(color=cmap(norm(key)), marker="o", linestyle="-", label=f"{_LABELS[third]}={key:g}")
                else:
                    kw = dict(**style[key], label=key)
                ax.plot(sub[x], sub[metric], ms=4, lw=1.4, alpha=0.9, **kw)
            if row == 0:
                ax.set_title(facet if by_policy else f"{_LABELS[third]} = {facet:g}", fontsize=10)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == len(metrics) - 1:
                ax.set_xlabel(x)
            if metric.endswith("hit_ratio") or metric in ("nag", "overlap_mean"):
                top = float(np.nanmax(df[metric].to_numpy(float))) if df[metric].notna().any() else 1.0
                ax.set_ylim(0, min(1.0, max(0.05, 1.15 * top)))
            _scale_x(ax, df[x].to_numpy(dtype=float), x, matplotlib)
            ax.grid(True, alpha=0.3)
    same = identical_policies(df)
    note = "; ".join(" = ".join(g) for g in same)
    fig.suptitle(f"sweep over {x} ({int(df['requests'].iloc[0]):,} requests)", fontsize=11)
    right = 1.0 - 2.0 / fig.get_figwidth()  # room for the legend or colour bar
    fig.tight_layout(rect=(0, 0.03 if note else 0, right, 0.96))
    if by_policy:
        cax = fig.add_axes((right + 0.2 / fig.get_figwidth(), 0.15, 0.25 / fig.get_figwidth(), 0.7))
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        bar.set_label(third)
        if len(values) <= 12:
            bar.set_ticks(values, labels=[f"{v:g}" for v in values])
    else:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=9, title="policy",
                   frameon=False)  # fmt: skip
    if note:
        fig.text(0.01, 0.005, f"identical results at every point (lines coincide): {note}", fontsize=8,
                 color="dimgray", va="bottom")  # fmt: skip
    return fig


def _scale_x(ax: Any, vals: np.ndarray, x: str, matplotlib: Any) -> None:
    """Log axis labelled at the swept capacities when they span a decade or more."""
    if x == "capacity" and vals.min() > 0 and vals.max() / vals.min() >= 10:
        ax.set_xscale("log")
        ticks = sorted(set(vals.tolist()))
        if len(ticks) <= 8:
            ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks], fontsize=8)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def plot_curves(df: pd.DataFrame, out: str | Path) -> list[Path]:
    """``curves_capacity.png`` / ``curves_radius.png`` (query-cache rows) and
    ``object_curves_capacity.png`` / ``object_curves_k.png`` (object-cache rows), each for an axis
    with at least two values."""
    import matplotlib.pyplot as plt

    out = Path(out)
    written = []
    objects = df["family"] == "object" if "family" in df else pd.Series(False, index=df.index)
    figures = [(df[~objects], x, None, f"curves_{x}.png") for x in ("capacity", "radius")]
    figures += [(df[objects], "capacity", "k", "object_curves_capacity.png"),
                (df[objects], "k", "capacity", "object_curves_k.png")]  # fmt: skip
    for sub, x, third, fname in figures:
        if sub.empty or sub[x].nunique() < 2:
            continue
        fig = curve_figure(sub, x, third)
        path = out / fname
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
