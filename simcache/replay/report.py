"""Presenting one replay: a plain-text table for people, a JSON summary and a per-request Parquet log.

Files are written atomically (temporary name, then rename), so an interrupted run leaves either the
previous file or none.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from recvae.storage import atomic_path
from simcache.jsonout import write_json

if TYPE_CHECKING:
    from simcache.replay.run import ReplayResult

SUMMARY_FILE = "summary.json"
PER_USER_FILE = "per_user.parquet"
REQUEST_LOG_FILE = "requests.parquet"
_LOG_ROW_GROUP = 1 << 20
_SPARK = "▁▂▃▄▅▆▇█"
_MAX_META_LIST = 64  # metadata lists longer than this (e.g. the item vocabulary) are summarised
_MAX_META_STR = 2000


# ----------------------------------------------------------------------------------------------
# Text table
# ----------------------------------------------------------------------------------------------
def format_table(result: "ReplayResult") -> str:
    """The summary as aligned plain text (what ``simcache replay`` prints)."""
    s = result.summary
    p = result.parameters
    inp = result.input
    lines: list[str] = []
    lines.append(f"trace    {inp['path']}  ({inp['requests']:,} requests, dim {inp['dim']})")
    extra = ", ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items())
    lines.append(
        f"policy   {p['policy']}{f' ({extra})' if extra else ''}  capacity {p['capacity']:,}  "
        f"radius {_g(p['radius'])}  metric {p['metric']}  index {p['index']}  engine {p['engine']}  "
        f"seed {p['seed']}"
    )
    t = result.timing
    lines.append(
        f"time     replay {t['replay_s']:.2f} s ({_rate(t.get('requests_per_s'))} requests/s, excluding "
        f"process start-up and {t.get('warm_up_s', 0.0):.2f} s of kernel loading), load {t['load_s']:.2f} s, "
        f"accounting {t['summary_s']:.2f} s"
    )
    lines.append("")
    c = s.counts
    rows = [
        ("requests", c["requests"], None),
        ("hits", c["hits"], c["hit_ratio"]),
        ("  exact hits", c["exact_hits"], c["exact_hit_ratio"]),
        ("  approximate hits", c["approx_hits"], c["approx_hit_ratio"]),
        ("misses", c["misses"], c["miss_ratio"]),
    ]
    pv = s.provenance
    if pv is not None:
        rows.insert(4, ("  same-user hits", pv["same_user_hits"], pv["same_user_hit_ratio"]))
        rows.insert(5, ("  other-user hits", pv["other_user_hits"], pv["other_user_hit_ratio"]))
    lines.append(f"{'':<20}{'count':>14}{'ratio':>10}")
    for name, n, r in rows:
        lines.append(f"{name:<20}{n:>14,}{'' if r is None else f'{r:.4f}':>10}")
    lines.append("")

    co = s.cost
    model = co.get("kind", "zero")
    shown = {"zero": (), "linear": ("scale",), "power": ("scale", "exponent")}.get(model, ("scale", "exponent"))
    detail = ", ".join(f"{k} {_g(co[k])}" for k in shown if k in co)
    lines.append(
        f"cost     h(d) {model}{f' ({detail})' if detail else ''}, C_r {_g(co.get('retrieval_cost', 1.0))}: "
        f"mean service cost {_g(co['mean_service_cost'])}, mean h(d) over hits "
        f"{_g(co['mean_approx_cost_hits'])}, over approximate hits {_g(co['mean_approx_cost_approx_hits'])}"
    )
    dh = s.distance["hits"]
    if dh["count"]:
        q = dh["quantiles"]
        lines.append(
            "d(x,y*)  over hits: "
            + "  ".join(f"{k} {_g(q[k])}" for k in ("p0", "p5", "p25", "p50", "p75", "p95", "p100"))
            + f"  mean {_g(dh['mean'])}"
        )
    else:
        lines.append("d(x,y*)  no hits")
    if pv is not None:
        for who in ("same_user", "other_user"):
            dq = pv[f"{who}_distance"]
            if dq["count"]:
                q = dq["quantiles"]
                lines.append(f"         {who.replace('_', '-')} hits: p5 {_g(q['p5'])}  p50 {_g(q['p50'])}  "
                             f"p95 {_g(q['p95'])}  (n {dq['count']:,})")
        if pv["same_user_share_of_hits"] is not None:
            lines.append(f"provenance {pv['same_user_share_of_hits']:.1%} of hits are served by the user's own "
                         "earlier entry (cross-user reuse: --exclude-self)")
    w = s.windows
    hr = w["hit_ratio"]
    if hr:
        lines.append(
            f"over time hit ratio per {w['window']:,} requests ({len(hr)} windows): "
            f"first {hr[0]:.3f}, last {hr[-1]:.3f}, min {min(hr):.3f}, max {max(hr):.3f}"
        )
        lines.append(f"         {sparkline(hr)}")

    if s.splits:
        lines.append("")
        lines.append(f"{'split':<14}{'requests':>12}{'hit ratio':>11}{'exact':>9}{'approx':>9}{'mean cost':>11}")
        for name, v in s.splits.items():
            lines.append(
                f"{name:<14}{v['requests']:>12,}{v['hit_ratio']:>11.4f}{v['exact_hit_ratio']:>9.4f}"
                f"{v['approx_hit_ratio']:>9.4f}{v['mean_service_cost']:>11.4g}"
            )
    if s.users:
        u = s.users
        q = u["hit_ratio"]["quantiles"]
        lines.append("")
        lines.append(
            f"users    {u['users']:,} users ({u['users_with_hits']:,} with a hit); per-user hit ratio "
            f"mean {_g(u['hit_ratio']['mean'])}, p25 {_g(q['p25'])}, p50 {_g(q['p50'])}, p75 {_g(q['p75'])}"
        )
        if u["top_users"]:
            top = ", ".join(f"{x['user_id']} ({x['requests']} req, {x['hit_ratio']:.2f})" for x in u["top_users"][:5])
            lines.append(f"         busiest: {top}")
    if s.overlap:
        o = s.overlap
        a = o["approx_hits"]
        msg = f"overlap@{o['k']} of served lists: approximate hits mean {_g(a['mean'])}"
        if a["count"]:
            msg += f" (p25 {_g(a['quantiles']['p25'])}, p50 {_g(a['quantiles']['p50'])}, n {a['count']:,})"
        msg += f"; exact hits mean {_g(o['exact_hits']['mean'])}; all hits {_g(o['hits']['mean'])}"
        lines.append("")
        lines.append(msg)
    return "\n".join(lines)


def sparkline(values: list[float], width: int = 100) -> str:
    """Values in [0, 1] as a row of block characters (averaged down to ``width`` columns)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    if v.size > width:
        idx = np.linspace(0, v.size, width + 1).astype(int)
        v = np.array([v[a:b].mean() for a, b in zip(idx[:-1], idx[1:], strict=True) if b > a])
    levels = np.clip((v * (len(_SPARK) - 1)).round().astype(int), 0, len(_SPARK) - 1)
    return "".join(_SPARK[i] for i in levels)


