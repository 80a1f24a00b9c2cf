"""``simcache replay``, ``simcache sweep`` and ``simcache policies``: thin commands over simcache.replay.

Policy parameters have their own options (``--acceptance``, ``--scale`` for rnd-lru; ``--q`` for
qlru-dc); ``--param NAME=VALUE`` passes any documented parameter, including those of policies added
later. ``simcache policies`` lists every policy with its parameters, read from the policy classes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from recvae.errors import UserError
from simcache.cli.common import CommandGroup

# Options shared by replay and sweep ----------------------------------------------------------------
TraceArg = Annotated[Path, typer.Argument(help="Request file: a simcache trace (.arrow), Arrow/Parquet "
                                               "with a vector column, or a .npy matrix (rows = requests).",
                                          show_default=False)]
MetricOpt = Annotated[str, typer.Option("--metric", help="Distance: l2 (Euclidean) or cosine (1 - cos).")]
AcceptanceOpt = Annotated[str | None, typer.Option(
    "--acceptance", help="rnd-lru: acceptance function p(d): step, linear or exp. [default: step]",
    show_default=False)]
ScaleOpt = Annotated[float | None, typer.Option(
    "--scale", help="rnd-lru: scale s of p(d). [default: the radius]", show_default=False)]
QOpt = Annotated[float | None, typer.Option(
    "--q", help="qlru-dc: insertion probability on a pure miss, 0 < q <= 1. [default: 1]", show_default=False)]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", metavar="NAME=VALUE", help="Any policy parameter as NAME=VALUE (repeatable); see `simcache policies`.",
    show_default=False)]
CostOpt = Annotated[str, typer.Option("--cost", help="Approximation cost h(d): zero, linear (scale*d) or "
                                                     "power (scale*d^exponent).")]
RetrievalOpt = Annotated[float, typer.Option("--retrieval-cost", help="Retrieval cost C_r of a miss.")]
CostScaleOpt = Annotated[float, typer.Option("--cost-scale", help="Scale of h(d).")]
CostExpOpt = Annotated[float, typer.Option("--cost-exponent", help="Exponent of h(d) for --cost power.")]
IndexOpt = Annotated[str, typer.Option("--index", help="Nearest-neighbour index: flat (exact), hnsw or ivf.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="block (fast) or plain (reference, one search "
                                                         "per request).")]
BlockOpt = Annotated[int | None, typer.Option("--block-size", help="Requests per batched search "
                                                                   "(default: adaptive).", show_default=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice of the policy.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (for the flat search).")]
WindowOpt = Annotated[int | None, typer.Option("--window", help="Requests per hit-ratio window "
                                                                "(default: about 100 windows).",
                                               show_default=False)]
OverlapOpt = Annotated[int | None, typer.Option("--overlap-k", help="k of overlap@k when the trace has "
                                                                    "top-k lists (default: all of them).",
                                                show_default=False)]
VectorColOpt = Annotated[str | None, typer.Option("--vector-column", help="Vector column of a generic "
                                                                          "Arrow/Parquet file.",
                                                  show_default=False)]
SortOpt = Annotated[bool, typer.Option("--sort/--no-sort", help="Stable-sort requests by timestamp instead "
                                                                "of refusing decreasing timestamps "
                                                                "(loads the vectors into memory).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Replay only the first N requests.",
                                              show_default=False)]
ProgressOpt = Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar "
                                                                                   "[default: when on a terminal].",
                                                  show_default=False)]


def parse_params(acceptance: str | None, scale: float | None, q: float | None,
                 param: list[str] | None) -> dict[str, Any]:
    """Collect the policy options into one ``params`` dict (``--param`` values typed by the policy)."""
    params: dict[str, Any] = {}
    for name, value in (("acceptance", acceptance), ("scale", scale), ("q", q)):
        if value is not None:
            params[name] = value
    for item in param or []:
        name, sep, value = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name:
            raise UserError(f"--param expects NAME=VALUE, got {item!r}")
        if name in params:
            raise UserError(f"policy parameter {name!r} given twice")
        params[name] = value.strip()
    return params


def _progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def register(app: CommandGroup) -> None:
    """Add ``replay``, ``sweep`` and ``policies``."""

    @app.command()
    def replay(
        trace: TraceArg,
        capacity: Annotated[int, typer.Option("--capacity", "-C", help="Cache size (entries).",
                                              show_default=False)],
        policy: Annotated[str, typer.Option("--policy", "-p", help="Cache policy (see `simcache policies`).")] = "lru",
        radius: Annotated[float, typer.Option("--radius", "-r", help="Hit radius: hit iff d(x, y*) <= r.")] = 0.0,
        metric: MetricOpt = "l2",
        acceptance: AcceptanceOpt = None,
        scale: ScaleOpt = None,
        q: QOpt = None,
        param: ParamOpt = None,
        cost: CostOpt = "zero",
        retrieval_cost: RetrievalOpt = 1.0,
        cost_scale: CostScaleOpt = 1.0,
        cost_exponent: CostExpOpt = 2.0,
        index: IndexOpt = "flat",
        engine: EngineOpt = "block",
        block_size: BlockOpt = None,
        seed: SeedOpt = 0,
        device: DeviceOpt = "auto",
        window: WindowOpt = None,
        overlap_k: OverlapOpt = None,
        vector_column: VectorColOpt = None,
        sort: SortOpt = False,
        limit: LimitOpt = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Write summary.json (with the "
                                                 "parameters), per_user.parquet, and with --log "
                                                 "requests.parquet into this directory.",
                                                 show_default=False)] = None,
        log: Annotated[bool, typer.Option("--log", help="With --out: also write the per-request log "
                                                        "(Parquet).")] = False,
        progress: ProgressOpt = None,
    ) -> None:
        """Replay a request trace against a similarity cache and report hits, costs and quality.

        Example: simcache replay traces/ml20m.arrow --policy lru --capacity 1000 --radius 2.5
        """
        from simcache.replay.run import make_cost, run_replay

        if log and out is None:
            raise UserError("--log needs --out DIR (where to write requests.parquet)")
        params = parse_params(acceptance, scale, q, param)
        cost_model = make_cost(cost, retrieval_cost=retrieval_cost, scale=cost_scale, exponent=cost_exponent)
        result = run_replay(
            trace, policy=policy, capacity=capacity, radius=radius, metric=metric, params=params,
            cost=cost_model, index=index, engine=engine, block_size=block_size, seed=seed, device=device,
            window=window, overlap_k=overlap_k, vector_column=vector_column, sort=sort, limit=limit,
            progress=_progress(progress),
        )
        typer.echo(result.table())
        if out is not None:
            written = result.save(out, request_log=log)
            typer.echo("")
            for path in written.values():
                typer.echo(f"wrote {path}")

    @app.command()
    def sweep(
        trace: TraceArg,
        capacity: Annotated[str, typer.Option("--capacity", "-C", help="Capacities: comma list or "
                                              "START:STOP:STEP / START:STOP:xFACTOR (e.g. 100:100000:x10).",
                                              show_default=False)],
        policy: Annotated[str, typer.Option("--policy", "-p", help="Comma list of policies.")] = "lru",
        radius: Annotated[str, typer.Option("--radius", "-r", help="Radii: comma list or START:STOP:STEP "
                                                                   "/ START:STOP:xFACTOR.")] = "0",
        jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel worker processes "
                                                 "[default: min(cores, 4)].", show_default=False)] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory [default: "
                                                 "simcache-report-sweep-<trace name>].",
                                                 show_default=False)] = None,
        plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG curves.")] = True,
        metric: MetricOpt = "l2",
        acceptance: AcceptanceOpt = None,
        scale: ScaleOpt = None,
        q: QOpt = None,
        param: ParamOpt = None,
        cost: CostOpt = "zero",
        retrieval_cost: RetrievalOpt = 1.0,
        cost_scale: CostScaleOpt = 1.0,
        cost_exponent: CostExpOpt = 2.0,
        index: IndexOpt = "flat",
        engine: EngineOpt = "block",
        block_size: BlockOpt = None,
        seed: SeedOpt = 0,
        device: DeviceOpt = "auto",
        window: WindowOpt = None,
        overlap_k: OverlapOpt = None,
        vector_column: VectorColOpt = None,
        sort: SortOpt = False,
        limit: LimitOpt = None,
        progress: ProgressOpt = None,
    ) -> None:
        """Replay a grid of policies x capacities x radii in parallel; write a results table and curves.

        Example: simcache sweep traces/ml20m.arrow --policy lru,fifo --capacity 100:100000:x10 --radius 1,2,3
        """
        from simcache.replay.run import make_cost
        from simcache.replay.sweep import RESULTS_CSV, RESULTS_PARQUET, run_sweep

        params = parse_params(acceptance, scale, q, param)
        cost_model = make_cost(cost, retrieval_cost=retrieval_cost, scale=cost_scale, exponent=cost_exponent)
        out_dir = out if out is not None else Path(f"simcache-report-sweep-{trace.stem}")
        df = run_sweep(
            trace, policies=policy, capacities=capacity, radii=radius, out=out_dir, jobs=jobs,
            metric=metric, params=params, cost=cost_model, index=index, engine=engine,
            block_size=block_size, seed=seed, device=device, window=window, overlap_k=overlap_k,
            vector_column=vector_column, sort=sort, limit=limit, plots=plots,
            progress=_progress(progress), echo=lambda m: typer.echo(m, err=True),
        )
        cols = ["policy", "capacity", "radius", "hit_ratio", "exact_hit_ratio", "approx_hit_ratio",
                "mean_service_cost", "requests_per_s"]
        if df["overlap_approx_mean"].notna().any():
            cols.insert(-1, "overlap_approx_mean")
        typer.echo(df[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        typer.echo("")
        for name in (RESULTS_CSV, RESULTS_PARQUET, "curves_capacity.png", "curves_radius.png"):
            if (out_dir / name).exists():
                typer.echo(f"wrote {out_dir / name}")

    @app.command()
    def policies() -> None:
        """List the cache policies and their parameters (usable as --NAME or --param NAME=VALUE)."""
        from simcache.cache import POLICIES

        for name, cls in POLICIES.items():
            typer.echo(f"{name:<10} {getattr(cls, 'summary', '')}")
            for p in getattr(cls, "params", ()):
                choices = f" ({', '.join(p.choices)})" if p.choices else ""
                default = "" if p.default is None else f" [default: {p.default}]"
                typer.echo(f"{'':<12}{p.name}: {p.type.__name__}{choices} - {p.help}{default}")
