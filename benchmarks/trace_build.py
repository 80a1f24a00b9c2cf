"""Build a trace at ML-20M size with an existing checkpoint: wall time and embeddings per second.

Setup (not timed): a synthetic dataset of ML-20M size is generated and prepared, and a model of
the paper's width (hidden 600, latent 200) is written as a checkpoint. Its weights are the random
initialisation: training it to convergence takes hours on two cores, and the speed of building
a trace does not depend on the values of the weights.

Runs, each in a fresh process pinned to ``--cores`` cores (default 2), through the public API
``build_trace_stats(dataset, model=CHECKPOINT, ...)``, i.e. everything ``simcache build-trace
--model`` does: load the cached data, load the checkpoint, order the histories, check them against
the prepared data, schedule, embed, write the Arrow file:

* ``cpu`` with top-100 lists, and without top-k lists;
* ``cuda`` likewise, when a GPU is present.

The harness then re-reads the CPU trace and recomputes 200 random rows with the plain reference
(dense row -> ``model.embed``; decoder scores with prefix items excluded), so the speed is
reported only for results that are right.

``python -m benchmarks.trace_build [--quick] [--cores N] [--n-users N --n-items N --mean-items X]``
writes ``benchmarks/results/trace_build.md``.
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
ROOT = Path(__file__).resolve().parents[1]


def _gen(args: argparse.Namespace) -> dict:
    return {"n_users": args.n_users, "n_items": args.n_items, "mean_items": args.mean_items, "seed": 0}


def _setup(work: Path, args: argparse.Namespace) -> dict:
    """Prepare the data and write a paper-width checkpoint (random weights)."""
    import torch

    from recvae import checkpoint
    from recvae.data import prepare
    from recvae.model import RecVAE
    from recvae.trace.history import build_histories
    from recvae.trace.schedule import Schedule, schedule_many
    from recvae.training import TrainConfig
    from recvae.data import load_interactions

    t = time.perf_counter()
    prepared = prepare("synthetic", progress=False, heldout_users=args.heldout_users, **_gen(args))
    seconds_prepare = time.perf_counter() - t
    config = TrainConfig.for_dataset("synthetic")
    torch.manual_seed(0)
    model = RecVAE(config.model_config(prepared.n_items))
    ckpt = work / "model" / "best.pt"
    checkpoint.save(ckpt, {
        "kind": "best", "model_config": model.cfg.to_dict(), "train_config": config.to_dict(),
        "dataset": checkpoint.dataset_record(prepared), "epoch": 0, "best_epoch": None,
        "best_score": None, "history": [], "model": model.state_dict(),
    })
    df = load_interactions("synthetic", **_gen(args))
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users,
                           threshold=prepared.manifest["params"]["threshold"])
    owner, _ = schedule_many(hist.counts, Schedule())
    counts = hist.counts
    return {
        "stage": "setup", "checkpoint": str(ckpt), "seconds_prepare": seconds_prepare,
        "raw_ratings": int(len(df)), "users": int(hist.n_users), "interactions": int(hist.items.size),
        "items": int(prepared.n_items), "embeddings": int(owner.size),
        "users_with_50_or_more": int((counts >= 50).sum()), "max_history": int(counts.max()),
    }


def _spot_check(trace: Path, ckpt: Path, args: argparse.Namespace, n_rows: int = 200) -> dict:
    """Recompute random rows of the trace with the plain reference; return the worst deviations."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import torch

    from recvae.checkpoint import load_model
    from recvae.data import load_interactions, prepare
    from recvae.trace.history import build_histories
    from recvae.trace.prefix import PrefixBatch, direct_prefix_embeddings

    prepared = prepare("synthetic", progress=False, heldout_users=args.heldout_users, **_gen(args))
    df = load_interactions("synthetic", **_gen(args))
    model, _ = load_model(ckpt, "cpu", expect=prepared)
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users,
                           threshold=prepared.manifest["params"]["threshold"])
    with pa.memory_map(str(trace), "r") as src:
        table = pa.ipc.open_file(src).read_all()
    rows = np.sort(np.random.default_rng(0).choice(table.num_rows, size=min(n_rows, table.num_rows), replace=False))
    sub = table.take(rows)
    code = pd.Index(hist.users.astype(str)).get_indexer(sub.column("user_id").to_pylist())
    n_items = sub.column("n_items").to_numpy()
    order = np.lexsort((n_items, code))
    batch = PrefixBatch(hist.items, hist.offsets, code[order].astype(np.int64), n_items[order].astype(np.int64))
    k = len(sub.column("topk")[0]) if "topk" in sub.column_names else 0
    mu_ref, top_ref = direct_prefix_embeddings(model, batch, topk=k)
    emb = np.stack(sub.column("embedding").to_numpy(zero_copy_only=False))[order]
    out = {"rows_checked": int(rows.size), "max_abs_embedding_error": float(np.abs(emb - mu_ref).max())}
    if k:
        top = np.stack(sub.column("topk").to_numpy(zero_copy_only=False))[order]
        scores = model.decoder(torch.from_numpy(mu_ref)).detach().numpy()
        r = np.arange(len(batch))[:, None]
        out["max_topk_score_gap"] = float(np.abs(scores[r, top] - scores[r, top_ref]).max())
        out["topk_identical_fraction"] = float((top == top_ref).mean())
    return out


