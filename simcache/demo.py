"""The whole pipeline in one call: data -> RecVAE -> trace -> similarity-cache sweep -> analysis -> report.

``simcache demo`` runs it on the embedded ``synthetic`` dataset (no download, CPU, a few minutes
on 2 cores) and writes a report folder::

    <out>/README.md          summary: model quality, trace, hit ratios, figures
    <out>/summary.json       the same numbers, machine-readable
    <out>/model/             checkpoints and training history
    <out>/trace.arrow        the embedding trace (and trace.catalogue.arrow, the item catalogue)
    <out>/sweep/             results.csv/.parquet, curves_*.png, one JSON per point
    <out>/object-sweep/      the same for object caches over the catalogue (NAG, overlap@k)
    <out>/analysis/          one PNG + JSON per analysis and their report.md

Radii and capacities are chosen from the trace itself (quantiles of the distance between
consecutive embeddings of a user; fractions of the number of users), so the demo shows the
interesting part of the curves whatever the dataset. The object-cache view replays the same
trace against object caches over the model's item catalogue (k = 10 answers ranked by the model's
score, ``ip``), with capacities as fractions of the catalogue and the fetch cost ``c_f`` at the
median score gap between a request's best and 10th object, so that cached near-substitutes matter.
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
#: Object-cache policies the demo compares (obj-qlru-dc is defined for k = 1 only), GREEDY last.
DEMO_OBJECT_POLICIES = ("obj-lru", "obj-lfu", "obj-sim-lru", "greedy")
#: Objects per answer, metric and object-cache sizes (fractions of the catalogue) of the object view.
OBJECT_K = 10
OBJECT_METRIC = "ip"
OBJECT_CAPACITY_FRACTIONS = (0.02, 0.05, 0.1, 0.2)
#: What a demo report folder holds (glob patterns): ``--overwrite`` replaces only such a folder.
DEMO_FILES = ("README.md", "summary.json", "model/*", "trace.arrow", "trace.catalogue.arrow", "sweep/*",
              "sweep/points/*", "object-sweep/*", "object-sweep/points/*", "analysis/*")


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
    object_sweep: Any = None  # pandas DataFrame, one row per (object policy, capacity)
    object_setup: dict[str, Any] = field(default_factory=dict)  # k, metric, c_f, capacities, catalogue size

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
        if self.object_sweep is not None and len(self.object_sweep):
            obj = self.object_sweep
            c_obj = int(obj["capacity"].max())
            lines.append(f"object caches at capacity {c_obj} (k = {self.object_setup.get('k')}):")
            lines.append(f"  {'policy':<12}{'NAG':>8}{'overlap':>9}{'local':>8}")
            for _, row in obj[obj["capacity"] == c_obj].iterrows():
                lines.append(f"  {row['policy']:<12}{row['nag']:>8.3f}{row['overlap_mean']:>9.3f}"
                             f"{row['local_share']:>8.3f}")
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


def choose_object_capacities(n_objects: int, k: int) -> list[int]:
    """Object-cache sizes at fixed fractions of the catalogue, at least k and at most the catalogue."""
    return sorted({min(n_objects, max(k, round(f * n_objects))) for f in OBJECT_CAPACITY_FRACTIONS})


def object_setup(trace: Path, *, k: int = OBJECT_K, metric: str = OBJECT_METRIC, seed: int = 0) -> dict[str, Any]:
    """The object view's settings for ``trace`` and its catalogue: k, metric, c_f (median score gap
    between a request's 1st and k-th object, from ``catalogue info``'s scales), capacities."""
    from recvae.trace.format import catalogue_path
    from simcache.objects.catalogue import load_catalogue
    from simcache.objects.info import catalogue_info
    from simcache.trace.io import load_requests

    cat = load_catalogue(catalogue_path(trace))
    k = min(k, len(cat))
    info = catalogue_info(cat, load_requests(trace).vectors, k=k, sample=500, seed=seed).to_dict()
    gap = info["scales"]["metrics"][metric][f"{k}th"]["q50"]
    return {"k": k, "metric": metric, "c_f": float(f"{gap:.3g}") if gap > 0 else 1.0,
            "capacities": choose_object_capacities(len(cat), k), "objects": len(cat)}  # fmt: skip


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
    overwrite: bool = False,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run every stage and write the report folder ``out``; see the module docstring.

    Every argument is checked before the first stage. The report is built in a temporary folder
    beside ``out`` and swapped in whole at the end, so a failed or killed demo leaves ``out`` as it
    was; an existing report is refused unless ``overwrite``.
    """
    from recvae.outputs import check_output, final_names_in, fresh_folder

    out = check_output(out, kind="folder")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    if dataset != "synthetic" and (n_users is not None or n_items is not None):
        raise UserError("--users/--items size the synthetic dataset only")

    def say(message: str) -> None:  # names the final folder, not the temporary one the stages write into
        echo(final_names_in(message))

    with fresh_folder(out, known=DEMO_FILES, overwrite=overwrite, command="simcache demo", echo=say) as work:
        result = _run_stages(work, dataset=dataset, data_dir=data_dir, n_users=n_users, n_items=n_items,
                             epochs=epochs, seed=seed, device=device, jobs=jobs,
                             max_analysis_points=max_analysis_points, progress=progress, echo=say)  # fmt: skip
    result.out = out
    return result


