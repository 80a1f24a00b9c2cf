"""The numbers of one object-cache replay, from its per-request log (plain numpy, each checkable).

- **Cost** (AÇAI's model): mean cost of the served answers, of the empty cache (the server's k
  objects, all fetched) and of the full-catalogue optimum (the server's k objects, all local);
  **gain** = empty-cache cost - cost per request; **NAG** = mean gain / (k c_f), in [0, 1] with an
  exact index (0: the cache never helps, 1: every object of every answer local at no loss).
- **Objects**: served locally vs fetched, in total and per request (histogram of the number of
  local objects); insertions and evictions (what the cache's updates moved).
- **Answers**: *exact* when the served set equals the server's k objects, *approximate* otherwise;
  fully local, mixed and fully fetched answers.
- **Quality of the served list** against the server's list: overlap@k = |served ∩ server| / k.
  With ``future`` (per request, the catalogue objects the user consumes later), the hits among
  the served objects and among the server's, and recall = hits / min(k, |future|), averaged over
  requests with a non-empty future. A simcache trace stores no interactions (only embeddings, the
  prefix length and the model's top-k), so for a trace alone this part is reported as unavailable.
- **Provenance** (with ``user_id``): each local object served is counted as *same user* when the
  request that inserted it is of the same user, *other user* otherwise, or *preloaded*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simcache.objects.kernels import PRELOADED
from simcache.objects.log import ObjectReplayLog

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
NO_FUTURE = ("the request file holds no later interactions of its users (a simcache trace stores "
             "embeddings, prefix lengths and the model's top-k only); pass future=... "
             "(catalogue objects each user consumes after the request) to measure recall")  # fmt: skip


@dataclass
class ObjectSummary:
    """Sections of the report (JSON-ready dicts); :meth:`table` prints them."""

    config: dict[str, Any]
    cost: dict[str, Any]
    objects: dict[str, Any]
    answers: dict[str, Any]
    quality: dict[str, Any]
    provenance: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "cost": self.cost, "objects": self.objects, "answers": self.answers,
                "quality": self.quality, "provenance": self.provenance}  # fmt: skip

    def table(self) -> str:
        """Plain-text report."""
        c, o, a, q = self.cost, self.objects, self.answers, self.quality
        cfg = self.config
        n = a["requests"]
        lines = [
            f"object cache {cfg['policy']}: C = {cfg['capacity']:,}, k = {cfg['k']}, c_f = {cfg['c_f']:g}, "
            f"metric {cfg['metric']}, c_d = {cfg['dissimilarity']}, index {cfg['index']}"
            + (" (approximate)" if cfg["index"] != "flat" else ""),
            f"  requests                 {n:>12,}",
            f"  mean cost                {c['mean_cost']:>12.4f}   (empty cache {c['mean_cost_empty']:.4f}, "
            f"full-catalogue optimum {c['mean_cost_optimum']:.4f})",
            f"  mean gain                {c['mean_gain']:>12.4f}",
            f"  NAG                      {c['nag']:>12.4f}",
            f"  objects served locally   {o['local']:>12,}   ({o['local_ratio']:.4f}; {o['local_per_request']:.2f} a request)",
            f"  objects fetched          {o['fetched']:>12,}   ({1 - o['local_ratio']:.4f}; {o['fetched_per_request']:.2f} a request)",
            f"  insertions / evictions   {o['inserted']:>12,} / {o['evicted']:,}",
            f"  exact answers            {a['exact']:>12,}   ({a['exact_ratio']:.4f})",
            f"  approximate answers      {a['approximate']:>12,}   ({1 - a['exact_ratio']:.4f})",
            f"  fully local / mixed / fetched   {a['fully_local']:,} / {a['mixed']:,} / {a['fully_fetched']:,}",
            f"  overlap@{cfg['k']} with server    {q['overlap_mean']:>9.4f}",
        ]
        fut = q["future"]
        if fut.get("available"):
            lines.append(f"  future recall served     {fut['recall_served']:>12.4f}   (server's list {fut['recall_server']:.4f}; "
                         f"{fut['requests']:,} requests with a future)")  # fmt: skip
        else:
            lines.append(f"  future recall            unavailable: {fut['reason']}")
        if self.provenance is not None:
            p = self.provenance
            lines.append(f"  local objects by origin  same user {p['same_user']:,} ({p['same_user_ratio']:.4f}), "
                         f"other user {p['other_user']:,} ({p['other_user_ratio']:.4f}), preloaded {p['preloaded']:,}")  # fmt: skip
        return "\n".join(lines)


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if not x.size:
        return {}
    return {f"q{int(round(p * 100)):02d}": float(v) for p, v in zip(QUANTILES, np.quantile(x, QUANTILES))}


def cost_section(log: ObjectReplayLog) -> dict[str, Any]:
    """Mean costs, gain and NAG."""
    k, c_f = log.config.k, log.config.c_f
    n = len(log)
    mean = (lambda a: float(a.mean())) if n else (lambda a: float("nan"))
    gain = log.gain
    return {
        "mean_cost": mean(log.cost),
        "mean_cost_empty": mean(log.cost_empty),
        "mean_cost_optimum": mean(log.cost_opt),
        "mean_gain": mean(gain),
        "nag": mean(gain) / (k * c_f),
        "gain_quantiles": _quantiles(gain),
    }


def object_section(log: ObjectReplayLog) -> dict[str, Any]:
    """Local vs fetched objects (total, per request, histogram) and cache movement."""
    n, k = log.local.shape
    per = log.local.sum(axis=1)
    local = int(per.sum())
    return {
        "local": local,
        "fetched": n * k - local,
        "local_ratio": local / (n * k) if n else float("nan"),
        "local_per_request": float(per.mean()) if n else float("nan"),
        "fetched_per_request": float(k - per.mean()) if n else float("nan"),
        "local_histogram": np.bincount(per, minlength=k + 1).tolist(),
        "inserted": int(log.inserted.sum()),
        "evicted": int(log.evicted.sum()),
    }


def same_sets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, whether the rows of two (n, k) id arrays hold the same set."""
    return (np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1)


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row |a_i ∩ b_i| / k for (n, k) arrays of distinct ids (negative ids never match)."""
    n, k = a.shape
    if not n:
        return np.zeros(0)
    hits = np.zeros(n, np.int64)
    for j in range(k):
        hits += ((a[:, j : j + 1] == b) & (a[:, j : j + 1] >= 0)).any(axis=1)
    return hits / k


def answer_section(log: ObjectReplayLog) -> dict[str, Any]:
    """Exact vs approximate answers; fully local, mixed, fully fetched."""
    n, k = log.local.shape
    exact = same_sets(log.served, log.server)
    per = log.local.sum(axis=1)
    return {
        "requests": n,
        "exact": int(exact.sum()),
        "approximate": int(n - exact.sum()),
        "exact_ratio": float(exact.mean()) if n else float("nan"),
        "fully_local": int((per == k).sum()),
        "mixed": int(((per > 0) & (per < k)).sum()),
        "fully_fetched": int((per == 0).sum()),
    }


def future_hits(lists: np.ndarray, indptr: np.ndarray, indices: np.ndarray, n_objects: int) -> np.ndarray:
    """Per request, how many ids of ``lists[t]`` are among ``indices[indptr[t]:indptr[t+1]]``."""
    n, k = lists.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    future_keys = np.unique(rows * n_objects + np.asarray(indices, np.int64))
    keys = np.arange(n, dtype=np.int64)[:, None] * n_objects + lists.astype(np.int64)
    return (np.isin(keys, future_keys) & (lists >= 0)).sum(axis=1)


def quality_section(log: ObjectReplayLog, future: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """overlap@k with the server's list; recall of future interactions when given."""
    ov = overlap(log.served, log.server)
    out: dict[str, Any] = {
        "overlap_mean": float(ov.mean()) if ov.size else float("nan"),
        "overlap_quantiles": _quantiles(ov),
    }
    if future is None:
        out["future"] = {"available": False, "reason": NO_FUTURE}
        return out
    indptr, indices = (np.asarray(a) for a in future)
    if indptr.shape != (len(log) + 1,):
        raise ValueError(f"future indptr must have n + 1 = {len(log) + 1} entries, got {indptr.shape}")
    n_obj = int(log.stats.get("catalogue_size", int(max(indices.max(initial=0), log.server.max(initial=0))) + 1))
    size = np.diff(indptr)
    has = size > 0
    hs = future_hits(log.served, indptr, indices, n_obj)
    hv = future_hits(log.server, indptr, indices, n_obj)
    denom = np.minimum(size, log.config.k)
    out["future"] = {
        "available": True,
        "requests": int(has.sum()),
        "hits_served": int(hs.sum()),
        "hits_server": int(hv.sum()),
        "recall_served": float((hs[has] / denom[has]).mean()) if has.any() else float("nan"),
        "recall_server": float((hv[has] / denom[has]).mean()) if has.any() else float("nan"),
    }
    return out


