"""Summary numbers of a trace (``simcache trace info``): size, time span, embeddings per user,
norms, and the distance scales that matter for choosing a cache radius.

Two distance distributions are reported, both as quantiles of the Euclidean distance:

* ``nn_other_user``: for a seeded sample of requests, the distance to the nearest request of a
  *different* user anywhere in the trace (or in a seeded reference sample of it when the trace is
  larger than ``reference`` rows). A radius well below these values rarely serves one user with
  another user's entry.
* ``consecutive_same_user``: the distance between consecutive embeddings (``seq`` and ``seq + 1``)
  of the same user, over every such pair. A radius around these values lets a user's own earlier
  entry serve them.

Without user ids, ``nn_other_user`` is the distance to the nearest *other request* and the
same-user numbers are absent. Nearest neighbours are found with a float32 matrix product and their
distance is then recomputed exactly in float64.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
#: Bins of the embeddings-per-user histogram: (label, low, high) inclusive.
PER_USER_BINS = (
    ("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-5", 4, 5), ("6-10", 6, 10), ("11-20", 11, 20),
    ("21-50", 21, 50), ("51-100", 51, 100), ("101+", 101, np.iinfo(np.int64).max),
)
_BLOCK_ELEMENTS = 1 << 23  # query x reference distances held at once in the NN search


def quantiles(values: np.ndarray, qs: tuple[float, ...] = QUANTILES) -> dict[str, float]:
    """``{"q0.5": ..., ...}``; empty input gives an empty dict."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {}
    return {f"q{q:g}": float(v) for q, v in zip(qs, np.quantile(values, qs))}


