"""Summary numbers of one replay, computed from the per-request log and the trace's columns.

Everything here is plain numpy over per-request arrays, so each number can be checked against a
direct computation. Conventions:

- ``outcome``: int8 per request, 0 miss, 1 exact hit, 2 approximate hit (see ``simcache.cache``).
- Service cost of a request: the retrieval cost ``C_r`` on a miss, ``min(C_r, h(d))`` on a hit,
  where ``d`` is the distance to the entry that served it (the nearest cached entry at lookup time)
  and ``h`` the cost model's approximation cost (``h(0) = 0``, so exact hits cost nothing). The
  "approximation cost over hits" is the mean of ``h(d)`` itself (not capped at ``C_r``).
- Distances over hits are ``distance[outcome > 0]``.
- Windows are consecutive blocks of ``window`` requests in replay order (the last may be shorter).
- overlap@k of an approximate hit of request ``t`` served by entry ``s``:
  ``|topk[s, :k] ∩ topk[t, :k]| / k``. Lists are assumed to hold distinct item ids; negative ids
  are treated as padding and never match. Exact hits are reported separately (their overlap is 1
  when the two requests have the same answer; it is measured anyway, because two users with the
  same embedding can still have different lists when their already-seen items differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simcache.cache.costs import CostModel
from simcache.cache.outcome import APPROX_HIT as APPROX
from simcache.cache.outcome import EXACT_HIT as EXACT
from simcache.cache.outcome import MISS

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HIST_BINS = 20
TOP_USERS = 10
_OVERLAP_CHUNK = 1 << 15


@dataclass
class Summary:
    """The numbers of one replay; :meth:`to_dict` gives a JSON-ready nested dict."""

    counts: dict[str, Any]
    cost: dict[str, Any]
    distance: dict[str, Any]
    windows: dict[str, Any]
    splits: dict[str, dict[str, Any]] | None = None
    users: dict[str, Any] | None = None
    overlap: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    per_user: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything except the full per-user table (written separately as Parquet)."""
        return {
            "counts": self.counts,
            "cost": self.cost,
            "distance": self.distance,
            "windows": self.windows,
            "splits": self.splits,
            "users": self.users,
            "overlap": self.overlap,
            "provenance": self.provenance,
        }


# ----------------------------------------------------------------------------------------------
# Building blocks (each independently testable)
# ----------------------------------------------------------------------------------------------
def outcome_counts(outcome: np.ndarray) -> dict[str, Any]:
    """Counts and ratios of requests, hits, exact hits, approximate hits and misses."""
    outcome = np.asarray(outcome)
    n = int(outcome.size)
    c = np.bincount(outcome.astype(np.int64, copy=False), minlength=3) if n else np.zeros(3, np.int64)
    if len(c) > 3:
        raise ValueError(f"outcome values must be 0, 1 or 2; found {int(outcome.max())}")
    misses, exact, approx = (int(x) for x in c[:3])
    hits = exact + approx
    ratio = (lambda x: x / n) if n else (lambda x: float("nan"))
    return {
        "requests": n,
        "hits": hits,
        "exact_hits": exact,
        "approx_hits": approx,
        "misses": misses,
        "hit_ratio": ratio(hits),
        "exact_hit_ratio": ratio(exact),
        "approx_hit_ratio": ratio(approx),
        "miss_ratio": ratio(misses),
    }