def provenance_section(log: ObjectReplayLog, user_id: np.ndarray) -> dict[str, Any]:
    """Local served objects by which user's request brought them into the cache."""
    user_id = np.asarray(user_id)
    if user_id.shape != (len(log),):
        raise ValueError(f"user_id must have one entry per request ({len(log)}), got shape {user_id.shape}")
    origin = log.origin
    local = log.local
    inserted_by = origin >= 0
    t = np.broadcast_to(np.arange(len(log))[:, None], origin.shape)
    same = np.zeros(origin.shape, bool)
    same[inserted_by] = user_id[origin[inserted_by]] == user_id[t[inserted_by]]
    n_local = int(local.sum())
    n_same = int(same.sum())
    n_pre = int((origin == PRELOADED).sum())
    n_other = n_local - n_same - n_pre
    ratio = (lambda x: x / n_local) if n_local else (lambda x: float("nan"))
    return {
        "local": n_local,
        "same_user": n_same,
        "other_user": n_other,
        "preloaded": n_pre,
        "same_user_ratio": ratio(n_same),
        "other_user_ratio": ratio(n_other),
        "preloaded_ratio": ratio(n_pre),
    }


def summarize_objects(log: ObjectReplayLog, *, user_id: np.ndarray | None = None,
                      future: tuple[np.ndarray, np.ndarray] | None = None) -> ObjectSummary:  # fmt: skip
    """The report of one replay (``user_id`` per request for provenance; ``future`` as CSR
    (indptr (n + 1,), catalogue indices) of each request's later interactions)."""
    cfg = log.config.to_dict()
    cfg["params"] = dict(log.params)
    cfg["stats"] = dict(log.stats)
    return ObjectSummary(
        config=cfg,
        cost=cost_section(log),
        objects=object_section(log),
        answers=answer_section(log),
        quality=quality_section(log, future),
        provenance=provenance_section(log, user_id) if user_id is not None else None,
    )
