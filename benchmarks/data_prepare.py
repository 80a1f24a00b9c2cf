"""Ingest + prepare a synthetic dataset of ML-20M size: wall time and peak memory per stage.

Stages, each in its own fresh process so that its peak RSS (``ru_maxrss``) is its own:

1. ``generate``: the synthetic generator + writing the canonical Parquet (``ingest("synthetic")``).
2. ``write-csv`` (setup, not a result): the same rows written as an ML-20M ``ratings.csv``.
3. ``ingest-csv``: the streaming ML-20M CSV parser -> Parquet + manifest (``ingest("ml20m")``).
4. ``prepare``: the Mult-VAE protocol from the cached Parquet (``prepare("ml20m")``), H = 10,000.
5. ``write-netflix`` (setup) + ``ingest-netflix``: the same rows as a Netflix
   ``combined_data_1.txt`` through the Netflix parser, to show that parse memory stays bounded.

``python -m benchmarks.data_prepare [--quick] [--n-users N --n-items N --mean-items X]``
writes ``benchmarks/results/data_prepare.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _stage(name: str, work: Path, n_users: int, n_items: int, mean_items: float, heldout: int) -> dict:
    """Run one stage in this process; return its measurements."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from recvae.data import ingest, prepare
    from recvae.data.interactions import PARQUET_NAME

    gen = {"n_users": n_users, "n_items": n_items, "mean_items": mean_items, "seed": 0}
    base_rss = _rss_mib()
    t = time.perf_counter()
    info: dict = {}
    if name == "generate":
        d = ingest("synthetic", progress=False, **gen)
        info["rows"] = json.loads((d / "manifest.json").read_text())["counts"]["rows"]
    elif name == "write-csv":
        src = ingest("synthetic", progress=False, **gen) / PARQUET_NAME
        out = work / "ml-20m"
        out.mkdir(exist_ok=True)
        with open(out / "ratings.csv", "wb") as f:
            f.write(b"userId,movieId,rating,timestamp\n")
            for batch in pq.ParquetFile(src).iter_batches(batch_size=2_000_000):
                pacsv.write_csv(pa.Table.from_batches([batch]), f,
                                pacsv.WriteOptions(include_header=False, quoting_style="none"))
        info["bytes"] = (out / "ratings.csv").stat().st_size
    elif name == "ingest-csv":
        d = ingest("ml20m", work / "ml-20m", progress=False)
        info["rows"] = json.loads((d / "manifest.json").read_text())["counts"]["rows"]
    elif name == "prepare":
        p = prepare("ml20m", work / "ml-20m", heldout_users=heldout, progress=False)
        c = p.manifest["counts"]
        info.update({k: c[k] for k in ("train_users", "heldout_users", "items", "train_events")})
        info["after_filter"] = c["after_filter"]
    elif name == "write-netflix":
        src = ingest("synthetic", progress=False, **gen) / PARQUET_NAME
        table = pq.read_table(src)
        order = np.argsort(table.column("item").to_numpy(), kind="stable")
        table = table.take(order)
        items = table.column("item").to_numpy()
        starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
        days = pa.array((table.column("timestamp").to_numpy() // 86_400).astype(np.int32)).cast(pa.date32())
        lines = pa.table({"user": table.column("user"), "value": pc.cast(table.column("value"), pa.int64()),
                          "date": days})
        opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with open(work / "combined_data_1.txt", "wb") as f:
            for s, e in zip(starts, np.r_[starts[1:], len(items)]):
                f.write(f"{items[s]}:\n".encode())
                pacsv.write_csv(lines.slice(s, e - s), f, opts)
        info["bytes"] = (work / "combined_data_1.txt").stat().st_size
    elif name == "ingest-netflix":
        d = ingest("netflix", work / "combined_data_1.txt", progress=False)
        info["rows"] = json.loads((d / "manifest.json").read_text())["counts"]["rows"]
    else:
        raise SystemExit(f"unknown stage {name}")
    info.update({"stage": name, "seconds": time.perf_counter() - t, "peak_rss_mib": _rss_mib(),
                 "rss_before_mib": base_rss})
    return info


def _run_stage(name: str, work: Path, cache: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ, SIMCACHE_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-m", "benchmarks.data_prepare", "--stage", name, "--work", str(work),
           "--n-users", str(args.n_users), "--n-items", str(args.n_items), "--mean-items", str(args.mean_items),
           "--heldout-users", str(args.heldout_users)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"stage {name} failed")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t
    print(json.dumps(out), flush=True)
    return out


def _report(results: list[dict], args: argparse.Namespace) -> str:
    by = {r["stage"]: r for r in results}
    rows = by["generate"]["rows"]
    lines = [
        "## data_prepare: ingest + prepare at ML-20M size",
        "",
        f"Synthetic data: {args.n_users:,} users x {args.n_items:,} items, mean_items {args.mean_items:g} "
        f"-> {rows:,} ratings (ML-20M: 138,493 users, 20,000,263 ratings). Each stage runs in a fresh "
        "process; peak RSS is that process's `ru_maxrss` (it includes the ~"
        f"{by['ingest-csv']['rss_before_mib']:.0f} MiB of the interpreter and imported libraries).",
        "",
        "| stage | wall s | peak RSS MiB | notes |",
        "|---|---:|---:|---|",
    ]
    notes = {
        "generate": "generator + Parquet write (`ingest(\"synthetic\")`)",
        "ingest-csv": f"streaming ML-20M `ratings.csv` parser ({by['write-csv']['bytes'] / 2**20:,.0f} MiB) -> Parquet",
        "prepare": f"Mult-VAE protocol from the cached Parquet, H = {args.heldout_users:,}",
        "ingest-netflix": f"Netflix parser on one `combined_data` file ({by.get('write-netflix', {}).get('bytes', 0) / 2**20:,.0f} MiB)",
    }
    for name in ("generate", "ingest-csv", "prepare", "ingest-netflix"):
        if name in by:
            r = by[name]
            lines.append(f"| {name} | {r['seconds']:.1f} | {r['peak_rss_mib']:,.0f} | {notes[name]} |")
    total = by["ingest-csv"]["seconds"] + by["prepare"]["seconds"]
    p = by["prepare"]
    load = ", ".join(f"{x:.1f}" for x in args.load_before)
    lines += [
        "",
        f"Machine: {os.cpu_count()} cores, load average before the run {load} (shared machine: "
        "absolute times are indicative only).",
        "",
        f"Ingest (CSV) + prepare: **{total:.1f} s**. Prepared: {p['train_users']:,} training users, "
        f"{p['heldout_users']:,} validation + {p['heldout_users']:,} test users, {p['items']:,} items, "
        f"{p['train_events']:,} training events (after filtering: {p['after_filter']['events']:,} events, "
        f"{p['after_filter']['users']:,} users).",
        "",
        "Parse memory is bounded by the read block (16 MiB of text) and the write batch (4M rows), "
        "not by the file: the Netflix parser's peak RSS at 20M ratings is what the full Netflix "
        "training set (100M ratings, ~2 GB of text) needs too, well under the 4 GB target; its time "
        "scales linearly (about 5x the figure above). `prepare` holds 8 bytes per positive "
        "(int32 user and item codes) plus the output matrices.",
        "",
        "Raw measurements (JSON, one line per stage):",
        "",
        "```",
        *[json.dumps(r, sort_keys=True) for r in results],
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small size (20k users), for a smoke run")
    ap.add_argument("--n-users", type=int, default=138_000)
    ap.add_argument("--n-items", type=int, default=20_000)
    ap.add_argument("--mean-items", type=float, default=145.0)
    ap.add_argument("--heldout-users", type=int, default=10_000)
    ap.add_argument("--no-netflix", action="store_true", help="skip the Netflix-format stages")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        print(json.dumps(_stage(args.stage, Path(args.work), args.n_users, args.n_items, args.mean_items, args.heldout_users)))
        return
    if args.quick:
        args.n_users, args.n_items, args.heldout_users = 20_000, 5_000, 2_000
    args.load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="simcache-bench-data-"))
    try:
        work, cache = root / "work", root / "cache"
        work.mkdir()
        stages = ["generate", "write-csv", "ingest-csv", "prepare"]
        if not args.no_netflix:
            stages += ["write-netflix", "ingest-netflix"]
        results = [_run_stage(s, work, cache, args) for s in stages]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "data_prepare.md"
    out.write_text(_report(results, args))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