def _run_stages(out: Path, *, dataset: str, data_dir: str | Path | None, n_users: int | None,
                n_items: int | None, epochs: int | None, seed: int, device: str, jobs: int | None,
                max_analysis_points: int, progress: bool, echo: Callable[[str], None]) -> DemoResult:  # fmt: skip
    """The seven stages, writing into the (temporary) folder ``out``."""
    from recvae.checkpoint import load_model
    from recvae.data import prepare
    from recvae.evaluation import evaluate_model, evaluate_popularity
    from recvae.trace.build import build_trace
    from recvae.training import TrainConfig, train_or_reuse
    from simcache.replay.sweep import run_sweep
    from simcache.trace.info import trace_info

    gen = {k: v for k, v in {"n_users": n_users, "n_items": n_items, "seed": seed}.items() if v is not None}
    gen = gen if dataset == "synthetic" else {}
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    echo(f"[1/7] preparing {dataset} (Mult-VAE strong-generalization split)")
    data = prepare(dataset, data_dir, progress=progress, **gen)
    echo(
        f"      {data.train.shape[0]} training users, {len(data.val_users)} validation, "
        f"{len(data.test_users)} test, {data.n_items} items"
    )
    stage("prepare")

    echo("[2/7] training RecVAE")
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

    echo("[3/7] building the embedding trace")
    trace = build_trace(
        dataset, data_dir=data_dir, model=checkpoint, out=out / "trace.arrow", seed=seed,
        device=device, progress=progress, prepare_params=gen or None,
    )
    tinfo = trace_info(trace, seed=seed)
    echo(f"      {tinfo.rows} embeddings of {tinfo.users} users, dimension {tinfo.dim}")
    stage("trace")

    radii = choose_radii(tinfo.consecutive_same_user, tinfo.nn_other_user)
    capacities = choose_capacities(int(tinfo.users or tinfo.rows), tinfo.rows)
    echo(f"[4/7] replaying {len(DEMO_POLICIES)} policies x capacities {capacities} x radii {radii}")
    sweep = run_sweep(
        trace, policies=list(DEMO_POLICIES), capacities=capacities, radii=radii, out=out / "sweep",
        jobs=jobs, seed=seed, progress=progress, echo=lambda s: echo("      " + s),
    )
    stage("sweep")

    from simcache.objects.config import ObjectReplayConfig

    setup = object_setup(trace, seed=seed)
    echo(f"[5/7] object caches over the {setup['objects']}-item catalogue: {len(DEMO_OBJECT_POLICIES)} policies x "
         f"capacities {setup['capacities']} (k = {setup['k']}, {setup['metric']}, c_f = {setup['c_f']:g})")
    base = ObjectReplayConfig(policy=DEMO_OBJECT_POLICIES[0], capacity=1, k=setup["k"], metric=setup["metric"],
                              c_f=setup["c_f"], seed=seed)  # fmt: skip
    object_sweep = run_sweep(
        trace, policies=list(DEMO_OBJECT_POLICIES), capacities=setup["capacities"], out=out / "object-sweep",
        jobs=jobs, config=base, progress=progress, echo=lambda s: echo("      " + s),
    )
    stage("object sweep")

    echo("[6/7] analysing the embedding space")
    analysis = _run_analyses(trace, out / "analysis", seed=seed, max_points=max_analysis_points)
    stage("analysis")

    echo("[7/7] writing the report")
    result = DemoResult(out, metrics, tinfo.rows, radii, capacities, sweep, seconds, object_sweep, setup)
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


#: the columns of the report's query-cache and object-cache tables
SWEEP_COLUMNS = ("policy", "capacity", "radius", "hit_ratio", "exact_hit_ratio", "approx_hit_ratio",
                 "same_user_hit_ratio", "other_user_hit_ratio", "mean_service_cost", "overlap_approx_mean")
OBJECT_COLUMNS = ("policy", "capacity", "k", "nag", "mean_cost", "mean_gain", "local_share", "overlap_mean",
                  "exact_answer_ratio")


def _sweep_rows(df: Any, columns: tuple[str, ...] = SWEEP_COLUMNS) -> list[str]:
    cols = [c for c in columns if c in df.columns]
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
    object_figures = sorted(p.relative_to(out).as_posix() for p in out.glob("object-sweep/*.png"))
    setup = result.object_setup
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
        "## Object caching",
        "",
        f"The same trace against object caches over the model's {setup.get('objects')}-item catalogue "
        f"(`trace.catalogue.arrow`): each request asks for its k = {setup.get('k')} best items by the "
        f"model's score (`--metric {setup.get('metric')}`), the cache serves the optimal answer from what it "
        f"holds and fetches the rest at c_f = {setup.get('c_f', float('nan')):g} each (the median score gap "
        "between a request's best and k-th item). NAG is the mean gain over the empty cache divided by k c_f; "
        "`overlap_mean` is overlap@k of the served list with the server's; `local_share` the share of "
        "answer objects served from the cache. GREEDY is the static reference (content chosen offline "
        "from the whole request sequence). See docs/object-caches.md.",
        "",
        *(_sweep_rows(result.object_sweep, OBJECT_COLUMNS) if result.object_sweep is not None else []),
        "",
        *[f"![{Path(f).stem}]({f})" for f in object_figures],
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
        "object_setup": setup,
        "object_sweep": [] if result.object_sweep is None else result.object_sweep.to_dict(orient="records"),
        "analyses": sorted(analysis),
    }
    write_json(out / "summary.json", summary)
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text("\n".join(lines))