def _g(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.4g}"
    return str(x)


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


# ----------------------------------------------------------------------------------------------
# JSON summary
# ----------------------------------------------------------------------------------------------
def compact_metadata(meta: Any) -> Any:
    """A copy of trace metadata with huge fields (long lists, long strings) replaced by a note."""
    if isinstance(meta, dict):
        return {k: compact_metadata(v) for k, v in meta.items()}
    if isinstance(meta, list):
        if len(meta) > _MAX_META_LIST:
            return f"<list of {len(meta)} values omitted>"
        return [compact_metadata(v) for v in meta]
    if isinstance(meta, str) and len(meta) > _MAX_META_STR:
        return f"<string of {len(meta)} characters omitted>"
    return meta


def write_outputs(result: "ReplayResult", out_dir: str | Path, *, request_log: bool = False) -> dict[str, Path]:
    """Write ``summary.json`` (+ ``per_user.parquet``, + ``requests.parquet`` with ``request_log``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"summary": write_json(out / SUMMARY_FILE, result.to_dict())}
    if result.summary.per_user is not None:
        written["per_user"] = write_parquet(result.summary.per_user, out / PER_USER_FILE)
    if request_log:
        written["requests"] = write_request_log(result, out / REQUEST_LOG_FILE)
    return written


def write_parquet(df: Any, path: str | Path) -> Path:
    """Write a pandas DataFrame as Parquet, atomically."""
    import pyarrow.parquet as pq

    dest = Path(path)
    with atomic_path(dest) as tmp:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    return dest


def request_log_table(result: "ReplayResult", start: int = 0, stop: int | None = None) -> pa.Table:
    """Rows ``start:stop`` of the per-request log as an Arrow table.

    Columns: request (index in replay order), outcome (0 miss, 1 exact, 2 approximate), served
    (request index of the serving entry, -1 on a miss), distance (to the nearest cached entry at
    lookup; inf when the cache was empty), inserted, evicted (-1: none), service_cost, then when the
    trace has them: timestamp, user_id, seq, split, overlap (overlap@k on hits, null otherwise),
    provenance (1: served by an entry of the same user, 2: of another user, 0: miss).
    """
    log = result.log
    n = len(log.outcome)
    stop = n if stop is None else min(stop, n)
    sl = slice(start, stop)
    cols: dict[str, Any] = {
        "request": pa.array(np.arange(start, stop, dtype=np.int64)),
        "outcome": pa.array(np.asarray(log.outcome[sl], dtype=np.int8)),
        "served": pa.array(np.asarray(log.served[sl], dtype=np.int64)),
        "distance": pa.array(np.asarray(log.distance[sl], dtype=np.float32)),
        "inserted": pa.array(np.asarray(log.inserted[sl], dtype=bool)),
        "evicted": pa.array(np.asarray(log.evicted[sl], dtype=np.int64)),
        "service_cost": pa.array(result.costs[sl]),
    }
    req = result.requests
    if req is not None:
        for name in ("timestamp", "user_id", "seq", "split"):
            col = getattr(req, name)
            if col is not None:
                cols[name] = pa.array(col[sl], type=pa.string() if col.dtype == object else None)
    if result.overlap is not None:
        ov = result.overlap[sl]
        cols["overlap"] = pa.array(ov, mask=np.isnan(ov))
    if result.provenance is not None:
        cols["provenance"] = pa.array(result.provenance[sl])
    return pa.table(cols)


def write_request_log(result: "ReplayResult", path: str | Path) -> Path:
    """Write the per-request log (see :func:`request_log_table`) as Parquet, atomically, in row groups."""
    import pyarrow.parquet as pq

    dest = Path(path)
    n = len(result.log.outcome)
    with atomic_path(dest) as tmp:
        first = request_log_table(result, 0, min(n, _LOG_ROW_GROUP))
        with pq.ParquetWriter(tmp, first.schema) as writer:
            writer.write_table(first)
            for start in range(_LOG_ROW_GROUP, n, _LOG_ROW_GROUP):
                writer.write_table(request_log_table(result, start, start + _LOG_ROW_GROUP))
    return dest
