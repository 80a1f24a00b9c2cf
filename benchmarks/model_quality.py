"""Model quality: every model of :mod:`recvae.models` on MovieLens-100K and synthetic data, 3 seeds.

For each dataset, model and seed (0, 1, 2) the model is trained with :func:`recvae.models.trainer.train_model`
(validation NDCG@100 picks the best epoch), then evaluated on the test users with the shared
protocol (NDCG@100, Recall@20, Recall@50; fold-in -> held-out) and, for explicit-feedback models,
by RMSE on the training users' held-out ratings. Reported: mean ± standard deviation over the
seeds, beside popularity (deterministic), the global-mean RMSE, RecVAE's figure from
``train_speed`` (one seed: a RecVAE run takes ~5 minutes on ML-100K here) and the published
Mult-VAE / RecVAE figures (ML-20M; not comparable in size, listed for orientation only).

Data: ``ml100k`` from ``--data-dir`` (default ``$SIMCACHE_SHARED_DATA/ml-100k``, else
``../shared/data/ml-100k`` beside the repository; skipped when absent) and ``synthetic`` with the
generator's defaults (2,000 users x 1,000 items, ratings 1-5 with planted clusters). Mult-VAE
runs its 200 epochs with ``anneal_steps`` set so that beta reaches its cap 0.2 at 86% of the
updates, as the reference schedule does at ML-20M (200,000 steps, 233 updates x 200 epochs).
``python -m benchmarks.model_quality [--quick]`` writes ``benchmarks/results/model_quality.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import shared_ml100k

RESULTS = Path(__file__).resolve().parent / "results"
PUBLISHED = {"multvae": "0.426 / 0.395 / 0.537", "recvae": "0.442 / 0.414 / 0.553"}  # ML-20M


def options(name: str, n_train: int, quick: bool) -> dict:
    if name == "multvae":
        epochs = 20 if quick else 200
        updates = epochs * math.ceil(n_train / 500)
        return {"epochs": epochs, "anneal_steps": max(1, round(updates / (0.2 * 1.16)))}
    if quick:
        return {"epochs": 3} if name != "metadata" else {}
    return {}


def run(dataset: str, data_dir, models: list[str], seeds: list[int], quick: bool) -> list[dict]:
    from recvae.data import prepare
    from recvae.evaluation import evaluate_popularity
    from recvae.models import checkpoint
    from recvae.models.checkpoint import LAST
    from recvae.models.data import model_data
    from recvae.models.evaluation import evaluate_topn, rmse_biases, rmse_global_mean
    from recvae.models.evaluation import rmse as model_rmse
    from recvae.models.registry import get_model
    from recvae.models.trainer import train_model

    prepared = prepare(dataset, data_dir, progress=False)
    rows = []
    pop = evaluate_popularity(prepared, "test")["metrics"]
    rated = model_data(prepared, frozenset({"ratings"}), data_dir, "global mean")
    rows.append({"dataset": dataset, "model": "popularity", "seed": None, "test": {k: v["mean"] for k, v in pop.items()},
                 "rmse": rmse_global_mean(rated)})
    for name in models:
        cls = get_model(name)
        if "side" in cls.needs and dataset != "ml100k":
            continue
        data = model_data(prepared, cls.needs, data_dir, name)
        for seed in seeds:
            cfg = cls.Config.with_options(None, seed=seed, device="cpu", **options(name, prepared.train.shape[0], quick))
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                best = train_model(name, data, cfg, Path(tmp) / "run", progress=False, log_line=lambda s: None)
                seconds = time.perf_counter() - t0
                model, info = checkpoint.load(best, expect_type=name)
                last = checkpoint.load(best.parent / LAST, expect_type=name)[0] if model.explicit else None
            hist = info["history"]
            res = evaluate_topn(model, data, "test")["metrics"]
            row = {"dataset": dataset, "model": name, "seed": seed, "best_epoch": info["best_epoch"],
                   "epochs": cfg.epochs, "train_seconds_per_epoch": float(np.mean([h["train_seconds"] for h in hist])),
                   "seconds": seconds, "test": {k: v["mean"] for k, v in res.items()},
                   "rmse": model_rmse(model, data) if model.explicit else None,
                   "rmse_last": model_rmse(last, data) if last is not None else None}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    rows.append({"dataset": dataset, "model": "biases (RMSE baseline, 10 sweeps)", "seed": None, "test": None,
                 "rmse": rmse_biases(rated)})
    return rows


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def report(rows: list[dict], recvae: dict, seeds: list[int], quick: bool) -> str:
    runs = f"seeds {', '.join(map(str, seeds))}" + (", --quick: a few epochs only, not the models' quality" if quick else "")
    out = [
        f"## model_quality: every model on ML-100K and synthetic data ({runs})",
        "",
        "Test users, shared protocol (fold-in -> held-out): NDCG@100, Recall@20, Recall@50; RMSE on the",
        "training users' held-out ratings (explicit models) of the epoch the shared trainer keeps (best validation",
        "NDCG@100) and of the last epoch (a rating model's RMSE can keep improving after its ranking stops).",
        "Mean ± standard deviation over the seeds.",
        "RecVAE: `train_speed`'s run (seed 0). Published figures are ML-20M's (orientation only).",
        "",
        "| dataset | model | NDCG@100 | Recall@20 | Recall@50 | RMSE | RMSE, last epoch | best epoch | s / epoch | published (ML-20M) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    keys = []
    for r in rows:
        if (r["dataset"], r["model"]) not in keys:
            keys.append((r["dataset"], r["model"]))
    for ds, name in keys:
        rs = [r for r in rows if r["dataset"] == ds and r["model"] == name]
        metric = lambda m: _cell([r["test"][m] for r in rs if r["test"]])  # noqa: E731
        rm = _cell([r["rmse"] for r in rs if r.get("rmse") is not None])
        rm_last = _cell([r["rmse_last"] for r in rs if r.get("rmse_last") is not None])
        ep = _cell([float(r["best_epoch"]) for r in rs if r.get("best_epoch")]).replace(".0000", "")
        sec = _cell([r["train_seconds_per_epoch"] for r in rs if "train_seconds_per_epoch" in r])
        out.append(f"| {ds} | {name} | {metric('ndcg@100')} | {metric('recall@20')} | {metric('recall@50')} | {rm} | {rm_last} | "
                   f"{ep} | {sec} | {PUBLISHED.get(name, '')} |")
        if ds == "ml100k" and name == "popularity" and recvae:
            out.append(f"| ml100k | recvae (train_speed, seed 0) | {recvae['ndcg@100']:.4f} | {recvae['recall@20']:.4f} | "
                       f"{recvae['recall@50']:.4f} | - | - | - | - | {PUBLISHED['recvae']} |")
    out += ["", "Raw measurements (JSON, one line per run):", "", "```"] + [json.dumps(r, sort_keys=True) for r in rows] + ["```", ""]
    return "\n".join(out)


def recvae_figure() -> dict:
    path = RESULTS / "train_speed.md"
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        if line.startswith("{") and '"case": "ml100k"' in line:
            return json.loads(line)["test"]
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few epochs, one seed (a smoke run)")
    ap.add_argument("--data-dir", type=Path, default=None, help="MovieLens-100K folder")
    ap.add_argument("--models", default="multvae,biases,als,implicit-als,mf,autorec,metadata")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from recvae.storage import atomic_path

    models = [m for m in args.models.split(",") if m]
    seeds = [0] if args.quick else [0, 1, 2]
    ml = args.data_dir or shared_ml100k()
    rows = []
    if ml is not None and (Path(ml) / "u.data").is_file():
        rows += run("ml100k", ml, models, seeds, args.quick)
    else:
        print(f"ml100k skipped: {ml or 'no ml-100k under $SIMCACHE_SHARED_DATA or shared/data'} not found",
              file=sys.stderr)
    rows += run("synthetic", None, models, seeds, args.quick)
    with atomic_path(RESULTS / "model_quality.md") as tmp:
        tmp.write_text(report(rows, recvae_figure(), seeds, args.quick))


if __name__ == "__main__":
    main()