def hit_provenance(outcome: np.ndarray, served: np.ndarray, distance: np.ndarray, user_id: np.ndarray,
                   *, hist_range: tuple[float, float] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Who served each hit: an entry the same user inserted (*same user*) or another user's.

    ``served`` holds, for a query cache, the request index that inserted the serving entry, so the
    serving user is ``user_id[served]``. Returns the counts, ratios (over all requests) and the
    hit-distance distribution of each kind, and a per-request int8 array: 1 same user, 2 other
    user, 0 miss. Most hits at small radii are usually same-user (consecutive embeddings of one
    user are close): a hit ratio alone is easily misread as reuse across users.
    """
    outcome = np.asarray(outcome)
    served = np.asarray(served, dtype=np.int64)
    user_id = np.asarray(user_id)
    hit = np.flatnonzero(outcome > 0)
    kind = np.zeros(outcome.size, dtype=np.int8)
    if hit.size:
        same = user_id[served[hit]] == user_id[hit]
        kind[hit] = np.where(same, 1, 2)
    n = outcome.size
    d = np.asarray(distance, dtype=np.float64)
    out: dict[str, Any] = {"requests": int(n)}
    for code, name in ((1, "same_user"), (2, "other_user")):
        mask = kind == code
        count = int(mask.sum())
        out[f"{name}_hits"] = count
        out[f"{name}_hit_ratio"] = count / n if n else float("nan")
        out[f"{name}_share_of_hits"] = count / hit.size if hit.size else None
        out[f"{name}_distance"] = value_stats(d[mask], hist_range=hist_range)
    return out, kind


def approx_costs(outcome: np.ndarray, distance: np.ndarray, cost: CostModel) -> np.ndarray:
    """Per-request approximation cost ``h(d)`` (float64) on hits, NaN on misses."""
    outcome = np.asarray(outcome)
    out = np.full(outcome.shape, np.nan, dtype=np.float64)
    hit = outcome > 0
    if hit.any():
        out[hit] = cost.approx_cost(np.asarray(distance, dtype=np.float64)[hit])
    return out


def cost_summary(outcome: np.ndarray, costs: np.ndarray, approx: np.ndarray) -> dict[str, Any]:
    """Total/mean service cost; mean ``h(d)`` over hits and over approximate hits.

    ``costs``: per-request service costs; ``approx``: per-request ``h(d)`` (NaN on misses).
    """
    outcome = np.asarray(outcome)
    hit, is_approx = outcome > 0, outcome == APPROX
    return {
        "total_service_cost": float(costs.sum()),
        "mean_service_cost": _mean(costs),
        "mean_service_cost_hits": _mean(costs[hit]),
        "mean_approx_cost_hits": _mean(approx[hit]),
        "mean_approx_cost_approx_hits": _mean(approx[is_approx]),
        "total_retrieval_cost": float(costs[outcome == MISS].sum()),
    }


def value_stats(values: np.ndarray, *, bins: int = HIST_BINS, hist_range: tuple[float, float] | None = None
                ) -> dict[str, Any]:
    """count, mean, quantiles (keys ``p0``..``p100``) and a histogram of ``values`` (float64)."""
    v = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {"count": int(v.size), "mean": _mean(v)}
    if v.size:
        qs = np.quantile(v, QUANTILES)
        out["quantiles"] = {_qname(q): float(x) for q, x in zip(QUANTILES, qs, strict=True)}
    else:
        out["quantiles"] = {_qname(q): None for q in QUANTILES}
    lo, hi = hist_range if hist_range is not None else (0.0, float(v.max()) if v.size else 0.0)
    if not hi > lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    out["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return out


def distance_summary(outcome: np.ndarray, distance: np.ndarray, *, radius: float | None = None
                     ) -> dict[str, Any]:
    """Distribution of d(x, y*) over hits (and over approximate hits only)."""
    outcome = np.asarray(outcome)
    d = np.asarray(distance, dtype=np.float64)
    dh = d[outcome > 0]
    hi = float(dh.max()) if dh.size else 0.0
    if radius is not None and 0 < radius < math.inf:
        hi = max(hi, float(radius))
    rng = (0.0, hi)
    hits = value_stats(dh, hist_range=rng)
    approx = value_stats(d[outcome == APPROX], hist_range=rng)
    approx.pop("histogram")
    return {"hits": hits, "approx_hits": approx}


def auto_window(n: int) -> int:
    """Default window: about 100 windows over the trace (at least 1 request each)."""
    return max(1, math.ceil(n / 100))


def window_ratios(outcome: np.ndarray, window: int, *, costs: np.ndarray | None = None,
                  timestamp: np.ndarray | None = None) -> dict[str, Any]:
    """Hit/exact/approximate ratio (and mean cost) per window of ``window`` consecutive requests."""
    if window < 1:
        raise ValueError("window must be >= 1")
    outcome = np.asarray(outcome)
    n = outcome.size
    starts = np.arange(0, n, window, dtype=np.int64)
    sizes = np.minimum(starts + window, n) - starts
    wid = np.arange(n, dtype=np.int64) // window
    nw = len(starts)
    hits = np.bincount(wid, weights=(outcome > 0), minlength=nw)
    exact = np.bincount(wid, weights=(outcome == EXACT), minlength=nw)
    approx = np.bincount(wid, weights=(outcome == APPROX), minlength=nw)
    out: dict[str, Any] = {
        "window": int(window),
        "start": starts.tolist(),
        "size": sizes.tolist(),
        "hit_ratio": (hits / sizes).tolist(),
        "exact_hit_ratio": (exact / sizes).tolist(),
        "approx_hit_ratio": (approx / sizes).tolist(),
    }
    if costs is not None:
        out["mean_service_cost"] = (np.bincount(wid, weights=costs, minlength=nw) / sizes).tolist()
    if timestamp is not None:
        ts = np.asarray(timestamp)
        out["first_timestamp"] = ts[starts].astype(np.int64).tolist()
        out["last_timestamp"] = ts[starts + sizes - 1].astype(np.int64).tolist()
    return out


def group_table(keys: np.ndarray, outcome: np.ndarray, costs: np.ndarray) -> pd.DataFrame:
    """Per-key requests, hits, exact/approx hits, misses, hit ratio and mean cost (key order sorted)."""
    outcome = np.asarray(outcome)
    codes, uniques = pd.factorize(pd.Series(np.asarray(keys, dtype=object)), sort=True)
    m = len(uniques)
    req = np.bincount(codes, minlength=m)
    exact = np.bincount(codes, weights=(outcome == EXACT), minlength=m).astype(np.int64)
    approx = np.bincount(codes, weights=(outcome == APPROX), minlength=m).astype(np.int64)
    cost = np.bincount(codes, weights=costs, minlength=m)
    hits = exact + approx
    return pd.DataFrame({
        "key": np.asarray(uniques, dtype=object),
        "requests": req.astype(np.int64),
        "hits": hits,
        "exact_hits": exact,
        "approx_hits": approx,
        "misses": req - hits,
        "hit_ratio": hits / req,
        "mean_service_cost": cost / req,
    })


def split_summary(split: np.ndarray, outcome: np.ndarray, costs: np.ndarray) -> dict[str, dict[str, Any]]:
    """Counts, ratios and mean cost per split value."""
    table = group_table(split, outcome, costs)
    out = {}
    for row in table.itertuples(index=False):
        r = int(row.requests)
        out[str(row.key)] = {
            "requests": r,
            "hits": int(row.hits),
            "exact_hits": int(row.exact_hits),
            "approx_hits": int(row.approx_hits),
            "misses": int(row.misses),
            "hit_ratio": int(row.hits) / r,
            "exact_hit_ratio": int(row.exact_hits) / r,
            "approx_hit_ratio": int(row.approx_hits) / r,
            "miss_ratio": int(row.misses) / r,
            "mean_service_cost": float(row.mean_service_cost),
        }
    return out


def user_summary(user_id: np.ndarray, outcome: np.ndarray, costs: np.ndarray, *, top: int = TOP_USERS
                 ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Distribution of per-user hit ratios, the busiest users, and the full per-user table."""
    table = group_table(user_id, outcome, costs).rename(columns={"key": "user_id"})
    hr = table["hit_ratio"].to_numpy()
    stats = value_stats(hr, hist_range=(0.0, 1.0), bins=10)
    busiest = table.sort_values(["requests", "user_id"], ascending=[False, True], kind="stable").head(top)
    summary = {
        "users": int(len(table)),
        "users_with_hits": int((table["hits"] > 0).sum()),
        "requests_per_user": value_stats(table["requests"].to_numpy(), bins=10),
        "hit_ratio": stats,
        "top_users": [
            {"user_id": str(r.user_id), "requests": int(r.requests), "hits": int(r.hits),
             "hit_ratio": float(r.hit_ratio)}
            for r in busiest.itertuples(index=False)
        ],
    }
    summary["requests_per_user"].pop("histogram")
    return summary, table


def overlap_counts(topk: np.ndarray, a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """``|topk[a_i, :k] ∩ topk[b_i, :k]|`` for each pair (int64), in chunks to bound memory."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = np.empty(a.size, dtype=np.int64)
    for s in range(0, a.size, _OVERLAP_CHUNK):
        ia, ib = a[s : s + _OVERLAP_CHUNK], b[s : s + _OVERLAP_CHUNK]
        both = np.concatenate([topk[ia, :k], topk[ib, :k]], axis=1)
        both.sort(axis=1)
        same = (both[:, 1:] == both[:, :-1]) & (both[:, 1:] >= 0)
        out[s : s + _OVERLAP_CHUNK] = same.sum(axis=1)
    return out


def overlap_summary(topk: np.ndarray, outcome: np.ndarray, served: np.ndarray, distance: np.ndarray,
                    *, k: int | None = None, distance_edges: list[float] | None = None
                    ) -> tuple[dict[str, Any], np.ndarray]:
    """overlap@k over approximate hits (and, separately, exact hits); per-request overlap (NaN elsewhere).

    ``distance_edges`` (e.g. the hit-distance histogram's edges) adds the mean overlap per distance bin.
    """
    outcome = np.asarray(outcome)
    served = np.asarray(served, dtype=np.int64)
    kk = topk.shape[1] if k is None else int(k)
    if not 1 <= kk <= topk.shape[1]:
        raise ValueError(f"overlap k must be between 1 and {topk.shape[1]}")
    per_request = np.full(outcome.size, np.nan, dtype=np.float64)
    hit = np.flatnonzero(outcome > 0)
    if hit.size:
        per_request[hit] = overlap_counts(topk, served[hit], hit, kk) / kk
    approx = outcome == APPROX
    exact = outcome == EXACT
    ov_a = per_request[approx]
    out: dict[str, Any] = {
        "k": kk,
        "approx_hits": value_stats(ov_a, hist_range=(0.0, 1.0), bins=min(kk, 20)),
        "exact_hits": {"count": int(exact.sum()), "mean": _mean(per_request[exact])},
        "hits": {"count": int(hit.size), "mean": _mean(per_request[hit])},
    }
    if distance_edges is not None and ov_a.size:
        edges = np.asarray(distance_edges, dtype=np.float64)
        d = np.asarray(distance, dtype=np.float64)[approx]
        idx = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, len(edges) - 2)
        cnt = np.bincount(idx, minlength=len(edges) - 1)
        tot = np.bincount(idx, weights=ov_a, minlength=len(edges) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = tot / cnt
        out["by_distance"] = {
            "edges": [float(e) for e in edges],
            "count": cnt.astype(np.int64).tolist(),
            "mean": [None if c == 0 else float(m) for c, m in zip(cnt, mean, strict=True)],
        }
    return out, per_request


# ----------------------------------------------------------------------------------------------
# Everything at once
# ----------------------------------------------------------------------------------------------
@dataclass
class Accounts:
    """A :class:`Summary` plus the per-request arrays it was computed from (for the request log)."""

    summary: Summary
    costs: np.ndarray
    overlap: np.ndarray | None
    provenance: np.ndarray | None = None  # per request: 0 miss, 1 same-user hit, 2 other-user hit


def summarize(
    log: Any,
    *,
    cost: CostModel | None = None,
    window: int | None = None,
    radius: float | None = None,
    timestamp: np.ndarray | None = None,
    split: np.ndarray | None = None,
    user_id: np.ndarray | None = None,
    topk: np.ndarray | None = None,
    overlap_k: int | None = None,
    top_users: int = TOP_USERS,
) -> Accounts:
    """All summary numbers of one replay.

    ``log`` needs ``outcome``, ``served`` and ``distance`` arrays (a ``ReplayLog``); the optional
    trace columns enable the per-split, per-user and overlap@k parts.
    """
    cost = cost if cost is not None else CostModel()
    outcome = np.asarray(log.outcome)
    distance = np.asarray(log.distance)
    served = np.asarray(log.served)
    n = outcome.size
    costs = cost.service_cost(distance, outcome > 0)
    approx = approx_costs(outcome, distance, cost)
    dist = distance_summary(outcome, distance, radius=radius)
    w = auto_window(n) if window is None else int(window)
    summary = Summary(
        counts=outcome_counts(outcome),
        cost={**cost.to_dict(), **cost_summary(outcome, costs, approx)},
        distance=dist,
        windows=window_ratios(outcome, w, costs=costs, timestamp=timestamp),
    )
    if split is not None:
        summary.splits = split_summary(split, outcome, costs)
    provenance = None
    if user_id is not None:
        summary.users, summary.per_user = user_summary(user_id, outcome, costs, top=top_users)
        edges = dist["hits"]["histogram"]["edges"]
        summary.provenance, provenance = hit_provenance(outcome, served, distance, user_id,
                                                        hist_range=(edges[0], edges[-1]))
    per_request_overlap = None
    if topk is not None:
        summary.overlap, per_request_overlap = overlap_summary(
            topk, outcome, served, distance, k=overlap_k,
            distance_edges=dist["hits"]["histogram"]["edges"],
        )
    return Accounts(summary=summary, costs=costs, overlap=per_request_overlap, provenance=provenance)


def _mean(v: np.ndarray) -> float | None:
    return float(np.mean(v)) if np.size(v) else None


def _qname(q: float) -> str:
    s = f"{q * 100:g}"
    return "p" + s.replace(".", "_")
