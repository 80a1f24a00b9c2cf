"""Training epoch time of every model of :mod:`recvae.models` at ML-20M width (synthetic data).

Data: the synthetic generator at ML-20M's training-vocabulary width, ``--users`` users (default
10,000) x 20,108 items, mean 85 items per user (ML-20M's), ratings 1-5, prepared by the shared
protocol (Mult-VAE split, held-out users). Each model trains ``--epochs`` epochs (default 2) with
its default configuration on the CPU (seed 0); the trainer's own per-epoch timings are reported
(``train_seconds``: the fitting work of the epoch; ``eval_seconds``: the validation NDCG@100
that picks the best epoch). RecVAE's epoch time at this width is in ``train_speed`` (the
``ml20m-width`` case: 8,000 training users, the paper's three encoder passes per epoch), listed
beside the table for orientation. ``python -m benchmarks.model_epoch_speed [--quick]`` writes
``benchmarks/results/model_epoch_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
N_ITEMS = 20_108


def measure(name: str, data, epochs: int) -> dict:
    """Train ``name`` for ``epochs`` epochs; its per-epoch timings from the run's history."""
    from recvae.models import checkpoint
    from recvae.models.registry import get_model
    from recvae.models.trainer import train_model

    cls = get_model(name)
    cfg = cls.Config.with_options(None, seed=0, device="cpu", epochs=epochs)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        best = train_model(name, data, cfg, Path(tmp) / "run", progress=False, log_line=lambda s: None)
        wall = time.perf_counter() - t0
        _, info = checkpoint.load(best, expect_type=name)
    hist = info["history"]
    train = [float(h["train_seconds"]) for h in hist]
    valid = [float(h.get("eval_seconds", float("nan"))) for h in hist]
    return {"model": name, "epochs": len(hist), "train_seconds_per_epoch": float(np.mean(train)),
            "train_seconds_min": float(np.min(train)), "validation_seconds_per_epoch": float(np.nanmean(valid)) if
            np.isfinite(valid).any() else None, "wall_seconds": wall, "load_before": load0,
            "load_after": os.getloadavg()[0]}  # fmt: skip


def recvae_row() -> str:
    """RecVAE's ml20m-width figure from the committed ``train_speed`` report, if there is one."""
    path = RESULTS / "train_speed.md"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("{") and '"case": "ml20m-width"' in line:
                r = json.loads(line)
                return (f"RecVAE at this width (`train_speed`, {r['users']:,} training users, 3 encoder passes + 1 decoder "
                        f"pass): {r['encoder_seconds_per_epoch'] + r['decoder_seconds_per_epoch']:.1f} s per epoch "
                        f"(mean; encoder {r['encoder_seconds_per_epoch']:.1f}, decoder {r['decoder_seconds_per_epoch']:.1f}).")
    return "RecVAE's figure: run `python -m benchmarks.train_speed` (its `ml20m-width` case)."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 users, one epoch (a smoke run)")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--models", default="multvae,biases,als,implicit-als,mf,autorec")
    args = ap.parse_args(argv)
    from recvae.data import prepare
    from recvae.models.data import model_data
    from recvae.models.registry import get_model
    from recvae.storage import atomic_path

    users, epochs = (1_000, 1) if args.quick else (args.users, args.epochs)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SIMCACHE_CACHE_DIR"] = cache
        prepared = prepare("synthetic", n_users=users, n_items=N_ITEMS, mean_items=85.0, progress=False)
        rows = []
        for name in args.models.split(","):
            data = model_data(prepared, get_model(name).needs, None, name)
            rows.append(measure(name, data, epochs))
            print(json.dumps(rows[-1]), flush=True)
    shape = prepared.train.shape
    lines = [
        "## model_epoch_speed: seconds per training epoch at ML-20M width (synthetic)",
        "",
        f"Synthetic data, {users:,} users x {N_ITEMS:,} items (mean 85 items per user); {shape[0]:,} training users x "
        f"{shape[1]:,} items after the protocol, {int(prepared.train.nnz):,} training interactions. Default model "
        f"configurations, {epochs} epoch(s) each on the CPU ({os.cpu_count()} cores shared with other work; the load "
        "average is recorded), seed 0. `python -m benchmarks.model_epoch_speed`.",
        "",
        "| model | epochs | train s / epoch mean (min) | validation s / epoch | wall s (incl. set-up) | load avg (before/after) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        val = "-" if r["validation_seconds_per_epoch"] is None else f"{r['validation_seconds_per_epoch']:.2f}"
        lines.append(f"| {r['model']} | {r['epochs']} | {r['train_seconds_per_epoch']:.2f} ({r['train_seconds_min']:.2f}) | "
                     f"{val} | {r['wall_seconds']:.1f} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", recvae_row(), "", "```"] + [json.dumps(r, sort_keys=True) for r in rows] + ["```", ""]
    with atomic_path(RESULTS / "model_epoch_speed.md") as tmp:
        tmp.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
