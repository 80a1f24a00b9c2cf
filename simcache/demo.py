"""The whole pipeline in one call: data -> RecVAE -> trace -> similarity-cache sweep -> analysis -> report.

``simcache demo`` runs it on the embedded ``synthetic`` dataset (no download, CPU, a few minutes
on 2 cores) and writes a report folder::

    <out>/README.md          summary: model quality, trace, hit ratios, figures
    <out>/summary.json       the same numbers, machine-readable
    <out>/model/             checkpoints and training history
    <out>/trace.arrow        the embedding trace
    <out>/sweep/             results.csv/.parquet, curves_*.png, one JSON per point
    <out>/analysis/          one PNG + JSON per analysis and their report.md

Radii and capacities are chosen from the trace itself (quantiles of the distance between
consecutive embeddings of a user; fractions of the number of users), so the demo shows the
interesting part of the curves whatever the dataset.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recvae import __version__
from recvae.errors import UserError
from recvae.storage import atomic_path

#: Policies the demo compares, in table order.
DEMO_POLICIES = ("lru", "fifo", "lfu", "rnd-lru", "qlru-dc")
#: Quantiles of the same-user step distance used as radii.
RADIUS_QUANTILES = ("q0.25", "q0.5", "q0.75")
#: Training epochs on the synthetic dataset when none are given (enough to beat popularity clearly).
SYNTHETIC_DEMO_EPOCHS = 10
#: Cache sizes as fractions of the number of users in the trace.
CAPACITY_FRACTIONS = (0.01, 0.05, 0.2)


@dataclass
class DemoResult:
    """Where the report went and the headline numbers printed at the end."""

    out: Path
    metrics: dict[str, dict[str, Any]]
    trace_rows: int
    radii: list[float]
    capacities: list[int]
    sweep: Any  # pandas DataFrame, one row per (policy, capacity, radius)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary_table(self) -> str:
        """Best hit ratio per policy at the largest capacity and median radius, as text."""
        df = self.sweep
        r_mid = self.radii[len(self.radii) // 2]
        c_max = max(self.capacities)
        sel = df[(df["capacity"] == c_max) & np.isclose(df["radius"], r_mid)]
        lines = [f"hit ratios at capacity {c_max}, radius {r_mid:.4g}:"]
        lines.append(f"  {'policy':<10}{'hits':>8}{'exact':>8}{'approx':>8}{'other':>8}{'cost':>8}")
        for _, row in sel.iterrows():
            lines.append(
                f"  {row['policy']:<10}{row['hit_ratio']:>8.3f}{row['exact_hit_ratio']:>8.3f}"
                f"{row['approx_hit_ratio']:>8.3f}{row['other_user_hit_ratio']:>8.3f}{row['mean_service_cost']:>8.3f}"
            )
        lines.append("  (other: hits served by another user's entry; the rest are a user's own earlier entry)")
        return "\n".join(lines)


def choose_radii(step_quantiles: dict[str, float], other_quantiles: dict[str, float] | None = None) -> list[float]:
    """Radii in both regimes of a similarity cache (distinct, positive, 3 digits): the quartiles of
    the same-user step distance (hits mostly by a user's own earlier entry) and, when given, the
    5% and 25% quantiles of the distance to the nearest other user's request (where other users'
    entries start to serve).

    A trace where no user has two embeddings takes the low quantiles (5%, 25%, 50%) of the
    other-user distance only.
    """
    other = other_quantiles or {}
    if any(step_quantiles.get(q, 0) > 0 for q in RADIUS_QUANTILES):
        picks = [step_quantiles.get(q, 0) for q in RADIUS_QUANTILES] + [other.get(q, 0) for q in ("q0.05", "q0.25")]
    else:
        picks = [other.get(q, 0) for q in ("q0.05", "q0.25", "q0.5")]
    radii = sorted({float(f"{v:.3g}") for v in picks if v > 0})
    if not radii:
        raise UserError("the trace has no positive neighbour distances; cannot choose radii")
    return radii


def choose_capacities(n_users: int, n_rows: int) -> list[int]:
    """Capacities at fixed fractions of the number of users, at least 1 and below the trace length."""
    caps = {min(max(1, round(f * n_users)), max(1, n_rows - 1)) for f in CAPACITY_FRACTIONS}
    return sorted(caps)


def run_demo(
    out: str | Path = "simcache-report",
    *,
    dataset: str = "synthetic",
    data_dir: str | Path | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    jobs: int | None = None,
    max_analysis_points: int = 5_000,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run every stage and write the report folder ``out``; see the module docstring."""
    from recvae.checkpoint import load_model
    from recvae.data import prepare
    from recvae.evaluation import evaluate_model, evaluate_popularity
    from recvae.trace.build import build_trace
    from recvae.training import TrainConfig, train_or_reuse
    from simcache.replay.sweep import run_sweep
    from simcache.trace.info import trace_info

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: report folder exists and is not empty; choose another --out or remove it")
    if dataset != "synthetic" and (n_users is not None or n_items is not None):
        raise UserError("--users/--items size the synthetic dataset only")
    gen = {k: v for k, v in {"n_users": n_users, "n_items": n_items, "seed": seed}.items() if v is not None}
    gen = gen if dataset == "synthetic" else {}
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    echo(f"[1/6] preparing {dataset} (Mult-VAE strong-generalization split)")
    data = prepare(dataset, data_dir, progress=progress, **gen)
    echo(
        f"      {data.train.shape[0]} training users, {len(data.val_users)} validation, "
        f"{len(data.test_users)} test, {data.n_items} items"
    )
    stage("prepare")

    echo("[2/6] training RecVAE")
    if epochs is None and dataset == "synthetic":
        epochs = SYNTHETIC_DEMO_EPOCHS
    config = TrainConfig.for_dataset(dataset, epochs=epochs, seed=seed, device=device)
    # a model trained with the same data and settings is reused from the cache (as build-trace does)
    cached = train_or_reuse(data, config, progress=progress, log_line=lambda s: echo("      " + s))
    checkpoint = out / "model" / cached.name
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(checkpoint) as tmp:
        shutil.copyfile(cached, tmp)
    model, info = load_model(checkpoint, device="cpu", expect=data)
    metrics = {"RecVAE": evaluate_model(model, data, "test"), "popularity": evaluate_popularity(data, "test")}
    stage("train")

    echo("[3/6] building the embedding trace")
    trace = build_trace(
        dataset, data_dir=data_dir, model=checkpoint, out=out / "trace.arrow", seed=seed,
        device=device, progress=progress, prepare_params=gen or None,
    )
    tinfo = trace_info(trace, seed=seed)
    echo(f"      {tinfo.rows} embeddings of {tinfo.users} users, dimension {tinfo.dim}")
    stage("trace")

    radii = choose_radii(tinfo.consecutive_same_user, tinfo.nn_other_user)
    capacities = choose_capacities(int(tinfo.users or tinfo.rows), tinfo.rows)
    echo(f"[4/6] replaying {len(DEMO_POLICIES)} policies x capacities {capacities} x radii {radii}")
    sweep = run_sweep(
        trace, policies=list(DEMO_POLICIES), capacities=capacities, radii=radii, out=out / "sweep",
        jobs=jobs, seed=seed, progress=progress, echo=lambda s: echo("      " + s),
    )
    stage("sweep")

    echo("[5/6] analysing the embedding space")
    analysis = _run_analyses(trace, out / "analysis", seed=seed, max_points=max_analysis_points)
    stage("analysis")

    echo("[6/6] writing the report")
    result = DemoResult(out, metrics, tinfo.rows, radii, capacities, sweep, seconds)
    _write_report(result, dataset=dataset, tinfo=tinfo, analysis=analysis, config=config.to_dict(), ckpt=info)
    stage("report")
    return result


