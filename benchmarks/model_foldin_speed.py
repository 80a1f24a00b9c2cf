"""Prefix-embedding (trace) throughput of every model at ML-20M width, with untrained weights.

Histories: ``--users`` users (default 20,000) over 20,108 items (ML-20M's training vocabulary),
lengths log-normal with mean 85 (ML-20M's), ratings 1-5; the trace schedule (50 / 0.8 / 10). Each
model is built at its default size with random parameters (speed does not depend on their values)
and embeds every scheduled prefix through its trace encoder (:meth:`~recvae.trace.encoder.TraceEncoder.embed`)
(no top-k). Reported: embeddings per second on this machine's cores, with the load average
(other processes share the cores). ``python -m benchmarks.model_foldin_speed [--quick]`` writes
``benchmarks/results/model_foldin_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
N_ITEMS = 20_108


def histories(n_users: int, seed: int = 0):
    from recvae.trace.prefix import PrefixBatch
    from recvae.trace.schedule import Schedule, schedule_many

    rng = np.random.default_rng(seed)
    counts = np.clip(np.rint(rng.lognormal(np.log(85) - 0.5, 1.0, n_users)), 5, 3000).astype(np.int64)
    items = np.concatenate([rng.choice(N_ITEMS, size=c, replace=False) for c in counts]).astype(np.int64)
    owner, lengths = schedule_many(counts, Schedule())
    batch = PrefixBatch(items, np.r_[0, np.cumsum(counts)].astype(np.int64), owner, lengths)
    values = rng.integers(1, 6, items.size).astype(np.float32)
    return batch, values, counts


def randomised(name: str):
    import torch

    from recvae.models.registry import get_model

    cls = get_model(name)
    model = cls(cls.Config(), N_ITEMS)
    rng = np.random.default_rng(1)
    if name in ("als", "biases", "mf"):
        model.mu, model.item_bias = 3.5, rng.normal(0, 0.3, N_ITEMS)
        model.item_factors = rng.normal(0, 0.3, (N_ITEMS, getattr(model.config, "factors", 0)))
        if name == "als" or name == "biases":
            model.k = model.item_factors.shape[1]
    elif name == "implicit-als":
        model.item_factors = rng.normal(0, 0.3, (N_ITEMS, model.config.factors)).astype(np.float32)
    elif name in ("multvae", "autorec"):
        torch.manual_seed(0)
    return model


def recvae_encoder():
    """RecVAE's trace encoder at its default size over ML-20M's items, with random weights."""
    import torch

    from recvae.model import RecVAE, RecVAEConfig
    from recvae.trace.recvae_encoder import RecVAEEncoder

    torch.manual_seed(0)
    return RecVAEEncoder(RecVAE(RecVAEConfig(n_items=N_ITEMS)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--models", default="recvae,als,biases,implicit-als,mf,multvae,autorec")
    args = ap.parse_args()
    from recvae.models.base import HistoryContext
    from recvae.storage import atomic_path

    batch, values, counts = histories(2_000 if args.quick else args.users)
    rows = []
    for name in args.models.split(","):
        enc = recvae_encoder() if name == "recvae" else randomised(name).prefix_encoder(HistoryContext(values=values))
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        out = enc.embed(batch)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"model": name, "dim": int(out.shape[1]), "embeddings": len(batch), "seconds": secs, "cpu_seconds": cpu,
                     "embeddings_per_second": len(batch) / secs, "load_before": load0, "load_after": os.getloadavg()[0]})
    lines = [
        "## model_foldin_speed: prefix embeddings per second at ML-20M width (no top-k)",
        "",
        f"{len(counts):,} users x {N_ITEMS:,} items, {int(counts.sum()):,} interactions, {len(batch):,} scheduled prefixes "
        f"(schedule 50 / 0.8 / 10); default model sizes, random weights; {os.cpu_count()} cores shared with other work.",
        "RecVAE (its default 600-dimensional encoder, random weights) is measured in the same run, like for like.",
        "",
        "| model | dim | embeddings/s | wall s | CPU s | load avg (before/after) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dim']} | {r['embeddings_per_second']:,.0f} | {r['seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", "```"] + [json.dumps(r, sort_keys=True) for r in rows] + ["```", ""]
    with atomic_path(RESULTS / "model_foldin_speed.md") as tmp:
        tmp.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