def _run(work: Path, args: argparse.Namespace, device: str, topk: int) -> dict:
    from recvae.trace.build import build_trace_stats

    ckpt = work / "model" / "best.pt"
    out = work / f"trace-{device}-k{topk}.arrow"
    load_before = os.getloadavg()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    stats = build_trace_stats("synthetic", model=ckpt, out=out, device=device, topk=topk, progress=False,
                              prepare_params={"heldout_users": args.heldout_users, **_gen(args)})
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    info = {
        "stage": f"{device}-k{topk}", "device": device, "topk": topk, "rows": stats.rows, "users": stats.users,
        "wall_seconds": wall, "embed_seconds": stats.seconds_embed,
        "embeddings_per_second": stats.embeddings_per_second,
        "cpu_seconds": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
        "timings": stats.timings, "cores": sorted(os.sched_getaffinity(0)),
        "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
        "peak_rss_mib": r1.ru_maxrss / 1024.0, "file_mib": out.stat().st_size / 2**20,
    }
    if device == "cpu" and topk:
        info["check"] = _spot_check(out, ckpt, args)
    return info


def _child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    if args.stage == "setup":
        result = _setup(work, args)
    else:
        device, _, k = args.stage.partition("-k")
        result = _run(work, args, device, int(k))
    print(json.dumps(result))


def _spawn(stage: str, work: Path, cache: Path, args: argparse.Namespace, cores: list[int] | None) -> dict:
    env = dict(os.environ, SIMCACHE_CACHE_DIR=str(cache), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "benchmarks.trace_build", "--stage", stage, "--work", str(work),
           "--n-users", str(args.n_users), "--n-items", str(args.n_items), "--mean-items", str(args.mean_items),
           "--heldout-users", str(args.heldout_users)]
    preexec = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, preexec_fn=preexec)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"stage {stage} failed")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def _report(setup: dict, runs: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "## trace_build: building a trace at ML-20M size with an existing checkpoint",
        "",
        f"Data: synthetic, {args.n_users:,} users x {args.n_items:,} items (mean_items {args.mean_items:g}): "
        f"{setup['raw_ratings']:,} ratings, {setup['interactions']:,} positive interactions of "
        f"{setup['users']:,} users over {setup['items']:,} vocabulary items "
        f"({setup['users_with_50_or_more']:,} users with >= 50; longest history {setup['max_history']:,}). "
        f"Default schedule (50 / 0.8 / 10): **{setup['embeddings']:,} embeddings**. Model: paper width "
        "(600 hidden, 200 latent), random weights (speed does not depend on them). Each run is a fresh "
        "process calling `build_trace_stats(..., model=CHECKPOINT)`, i.e. `simcache build-trace --model`.",
        "",
        "| run | cores | wall s | embed s | embeddings/s | CPU s | load avg (before/after) | stages (s) |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in runs:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items())
        lines.append(
            f"| {r['device']}, top-{r['topk'] or 'none'} | {len(r['cores'])} | {r['wall_seconds']:.1f} | "
            f"{r['embed_seconds']:.1f} | {r['embeddings_per_second']:,.0f} | {r['cpu_seconds']:.1f} | "
            f"{r['load_average_before']:.1f} / {r['load_average_after']:.1f} | {stages} |"
        )
    lines.append("")
    for r in runs:
        rate = r["embeddings_per_second"]
        lines.append(
            f"- {r['device']}, top-{r['topk'] or 'none'}: 500,000 embeddings would take "
            f"{500_000 / rate:.0f} s of embedding at this rate (plus the fixed stages above)."
        )
    checks = [r for r in runs if "check" in r]
    for r in checks:
        c = r["check"]
        lines.append(
            f"- Correctness ({r['stage']}): {c['rows_checked']} random rows recomputed with the plain "
            f"reference: max |embedding error| {c['max_abs_embedding_error']:.2e}; top-k lists identical "
            f"for {100 * c.get('topk_identical_fraction', 1):.2f}% of entries, max score gap "
            f"{c.get('max_topk_score_gap', 0):.2e} (ties within float32 noise)."
        )
    lines += [
        "",
        "The machine is shared: when the load average is above the core count, other processes",
        "took part of the cores and wall times are longer than on an idle machine; `CPU s` is the",
        "processor time the build itself used.",
        "",
        "Raw measurements (JSON, one line per process):",
        "",
        "```",
        json.dumps(setup, sort_keys=True),
        *[json.dumps(r, sort_keys=True) for r in runs],
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small size (15k users x 5k items), for a smoke run")
    ap.add_argument("--cores", type=int, default=2, help="pin every run to this many cores (0: no pinning)")
    ap.add_argument("--n-users", type=int, default=138_000)
    ap.add_argument("--n-items", type=int, default=20_108)
    ap.add_argument("--mean-items", type=float, default=132.0)
    ap.add_argument("--heldout-users", type=int, default=10_000)
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU runs")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        _child(args)
        return
    if args.quick:
        args.n_users, args.n_items, args.heldout_users = 15_000, 5_000, 1_500
    available = sorted(os.sched_getaffinity(0))
    cores = available[: args.cores] if args.cores else None
    root = Path(tempfile.mkdtemp(prefix="simcache-bench-trace-"))
    try:
        work, cache = root / "work", root / "cache"
        work.mkdir()
        setup = _spawn("setup", work, cache, args, None)
        import torch

        devices = ([] if args.no_cpu else ["cpu"]) + (["cuda"] if torch.cuda.is_available() else [])
        runs = [_spawn(f"{d}-k{k}", work, cache, args, cores) for d in devices for k in (100, 0)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "trace_build.md"
    out.write_text(_report(setup, runs, args))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