def _run_analyses(trace: Path, out: Path, *, seed: int, max_points: int) -> dict[str, Any]:
    """Every analysis on the latest embedding of each user (drift uses every row); returns the results.

    UMAP and the baselines' t-SNE maps are left out to keep the demo short; ``simcache analyze map``
    has them.
    """
    from simcache.analysis import ANALYSIS_NAMES
    from simcache.analysis.inputs import prepare_input
    from simcache.analysis.run import AnalysisOptions, run_analyses

    inp = prepare_input(trace, latest=True, sample=max_points, seed=seed)
    opts = AnalysisOptions(
        seed=seed, gmm_sample=min(max_points, 3_000), map_sample=min(max_points, 1_000), umap=False,
        baseline_maps=False,
    )
    return run_analyses(inp, ANALYSIS_NAMES, out, opts, report=True)


def _metrics_rows(metrics: dict[str, dict[str, Any]]) -> list[str]:
    names = list(next(iter(metrics.values()))["metrics"])
    rows = ["| model | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for model, res in metrics.items():
        cells = [f"{res['metrics'][n]['mean']:.4f} ± {res['metrics'][n]['se']:.4f}" for n in names]
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    return rows


def _sweep_rows(df: Any) -> list[str]:
    cols = [
        "policy", "capacity", "radius", "hit_ratio", "exact_hit_ratio", "approx_hit_ratio",
        "same_user_hit_ratio", "other_user_hit_ratio", "mean_service_cost", "overlap_approx_mean",
    ]
    cols = [c for c in cols if c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        rows.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return rows


def _write_report(
    result: DemoResult, *, dataset: str, tinfo: Any, analysis: dict[str, Any], config: dict, ckpt: dict
) -> None:
    """README.md and summary.json in the report folder (atomically)."""
    from simcache.jsonout import write_json

    out = result.out
    figures = sorted(p.relative_to(out).as_posix() for p in out.glob("sweep/*.png"))
    analysis_figs = sorted(p.relative_to(out).as_posix() for p in out.glob("analysis/*.png"))
    lines = [
        f"# simcache demo report ({dataset})",
        "",
        f"simcache {__version__}; stage times (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()),
        "",
        "## Model quality (test users)",
        "",
        *_metrics_rows(result.metrics),
        "",
        f"RecVAE trained for {config['epochs']} epochs (best epoch {ckpt.get('best_epoch')}, "
        f"validation NDCG@100 {ckpt.get('best_score') or float('nan'):.4f}); checkpoint `model/best.pt`.",
        "",
        "## Trace",
        "",
        "```",
        tinfo.format(),
        "```",
        "",
        "## Similarity caching",
        "",
        f"Radii: quartiles of the distance between consecutive embeddings of a user (the same-user regime) "
        f"and the 5% and 25% quantiles of the nearest-other-user distance (the cross-user regime) "
        f"({result.radii}); "
        f"capacities: {', '.join(f'{f:.0%}' for f in CAPACITY_FRACTIONS)} of the users ({result.capacities}). "
        "`same_user_hit_ratio` counts hits served by the user's own earlier entry (consecutive embeddings "
        "of a user are close), `other_user_hit_ratio` those served by another user's: the reuse a shared "
        "cache is for (`simcache replay --exclude-self` counts only these).",
        "",
        *_sweep_rows(result.sweep),
        "",
        *[f"![{Path(f).stem}]({f})" for f in figures],
        "",
        "## Embedding space",
        "",
        "Full analysis report: [analysis/report.md](analysis/report.md).",
        "",
        *[f"![{Path(f).stem}]({f})" for f in analysis_figs],
        "",
    ]
    summary = {
        "simcache_version": __version__,
        "dataset": dataset,
        "seconds": result.seconds,
        "metrics": result.metrics,
        "trace": tinfo.to_dict(),
        "radii": result.radii,
        "capacities": result.capacities,
        "sweep": result.sweep.to_dict(orient="records"),
        "analyses": sorted(analysis),
    }
    write_json(out / "summary.json", summary)
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text("\n".join(lines))

