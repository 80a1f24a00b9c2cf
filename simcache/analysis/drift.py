"""``drift``: how far a user's embedding moves between consecutive embeddings, against other users.

Similarity caching pays off for a user's new request when an earlier answer lies within the cache
radius. The cheapest such answer is the user's own previous embedding, so what decides the
question is the *drift* (distance between consecutive embeddings of one user) compared with how
far other users are. For traces with several embeddings per user (rows ordered by ``seq``, else by
row order, within each user):

- ``drift``: ``||x_t - x_{t-1}||`` for every consecutive pair of one user (all pairs), also
  relative to ``||x_{t-1}||`` and as cosine similarity; and the median drift by step ``t``;
- ``other_users``: distances between ``max_pairs`` random pairs of rows of different users;
- ``nearest_other_user``: for ``nn_queries`` random rows that have a previous embedding, the
  distance to the nearest *latest* embedding of another user (database: one row per user, at most
  ``max_database`` users, sampled when more), and ``frac_drift_below_nearest_other``, the share of
  those rows whose own previous embedding is closer than any other user: the rows a cache keyed
  on previous embeddings could serve from the user's own last answer;
- baselines: random-pair distances of the matched baselines (no user structure) on the same axes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import DATA, Baselines, matched_baselines
from simcache.analysis.common import (histogram, make_rng, pairwise_row_distances, random_pairs, subsample,
                                      summarize)
from simcache.analysis.neighbors import knn
from simcache.analysis.plotting import legend_below, line_style, new_figure, note_figure, save_figure, style, subtitle
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, table
from simcache.trace.info import user_order

NAME = "drift"
_CHUNK = 65536
MAX_STEPS = 30  # steps t = 1..MAX_STEPS get their own median in the by-step curve


def _rows(points: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.asarray(points[idx], dtype=np.float64)


def _pair_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances, norms of ``points[a]`` and cosines for index pairs, computed in chunks."""
    dist = np.empty(len(a))
    norm_a = np.empty(len(a))
    cos = np.empty(len(a))
    for s in range(0, len(a), _CHUNK):
        xa, xb = _rows(points, a[s : s + _CHUNK]), _rows(points, b[s : s + _CHUNK])
        dist[s : s + _CHUNK] = pairwise_row_distances(xa, xb)
        na, nb = np.linalg.norm(xa, axis=1), np.linalg.norm(xb, axis=1)
        norm_a[s : s + _CHUNK] = na
        with np.errstate(invalid="ignore", divide="ignore"):
            cos[s : s + _CHUNK] = np.einsum("ij,ij->i", xa, xb) / (na * nb)
    return dist, norm_a, cos