@dataclass
class TraceInfo:
    """The numbers printed by ``simcache trace info`` (all JSON-serialisable via :meth:`to_dict`)."""

    rows: int
    dim: int
    users: int | None
    time_min: int | None
    time_max: int | None
    clock: str | None
    per_user: dict = field(default_factory=dict)  # histogram + mean/median/max of embeddings per user
    splits: dict = field(default_factory=dict)  # rows per split
    norms: dict = field(default_factory=dict)
    nn_other_user: dict = field(default_factory=dict)
    consecutive_same_user: dict = field(default_factory=dict)
    sample: dict = field(default_factory=dict)  # how the distances were sampled
    suggested_radii: dict = field(default_factory=dict)  # per regime, see :func:`suggest_radii`
    metadata: dict = field(default_factory=dict)  # dataset, model, schedule, topk (no item list)
    path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Human-readable multi-line summary."""
        lines = []
        if self.path:
            lines.append(f"trace        {self.path}")
        md = self.metadata
        if md:
            model = md.get("model", {}) or {}
            sched = md.get("schedule", {}) or {}
            lines.append(
                f"produced by  dataset {md.get('dataset')}, model {str(model.get('checkpoint_sha256', ''))[:12] or '?'}, "
                f"schedule min_history={sched.get('min_history')} initial_fraction={sched.get('initial_fraction')} "
                f"step={sched.get('step')}, topk {md.get('topk')}, clock {md.get('clock')}"
            )
        lines.append(f"rows         {self.rows:,}")
        lines.append(f"dimension    {self.dim}")
        if self.users is not None:
            lines.append(f"users        {self.users:,}")
        if self.splits:
            lines.append("splits       " + ", ".join(f"{k} {v:,}" for k, v in self.splits.items()))
        if self.time_min is not None:
            lines.append(f"time span    {_fmt_time(self.time_min, self.clock)} .. {_fmt_time(self.time_max, self.clock)}"
                         + (f" ({(self.time_max - self.time_min) / 86400:.1f} days)" if self.clock != "file-order" else ""))
        if self.per_user:
            pu = self.per_user
            lines.append(f"per user     mean {pu['mean']:.2f}, median {pu['median']:g}, max {pu['max']}")
            hist = pu["histogram"]
            width = max(len(k) for k in hist)
            top = max(hist.values()) or 1
            for label, count in hist.items():
                lines.append(f"  {label:>{width}} | {count:>9,} {'#' * int(round(40 * count / top))}")
        lines.append("")
        header = "".join(f"{k:>9}" for k in QUANTILE_LABELS)
        lines.append(f"{'quantiles':<26}{header}")
        for name, qs in (("L2 norm", self.norms), ("NN distance, other user", self.nn_other_user),
                         ("step distance, same user", self.consecutive_same_user)):
            if qs:
                lines.append(f"{name:<26}" + "".join(f"{qs.get(k, float('nan')):>9.4g}" for k in QUANTILE_KEYS))
        if self.suggested_radii:
            sr = self.suggested_radii
            lines.append("")
            if sr.get("same_user"):
                lines.append(f"radii, same-user regime   {', '.join(f'{r:.4g}' for r in sr['same_user'])}  "
                             "(step quartiles: hits are mostly a user's own earlier entry)")
            if sr.get("cross_user"):
                lines.append(f"radii, cross-user regime  {', '.join(f'{r:.4g}' for r in sr['cross_user'])}  "
                             "(5/25/50% of the other-user NN distance; use --exclude-self to count only these)")
            if sr.get("separation") is not None:
                lines.append(f"separation               median other-user NN / median same-user step = "
                             f"{sr['separation']:.3g}")
        if self.sample:
            s = self.sample
            lines.append(
                f"(NN distances: {s.get('queries')} sampled requests against {s.get('reference')} "
                f"{'sampled ' if s.get('reference_sampled') else ''}rows, seed {s.get('seed')}; "
                f"step distances over {s.get('pairs')} consecutive pairs)"
            )
        return "\n".join(lines)


QUANTILE_KEYS = tuple(f"q{q:g}" for q in QUANTILES)
QUANTILE_LABELS = ("min", "1%", "5%", "25%", "50%", "75%", "95%", "99%", "max")


def suggest_radii(nn_other_user: dict, consecutive_same_user: dict) -> dict:
    """Radii for each regime of a similarity cache on this trace, from the two distance scales.

    ``same_user``: the 25/50/75% quantiles of consecutive same-user steps: at these radii most
    hits are a user served by their own earlier entry. ``cross_user``: the 5/25/50% quantiles of
    the nearest other-user distance: radii where other users' entries start to serve. The
    ``separation`` (median other-user NN over median step) says how far apart the regimes are.
    """
    out: dict = {}
    same = [consecutive_same_user[k] for k in ("q0.25", "q0.5", "q0.75") if consecutive_same_user.get(k, 0) > 0]
    cross = [nn_other_user[k] for k in ("q0.05", "q0.25", "q0.5") if nn_other_user.get(k, 0) > 0]
    if same:
        out["same_user"] = same
    if cross:
        out["cross_user"] = cross
    if consecutive_same_user.get("q0.5") and nn_other_user.get("q0.5"):
        out["separation"] = nn_other_user["q0.5"] / consecutive_same_user["q0.5"]
    return out


def _fmt_time(t: int | None, clock: str | None) -> str:
    if t is None:
        return "?"
    if clock == "file-order":
        return f"row {t:,}"
    try:
        return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(t)


def per_user_histogram(user_codes: np.ndarray) -> dict:
    """Embeddings per user: histogram over :data:`PER_USER_BINS`, mean, median, max."""
    counts = np.bincount(user_codes)
    counts = counts[counts > 0]
    hist = {label: int(((counts >= lo) & (counts <= hi)).sum()) for label, lo, hi in PER_USER_BINS}
    return {
        "histogram": hist,
        "mean": float(counts.mean()) if counts.size else 0.0,
        "median": float(np.median(counts)) if counts.size else 0.0,
        "max": int(counts.max()) if counts.size else 0,
    }


def nearest_other_distances(
    queries: np.ndarray, reference: np.ndarray, query_groups: np.ndarray, reference_groups: np.ndarray
) -> np.ndarray:
    """For each query row, the Euclidean distance to the nearest reference row of another group.

    Groups are user codes (or row ids, to exclude only the query itself); ``inf`` when every
    reference row is in the query's group.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(reference, dtype=np.float32)
    r_sq = np.einsum("ij,ij->i", r, r, dtype=np.float64)  # float64: no overflow to inf - inf
    out = np.full(q.shape[0], np.inf)
    block = max(1, _BLOCK_ELEMENTS // max(1, r.shape[0]))
    for lo in range(0, q.shape[0], block):
        qb = q[lo : lo + block]
        d2 = r_sq[None, :] - 2.0 * (qb @ r.T)  # |q|^2 omitted: constant per row
        same = query_groups[lo : lo + block, None] == reference_groups[None, :]
        d2[same | np.isnan(d2)] = np.inf  # (NaN: a row with a non-finite value is nobody's nearest)
        best = np.argmin(d2, axis=1)
        ok = np.isfinite(d2[np.arange(qb.shape[0]), best])
        diff = qb[ok].astype(np.float64) - r[best[ok]].astype(np.float64)
        out[lo : lo + block][ok] = np.sqrt((diff * diff).sum(axis=1))
    return out


def user_order(user_ids: np.ndarray, seq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row order grouping users (by ``seq``, then row, inside a user) and the users' integer codes.

    The one definition of "a user's embeddings in order", shared by ``trace info`` and the analyses.
    """
    users = np.asarray(user_ids)
    _, codes = np.unique(users, return_inverse=True)
    rows = np.arange(len(users))
    within = rows if seq is None else np.asarray(seq)
    return np.lexsort((rows, within, codes)), codes


def consecutive_distances(vectors: np.ndarray, user_codes: np.ndarray, seq: np.ndarray | None) -> np.ndarray:
    """Distances between consecutive embeddings of the same user (order: seq, else row order)."""
    order, codes = user_order(user_codes, seq)
    same = codes[order][1:] == codes[order][:-1]
    a, b = order[:-1][same], order[1:][same]
    out = np.empty(a.size)
    for lo in range(0, a.size, 65536):
        d = vectors[a[lo : lo + 65536]].astype(np.float64) - vectors[b[lo : lo + 65536]].astype(np.float64)
        out[lo : lo + 65536] = np.sqrt((d * d).sum(axis=1))
    return out


def summarize(
    vectors: np.ndarray,
    *,
    timestamp: np.ndarray | None = None,
    user_id: np.ndarray | None = None,
    seq: np.ndarray | None = None,
    split: np.ndarray | None = None,
    metadata: dict | None = None,
    sample: int = 1000,
    reference: int = 200_000,
    seed: int = 0,
) -> TraceInfo:
    """The summary of a trace given as arrays (see the module docstring for the distances)."""
    n, d = vectors.shape
    rng = np.random.default_rng(seed)
    users = None
    codes = None
    if user_id is not None:
        _, codes = np.unique(np.asarray(user_id), return_inverse=True)
        codes = codes.astype(np.int64).ravel()
        users = int(codes.max()) + 1 if n else 0
    norms = np.empty(n)
    for lo in range(0, n, 65536):
        block = np.asarray(vectors[lo : lo + 65536], dtype=np.float64)
        norms[lo : lo + 65536] = np.sqrt((block * block).sum(axis=1))

    n_q = min(int(sample), n)
    q_idx = np.sort(rng.choice(n, size=n_q, replace=False)) if n_q else np.zeros(0, np.int64)
    ref_sampled = n > reference
    r_idx = np.sort(rng.choice(n, size=reference, replace=False)) if ref_sampled else np.arange(n)
    groups = codes if codes is not None else np.arange(n)
    nn = nearest_other_distances(np.asarray(vectors[q_idx]), np.asarray(vectors[r_idx]), groups[q_idx], groups[r_idx])
    nn = nn[np.isfinite(nn)]
    steps = consecutive_distances(vectors, codes, seq) if codes is not None else np.zeros(0)

    md = {k: v for k, v in (metadata or {}).items() if k != "items"}
    splits = {}
    if split is not None:
        names, counts = np.unique(np.asarray(split).astype(str), return_counts=True)
        splits = {str(k): int(v) for k, v in zip(names, counts)}
    return TraceInfo(
        rows=int(n),
        dim=int(d),
        users=users,
        time_min=int(timestamp.min()) if timestamp is not None and n else None,
        time_max=int(timestamp.max()) if timestamp is not None and n else None,
        clock=md.get("clock") if md else None,
        per_user=per_user_histogram(codes) if codes is not None else {},
        splits=splits,
        norms=quantiles(norms),
        nn_other_user=quantiles(nn),
        consecutive_same_user=quantiles(steps),
        suggested_radii=suggest_radii(quantiles(nn), quantiles(steps)),
        sample={"queries": int(n_q), "reference": int(r_idx.size), "reference_sampled": bool(ref_sampled),
                "seed": int(seed), "pairs": int(steps.size)},
        metadata=md,
    )


def trace_info(path: str | Path, *, sample: int = 1000, reference: int = 200_000, seed: int = 0) -> TraceInfo:
    """Load a trace (or any request file :func:`~simcache.trace.io.load_requests` reads) and summarise it."""
    from simcache.trace.io import load_requests

    req = load_requests(path, validate=False)
    info = summarize(
        req.vectors,
        timestamp=req.timestamp,
        user_id=req.user_id,
        seq=req.seq,
        split=req.split,
        metadata=req.metadata,
        sample=sample,
        reference=reference,
        seed=seed,
    )
    info.path = str(path)
    return info