def analyze_drift(points: Any, user_ids: Any, seq: Any = None, *, baselines: Baselines | None = None, seed: int = 0,
                  max_pairs: int = 200_000, nn_queries: int = 2000, max_database: int = 200_000,
                  baseline_points: int = 20_000, bins: int = 60) -> dict[str, Any]:
    """Drift between consecutive embeddings of a user vs distances between users (see the module docstring).

    ``points`` may be a memory-mapped ``(n, d)`` array; rows are read in chunks. Returns a result
    with ``"skipped"`` set (and no figure data) when no user has two embeddings.
    """
    x = np.asarray(points) if not hasattr(points, "shape") else points
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"points must be a 2-D (n, d) array with n >= 2, got shape {x.shape}")
    n, d = int(x.shape[0]), int(x.shape[1])
    users = np.asarray(user_ids)
    if users.shape != (n,):
        raise ValueError(f"user_ids must have shape ({n},), got {users.shape}")
    if seq is not None and np.asarray(seq).shape != (n,):
        raise ValueError(f"seq must have shape ({n},), got {np.asarray(seq).shape}")
    rng = make_rng(seed, 60)
    order, codes = user_order(users, seq)
    sc = codes[order]
    same = sc[1:] == sc[:-1]
    prev, nxt = order[:-1][same], order[1:][same]
    n_users = int(codes.max()) + 1
    base = {
        "analysis": NAME,
        "n": n,
        "dim": d,
        "users": n_users,
        "users_with_several": int(np.unique(sc[1:][same]).size),
        "consecutive_pairs": int(len(prev)),
        "params": {"max_pairs": int(max_pairs), "nn_queries": int(nn_queries), "max_database": int(max_database),
                   "bins": int(bins), "seed": seed, "order_within_user": "seq" if seq is not None else "row order"},
    }
    if len(prev) == 0:
        base["skipped"] = "no user has two or more embeddings; drift needs a trace with several embeddings per user"
        return base

    # step index t of each consecutive pair (1 for a user's second embedding)
    group_start = np.r_[0, np.flatnonzero(sc[1:] != sc[:-1]) + 1]
    pos = np.arange(n) - np.repeat(group_start, np.diff(np.r_[group_start, n]))
    step = pos[1:][same]

    drift, prev_norm, cos = _pair_distances(x, prev, nxt)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = drift / prev_norm
    by_step = []
    for t in range(1, min(int(step.max()), MAX_STEPS) + 1):
        v = drift[step == t]
        if v.size:
            q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
            by_step.append({"step": t, "count": int(v.size), "q25": q25, "median": q50, "q75": q75})

    # distances between different users
    m = int(max_pairs)
    other = np.empty(0)
    if n_users >= 2:
        i, j = random_pairs(n, m, rng)
        for _ in range(100):
            bad = codes[i] == codes[j]
            if not bad.any():
                break
            i[bad], j[bad] = random_pairs(n, int(bad.sum()), rng)
        keep = codes[i] != codes[j]
        other, _, _ = _pair_distances(x, i[keep], j[keep])

    # nearest other user's latest embedding, for rows that have a previous embedding
    nearest = {"queries": 0}
    nn_dist = np.empty(0)
    if n_users >= 2:
        last_rows = order[np.r_[group_start[1:] - 1, n - 1]]  # last row of each user in sorted order
        db_rows = last_rows if len(last_rows) <= max_database else np.sort(rng.choice(last_rows, max_database, replace=False))
        q_sel = np.sort(rng.choice(len(nxt), size=min(int(nn_queries), len(nxt)), replace=False))
        q_rows, q_drift = nxt[q_sel], drift[q_sel]
        k = min(2, len(db_rows))
        dist_k, idx_k = knn(_rows(x, db_rows), k, queries=_rows(x, q_rows))
        own = codes[db_rows][idx_k] == codes[q_rows][:, None]
        first_other = np.argmax(~own, axis=1)
        found = (~own).any(axis=1)
        nn_dist = dist_k[np.arange(len(q_rows)), first_other][found]
        q_drift = q_drift[found]
        nearest = {
            "queries": int(found.sum()),
            "database_users": int(len(db_rows)),
            "database_sampled": bool(len(db_rows) < len(last_rows)),
            "summary": summarize(nn_dist),
            "frac_drift_below_nearest_other": float(np.mean(q_drift < nn_dist)) if nn_dist.size else None,
            "median_ratio_drift_to_nearest_other": float(np.median(q_drift / nn_dist)) if nn_dist.size else None,
        }

    # baselines: random pairs of structureless clouds of the same spread
    if baselines is None:
        sample = subsample(np.arange(n), baseline_points, make_rng(seed, 61))
        baselines = matched_baselines(_rows(x, sample), seed=seed)
    base_dist = {}
    for k, (name, b) in enumerate((("uniform_ball", baselines.uniform_ball), ("gaussian", baselines.gaussian))):
        bi, bj = random_pairs(len(b), m, make_rng(seed, 62 + k))
        base_dist[name] = pairwise_row_distances(b[bi], b[bj])

    samples = {"drift": drift, "other_users": other, "nearest_other_user": nn_dist, **base_dist}
    edges = _log_edges([v for v in samples.values() if v.size], bins)
    hists = {}
    for kind, v in samples.items():
        if v.size:
            h = histogram(v, edges)
            h["cdf"] = np.searchsorted(np.sort(v), edges, side="right") / v.size  # at each edge
            hists[kind] = h
    drift_med = float(np.median(drift))
    base.update({
        "drift": {
            "summary": summarize(drift),
            "zero_fraction": float(np.mean(drift == 0)),
            "relative_summary": summarize(rel[np.isfinite(rel)]),
            "cosine_summary": summarize(cos[np.isfinite(cos)]),
            "by_step": by_step,
        },
        "other_users": {"pairs": int(other.size), "summary": summarize(other)},
        "nearest_other_user": nearest,
        "ratio_median_drift_to_median_other": drift_med / float(np.median(other)) if other.size else None,
        "baselines": dict(baselines.info),
        "sets": {name: {"pair_summary": summarize(v)} for name, v in base_dist.items()},
        "edges": edges,
        "histograms": hists,
    })
    return base


def _log_edges(samples: list[np.ndarray], bins: int) -> np.ndarray:
    """Log-spaced edges from the smallest positive 0.1% quantile to the largest value of the samples."""
    pos = [v[v > 0] for v in samples]
    lo = min((float(np.quantile(v, 1e-3)) for v in pos if v.size), default=1e-3)
    hi = max((float(v.max()) for v in pos if v.size), default=1.0)
    if not hi > lo:
        lo, hi = lo / 2, lo * 2
    return np.geomspace(lo, hi, int(bins) + 1)


_KIND_STYLE = {
    "drift": {"color": style(DATA)["color"], "label": "consecutive embeddings of a user (drift)", "linewidth": 2.2},
    "nearest_other_user": {"color": "tab:purple", "label": "nearest other user's latest embedding", "linewidth": 1.8},
    "other_users": {"color": "tab:gray", "label": "random pairs of different users", "linewidth": 1.6},
}


def _kind_style(kind: str) -> dict[str, Any]:
    if kind in _KIND_STYLE:
        return dict(_KIND_STYLE[kind])
    st = line_style(kind)
    st["label"] = f"{st['label']}: random pairs"
    return st


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``drift`` on every row of a run's input (whatever the row selection), baselines shared with the run."""
    o, req = ctx.options, ctx.input.requests
    return analyze_drift(req.vectors, req.user_id, req.seq, baselines=ctx.baselines, seed=o.seed,
                         max_pairs=o.drift_pairs, nn_queries=o.drift_queries, bins=o.bins)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: drift against distances between users."""
    if r.get("skipped"):
        return [f"Skipped: {r['skipped']}."]
    dr, nn = r["drift"]["summary"], r["nearest_other_user"]
    other = r["other_users"]["summary"]
    return [
        f"{r['consecutive_pairs']:,} consecutive pairs from {r['users_with_several']:,} of {r['users']:,} users.",
        "",
        *table(["distance", "median", "5%", "95%"], [
            ["consecutive embeddings (drift)", fmt(dr["q50"]), fmt(dr["q05"]), fmt(dr["q95"])],
            *([["nearest other user", fmt(nn["summary"]["q50"]), fmt(nn["summary"]["q05"]),
                fmt(nn["summary"]["q95"])]] if nn.get("summary") else []),
            ["random different users", fmt(other.get("q50")), fmt(other.get("q05")), fmt(other.get("q95"))],
        ]),
        "",
        f"Median drift / median distance between users: {fmt(r['ratio_median_drift_to_median_other'])}. "
        f"Share of embeddings whose previous one is closer than any other user: "
        f"{fmt(nn.get('frac_drift_below_nearest_other'))}.",
    ]


def plot_drift(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Distance histograms, their CDFs, and the median drift by step; a note figure when skipped."""
    if result.get("skipped"):
        return note_figure(f"drift skipped:\n{result['skipped']}", path)
    fig, axes = new_figure(1, 3, width=5.4, height=5.2)
    ax1, ax2, ax3 = axes[0]
    edges = np.asarray(result["edges"], dtype=np.float64)
    kinds = ["uniform_ball", "gaussian", "other_users", "nearest_other_user", "drift"]
    for kind in kinds:
        h = result["histograms"].get(kind)
        if h is None:
            continue
        st = _kind_style(kind)
        counts = np.asarray(h["counts"], dtype=np.float64)
        total = counts.sum() + h["outside"]
        ax1.stairs(counts / total / np.diff(np.log10(edges)), edges, **st)
        ax2.plot(edges, np.asarray(h["cdf"], dtype=np.float64), **st)
    ax1.set_xscale("log")
    ax1.set_xlabel("Euclidean distance (log scale)")
    ax1.set_ylabel("density of log10 distance")
    ax1.set_title(f"Drift vs distances between users\n{subtitle(result)}, "
                  f"{result['consecutive_pairs']:,} consecutive pairs")
    legend_below(ax1, fontsize=7)
    ax1.grid(alpha=0.3)
    ax2.set_xscale("log")
    ax2.set_xlabel("cache radius (distance threshold, log scale)")
    ax2.set_ylabel("fraction of pairs within the radius")
    ax2.set_title("Cumulative distributions")
    legend_below(ax2, fontsize=7)
    ax2.grid(alpha=0.3)
    bs = result["drift"]["by_step"]
    if bs:
        t = np.array([b["step"] for b in bs])
        ax3.plot(t, [b["median"] for b in bs], "o-", color=_KIND_STYLE["drift"]["color"], label="median drift")
        ax3.fill_between(t, [b["q25"] for b in bs], [b["q75"] for b in bs], color=_KIND_STYLE["drift"]["color"],
                         alpha=0.2, label="interquartile range")
    nn = result["nearest_other_user"].get("summary")
    if nn and nn.get("count"):
        ax3.axhline(nn["q50"], color="tab:purple", linestyle="--",
                    label="median distance to nearest other user")
    from matplotlib.ticker import MaxNLocator

    ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax3.set_xlabel("step t (embedding number within the user, 1 = second)")
    ax3.set_ylabel("distance to the previous embedding")
    ax3.set_title("Drift by step")
    legend_below(ax3, fontsize=7)
    ax3.grid(alpha=0.3)
    save_figure(fig, path)
    return fig

