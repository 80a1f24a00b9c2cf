"""``simcache replay``, ``simcache sweep`` and ``simcache policies``: thin commands over simcache.replay.

One surface for both cache families (:mod:`simcache.replay.families`): ``--policy`` picks the
family (``lru`` a query cache, ``obj-lru`` an object cache over a catalogue). Options of one family
only (``--exclude-self``, ``--cost``, ... for query caches; ``--catalogue``, ``--k``,
``--fetch-cost``, ``--dissimilarity`` for object caches) are refused for the other's policies.

Every command is a plain module-level function. The policy options (``--acceptance``, ``--q``,
``--rho``, ...) are not written here: :func:`policy_options` derives one option per parameter that
a registered policy of either family declares, and :func:`with_policy_options` adds them to a
command's signature, so a new policy's parameters appear on the command line without editing this
module. A parameter named like one of the command's own options is offered as
``--<family>-<name>`` (the object policies' ``radius`` and ``window``: ``--object-radius``,
``--object-window``). ``--param NAME=VALUE`` passes any declared parameter too. Each command
builds one validated config per family (:class:`~simcache.cache.config.ReplayConfig`,
:class:`~simcache.objects.config.ObjectReplayConfig`) and hands it to the library.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from recvae.errors import UserError
from simcache.cache.config import ReplayConfig
from simcache.cache.costs import CostModel
from simcache.cache.options import COST_KINDS, DEVICES, ENGINES, INDEXES, METRICS
from simcache.cli.common import CommandGroup

# Options shared by replay and sweep ----------------------------------------------------------------
TraceArg = Annotated[Path, typer.Argument(help="Request file: a simcache trace (.arrow), Arrow/Parquet "
                                               "with a vector column, or a .npy matrix (rows = requests).",
                                          show_default=False)]
MetricOpt = Annotated[str, typer.Option("--metric", help=f"Distance: {' or '.join(METRICS)} "
                                                         "(Euclidean, or 1 - cosine similarity); object "
                                                         "caches also ip (the model's score <x, w> + b).")]
CatalogueOpt = Annotated[Path | None, typer.Option("--catalogue", help="Object policies: the catalogue "
                                                   "(.arrow, .npy or Parquet; default: the trace's own, "
                                                   "<trace stem>.catalogue.arrow beside it).",
                                                   show_default=False)]
FetchCostOpt = Annotated[float | None, typer.Option("--fetch-cost", help="Object policies: fetch cost c_f of "
                                                    "one object (default 1).", show_default=False)]
DissimilarityOpt = Annotated[str | None, typer.Option("--dissimilarity", help="Object policies: c_d = h(d): "
                                                      "distance, squared, or radius (0 within --radius, "
                                                      "c_f beyond; default distance).", show_default=False)]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", metavar="NAME=VALUE", help="Any policy parameter as NAME=VALUE (repeatable); see `simcache policies`.",
    show_default=False)]
CostOpt = Annotated[str | None, typer.Option("--cost", help=f"Approximation cost h(d): {', '.join(COST_KINDS)} "
                                                            "(0, scale*d or scale*d^exponent). (default: the "
                                                            "policy's, see `simcache policies`)",
                                              show_default=False)]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="Threads of one replay (default: chosen by "
                                                                   "measurement between one and all available "
                                                                   "cores; 1 on a shared machine).",
                                                show_default=False)]
ExcludeSelfOpt = Annotated[bool, typer.Option("--exclude-self", help="A request never sees the entries its own user "
                                                                     "inserted: hits are reuse across users "
                                                                     "(needs a user_id column).")]
RetrievalOpt = Annotated[float, typer.Option("--retrieval-cost", help="Retrieval cost C_r of a miss.")]
CostScaleOpt = Annotated[float, typer.Option("--cost-scale", help="Scale of h(d).")]
CostExpOpt = Annotated[float, typer.Option("--cost-exponent", help="Exponent of h(d) for --cost power.")]
IndexOpt = Annotated[str, typer.Option("--index", help=f"Nearest-neighbour index: {', '.join(INDEXES)} "
                                                       "(flat is exact).")]
EngineOpt = Annotated[str, typer.Option("--engine", help=f"{' or '.join(ENGINES)}: batched searches (fast) "
                                                         "or one search per request (reference).")]
BlockOpt = Annotated[int | None, typer.Option("--block-size", help="Requests per batched search "
                                                                   "(default: adaptive).", show_default=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice of the policy.")]
DeviceOpt = Annotated[str, typer.Option("--device", help=f"{', '.join(DEVICES)} (for the flat search).")]
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
                                                                                   "(default: when on a terminal).",
                                                  show_default=False)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write summary.json (with the parameters), "
                                             "per_user.parquet, and with --log requests.parquet into this "
                                             "directory.", show_default=False)]
LogOpt = Annotated[bool, typer.Option("--log", help="With --out: also write the per-request log (Parquet).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="With --out: replace the result already there "
                                                                "(the folder is swapped whole when complete).")]


# Policy options, derived from the registries ----------------------------------------------------------
def option_names(reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """Keyword name of each declared policy parameter's option -> the parameter's name: the name
    itself, or ``<family>_<name>`` when it is in ``reserved`` (a command's own option)."""
    from simcache.replay.families import all_policies

    out: dict[str, str] = {}
    for fam, cls in all_policies().values():
        for p in cls.params:
            kw = f"{fam.name}_{p.name}" if p.name in reserved else p.name
            if out.setdefault(kw, p.name) != p.name:
                raise TypeError(f"policy option {kw!r} stands for two parameters ({out[kw]}, {p.name})")
    return out


def policy_options(reserved: frozenset[str] = frozenset()) -> dict[str, inspect.Parameter]:
    """One keyword parameter (a Typer option ``--<name>``) per parameter a registered policy of
    either family declares (named as :func:`option_names` says).

    Policies that declare the same option share it (they must agree on its type).
    """
    from simcache.replay.families import all_policies

    declared: dict[str, list[tuple[str, Any]]] = {}
    for fam, cls in all_policies().values():
        for p in cls.params:
            kw = f"{fam.name}_{p.name}" if p.name in reserved else p.name
            declared.setdefault(kw, []).append((cls.name, p))
    options: dict[str, inspect.Parameter] = {}
    for kw, users in declared.items():
        types = {p.type for _, p in users}
        if len(types) > 1:
            raise TypeError(f"policies {', '.join(u for u, _ in users)} declare parameter {kw!r} with different types")
        parts = []
        for pol, p in users:
            choices = f": {', '.join(p.choices)}" if p.choices else ""
            default = "" if p.default is None else f" (default: {p.default})"
            parts.append(f"{pol}: {p.help}{choices}{default}")
        option = typer.Option(f"--{kw.replace('_', '-')}", help="; ".join(parts), show_default=False)
        options[kw] = inspect.Parameter(kw, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[types.pop() | None, option])  # fmt: skip
    return options


def with_policy_options(command: Any) -> Any:
    """``command`` (which takes ``**policy_options``) with one option per declared policy parameter
    (a parameter named like one of the command's options is renamed, see :func:`option_names`)."""
    sig = inspect.signature(command, eval_str=True)
    fixed = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    reserved = frozenset(p.name for p in fixed)
    generated = policy_options(reserved)
    clash = reserved & set(generated)
    if clash:
        raise TypeError(f"policy parameter(s) {', '.join(sorted(clash))} clash with options of {command.__name__}")
    command.__signature__ = sig.replace(parameters=[*fixed, *generated.values()])
    command.__fixed_options__ = reserved
    _OPTION_PARAMS.update(option_names(reserved))
    return command


def fixed_options(command: Any) -> frozenset[str]:
    """The keyword names of ``command``'s own options (not the generated policy options)."""
    fixed = getattr(command, "__fixed_options__", None)
    if fixed is None:
        sig = inspect.signature(command)
        fixed = frozenset(p.name for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD)
    return fixed


#: keyword name of a generated option -> the policy parameter it sets (filled by with_policy_options)
_OPTION_PARAMS: dict[str, str] = {}


def parse_params(options: dict[str, Any], param: list[str] | None) -> dict[str, Any]:
    """The policy options given on the command line and the ``--param NAME=VALUE`` items, as one
    ``params`` dict (``--param`` values are typed later by the policy's declaration)."""
    params = {_OPTION_PARAMS.get(name, name): value for name, value in options.items() if value is not None}
    for item in param or []:
        name, sep, value = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name:
            raise UserError(f"--param expects NAME=VALUE, got {item!r}")
        if name in params:
            raise UserError(f"policy parameter {name!r} given twice")
        params[name] = value.strip()
    return params


def make_cost(kind: str | None, retrieval_cost: float, scale: float, exponent: float) -> CostModel | None:
    """The cost model of the ``--cost*`` options (None: the policy's default)."""
    if kind is None:
        if (retrieval_cost, scale, exponent) == (1.0, 1.0, 2.0):
            return None
        kind = "zero"
    if kind not in COST_KINDS:
        raise UserError(f"unknown cost model {kind!r}; choose one of {', '.join(COST_KINDS)}")
    return CostModel(kind=kind, retrieval_cost=retrieval_cost, scale=scale, exponent=exponent)


#: options of one family only: keyword -> (flag, default); a non-default value is refused for the other
QUERY_ONLY = {"exclude_self": ("--exclude-self", False), "cost": ("--cost", None),
              "retrieval_cost": ("--retrieval-cost", 1.0), "cost_scale": ("--cost-scale", 1.0),
              "cost_exponent": ("--cost-exponent", 2.0), "engine": ("--engine", "block"),
              "device": ("--device", "auto"), "threads": ("--threads", None), "window": ("--window", None),
              "overlap_k": ("--overlap-k", None)}  # fmt: skip
OBJECT_ONLY = {"catalogue": ("--catalogue", None), "k": ("--k", None), "fetch_cost": ("--fetch-cost", None),
               "dissimilarity": ("--dissimilarity", None)}  # fmt: skip


def refuse_options(values: dict[str, Any], only: dict[str, tuple[str, Any]], family: str,
                   policies: list[str]) -> None:  # fmt: skip
    """A UserError when an option of the ``family`` family only is given without any such policy."""
    given = [flag for name, (flag, default) in only.items() if values.get(name) != default]
    if given:
        raise UserError(f"{', '.join(given)} apply to {family}-cache policies only, not to {', '.join(policies)} "
                        "(see `simcache policies`)")  # fmt: skip


def family_configs(policies: list[str], values: dict[str, Any], params: dict[str, Any]) -> list[Any]:
    """One validated base config per family of ``policies`` from the command's option ``values``
    (``params``: the policy parameters of a single-policy command)."""
    from simcache.objects.config import ObjectReplayConfig
    from simcache.replay.families import family_of

    fams: dict[str, str] = {}
    for p in policies:
        fams.setdefault(family_of(p).name, p)
    if "object" not in fams:
        refuse_options(values, OBJECT_ONLY, "object", policies)
    if "query" not in fams:
        refuse_options(values, QUERY_ONLY, "query", policies)
    v = values
    configs = []
    for fam, first in fams.items():
        own = params
        if fam == "query":
            configs.append(ReplayConfig(
                policy=first, capacity=v["capacity"], radius=v["radius"], metric=v["metric"], params=own,
                cost=make_cost(v["cost"], v["retrieval_cost"], v["cost_scale"], v["cost_exponent"]),
                index=v["index"], device=v["device"], engine=v["engine"], block_size=v["block_size"],
                seed=v["seed"], exclude_self=v["exclude_self"], threads=v["threads"]))  # fmt: skip
        else:
            configs.append(ObjectReplayConfig(
                policy=first, capacity=v["capacity"], k=10 if v["k"] is None else v["k"],
                c_f=1.0 if v["fetch_cost"] is None else v["fetch_cost"], metric=v["metric"],
                dissimilarity=v["dissimilarity"] or "distance", radius=v["radius"], params=own,
                index=v["index"], block_size=v["block_size"], seed=v["seed"]))  # fmt: skip
    return configs


def _progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _capacity_note(result: Any) -> None:
    note = getattr(result, "parameters", {}).get("capacity_note")
    if note:
        typer.echo(f"note: {note}", err=True)


# Commands ---------------------------------------------------------------------------------------------
def replay(
    trace: TraceArg,
    capacity: Annotated[int, typer.Option("--capacity", "-C", help="Cache size (entries).", show_default=False)],
    policy: Annotated[str, typer.Option("--policy", "-p", help="Cache policy (see `simcache policies`).")] = "lru",
    radius: Annotated[float, typer.Option("--radius", "-r", help="Hit radius: hit iff d(x, y*) <= r "
                                                                 "(inf: every entry is usable); object caches: "
                                                                 "r of --dissimilarity radius.")] = 0.0,
    metric: MetricOpt = "l2",
    catalogue: CatalogueOpt = None,
    k: Annotated[int | None, typer.Option("--k", help="Object policies: objects per answer (default 10).",
                                          show_default=False)] = None,
    fetch_cost: FetchCostOpt = None,
    dissimilarity: DissimilarityOpt = None,
    exclude_self: ExcludeSelfOpt = False,
    param: ParamOpt = None,
    cost: CostOpt = None,
    retrieval_cost: RetrievalOpt = 1.0,
    cost_scale: CostScaleOpt = 1.0,
    cost_exponent: CostExpOpt = 2.0,
    index: IndexOpt = "flat",
    engine: EngineOpt = "block",
    block_size: BlockOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    window: WindowOpt = None,
    overlap_k: OverlapOpt = None,
    vector_column: VectorColOpt = None,
    sort: SortOpt = False,
    limit: LimitOpt = None,
    out: OutOpt = None,
    log: LogOpt = False,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = None,
    **policy_options: Any,
) -> None:
    """Replay a request trace against a similarity cache and report hits, costs and quality.

    Query caches report hits, costs, distances and overlap@k; object caches (``--policy obj-lru``,
    ...) NAG, gain, cost, objects served locally vs fetched, overlap@k and provenance.

    Example: simcache replay traces/ml20m.arrow --policy lru --capacity 1000 --radius 2.5
    """
    from recvae.outputs import check_output, fresh_folder
    from simcache.replay.report import PER_USER_FILE, REQUEST_LOG_FILE, SUMMARY_FILE
    from simcache.replay.run import RunOptions, run_replay

    if log and out is None:
        raise UserError("--log needs --out DIR (where to write requests.parquet)")
    if out is not None:
        check_output(out, kind="folder")
    values = dict(locals())
    (config,) = family_configs([policy], values, parse_params(policy_options, param))
    options = RunOptions(vector_column=vector_column, sort=sort, limit=limit, window=window, overlap_k=overlap_k,
                         catalogue=catalogue)  # fmt: skip
    if out is None:
        result = run_replay(trace, config, options, progress=_progress(progress))
        typer.echo(result.table())
        _capacity_note(result)
        return
    with fresh_folder(out, known=(SUMMARY_FILE, PER_USER_FILE, REQUEST_LOG_FILE), overwrite=overwrite,
                      command="simcache replay", echo=lambda m: typer.echo(m, err=True)) as tmp:  # fmt: skip
        result = run_replay(trace, config, options, progress=_progress(progress))
        written = result.save(tmp, request_log=log)
    typer.echo(result.table())
    _capacity_note(result)
    typer.echo("")
    for path in written.values():
        typer.echo(f"wrote {out / path.name}")


def sweep(
    trace: TraceArg,
    capacity: Annotated[str, typer.Option("--capacity", "-C", help="Capacities: comma list or "
                                          "START:STOP:STEP / START:STOP:xFACTOR (e.g. 100:100000:x10).",
                                          show_default=False)],
    policy: Annotated[str, typer.Option("--policy", "-p", help="Comma list of policies.")] = "lru",
    radius: Annotated[str, typer.Option("--radius", "-r", help="Radii: comma list or START:STOP:STEP "
                                                               "/ START:STOP:xFACTOR.")] = "0",
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel worker processes "
                                             "(default: min(cores, 4)).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default: "
                                             "simcache-report-sweep- followed by the trace name).",
                                             show_default=False)] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG curves.")] = True,
    backend: Annotated[str, typer.Option("--backend", help="Where the points run: local (worker processes) "
                                         "or ray (Ray tasks; needs the optional ray extra).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="With --backend ray: join the Ray cluster "
                                                "at this address (e.g. HEAD:6379; default: start a local "
                                                "Ray instance).", show_default=False)] = None,
    ship_trace: Annotated[bool, typer.Option("--ship-trace", help="With --backend ray: send the trace through "
                                             "Ray's object store (once per node) instead of reading it by "
                                             "its path, which needs a shared file system.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the sweep in --out: keep its intact point "
                                         "files that match this grid, settings and trace; compute the "
                                         "rest.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the sweep in --out.")] = False,
    metric: MetricOpt = "l2",
    catalogue: CatalogueOpt = None,
    k: Annotated[str | None, typer.Option("--k", help="Object policies: objects per answer, a comma list or "
                                          "range as for --capacity (default 10).", show_default=False)] = None,
    fetch_cost: FetchCostOpt = None,
    dissimilarity: DissimilarityOpt = None,
    exclude_self: ExcludeSelfOpt = False,
    param: ParamOpt = None,
    cost: CostOpt = None,
    retrieval_cost: RetrievalOpt = 1.0,
    cost_scale: CostScaleOpt = 1.0,
    cost_exponent: CostExpOpt = 2.0,
    index: IndexOpt = "flat",
    engine: EngineOpt = "block",
    block_size: BlockOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    window: WindowOpt = None,
    overlap_k: OverlapOpt = None,
    vector_column: VectorColOpt = None,
    sort: SortOpt = False,
    limit: LimitOpt = None,
    progress: ProgressOpt = None,
    **policy_options: Any,
) -> None:
    """Replay a grid of policies x capacities x radii in parallel; write a results table and curves.

    Each point is written to --out as soon as it ends; an interrupted sweep is continued with
    --resume. A failing point does not stop the others: they are listed at the end and the exit
    code is 1.

    Example: simcache sweep traces/ml20m.arrow --policy lru,fifo --capacity 100:100000:x10 --radius 1,2,3
    """
    from recvae.outputs import check_output
    from simcache.replay.run import RunOptions
    from simcache.replay.sweep import RESULTS_CSV, RESULTS_PARQUET, SweepFailed, run_sweep

    pols = [p.strip() for p in policy.split(",") if p.strip()]
    if not pols:
        raise UserError("no policy given")
    values = dict(locals())
    values.update(capacity=1, radius=0.0, k=None)  # the grid gives each point its own
    if k is not None:
        values["k"] = 1  # given: refused for query-only grids
    params = parse_params(policy_options, param)
    bases = family_configs(pols, values, {})
    options = RunOptions(vector_column=vector_column, sort=sort, limit=limit, window=window, overlap_k=overlap_k,
                         catalogue=catalogue)  # fmt: skip
    out_dir = check_output(out if out is not None else Path(f"simcache-report-sweep-{trace.stem}"), kind="folder")
    failed: SweepFailed | None = None
    try:
        df = run_sweep(
            trace, policies=pols, capacities=capacity, radii=radius, params=params, ks=k,
            out=out_dir, jobs=jobs, config=bases, options=options, backend=backend, address=address,
            ship_trace=ship_trace, resume=resume, overwrite=overwrite, plots=plots, progress=_progress(progress),
            echo=lambda m: typer.echo(m, err=True),
        )
    except SweepFailed as exc:
        failed, df = exc, exc.table
    cols = ["policy", "capacity", "radius", "k", "hit_ratio", "exact_hit_ratio", "approx_hit_ratio",
            "mean_service_cost", "overlap_approx_mean", "nag", "mean_cost", "local_share", "overlap_mean",
            "requests_per_s"]  # fmt: skip
    cols = [c for c in cols if c in ("policy", "capacity") or (c in df and df[c].notna().any())]
    typer.echo(df[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    typer.echo("")
    for name in (RESULTS_CSV, RESULTS_PARQUET, "curves_capacity.png", "curves_radius.png",
                 "object_curves_capacity.png", "object_curves_k.png"):
        if (out_dir / name).exists():
            typer.echo(f"wrote {out_dir / name}")
    if failed is not None:
        typer.echo(f"\n{len(failed.failures)} point(s) failed (rerun with --resume to retry them):", err=True)
        for name, message in sorted(failed.failures.items()):
            typer.echo(f"  {name}: {message}", err=True)
        raise typer.Exit(1)


def policies() -> None:
    """List the cache policies of both families and their parameters (usable as --NAME or
    --param NAME=VALUE; a parameter named like a replay option is --<family>-NAME)."""
    from simcache.replay.families import FAMILIES

    reserved = fixed_options(replay) | fixed_options(sweep)
    for fam in FAMILIES.values():
        typer.echo(f"{fam.name} caches: {fam.help}")
        for name, cls in fam.policies.items():
            typer.echo(f"  {name:<12} [{fam.name} cache] {cls.summary}")
            note = getattr(cls, "defaults_note", "")
            if note:
                typer.echo(f"{'':<16}defaults: {note}")
            for p in cls.params:
                choices = f" ({', '.join(p.choices)})" if p.choices else ""
                default = "" if p.default is None else f" (default: {p.default})"
                flag = f"--{fam.name}-{p.name}" if p.name in reserved else f"--{p.name}"
                flag = flag.replace("_", "-")
                typer.echo(f"{'':<16}{p.name}: {p.type.__name__}{choices} - {p.help}{default} [{flag}]")
        typer.echo("")


def register(app: CommandGroup) -> None:
    """Add ``replay``, ``sweep`` and ``policies``."""
    app.command("replay")(with_policy_options(replay))
    app.command("sweep")(with_policy_options(sweep))
    app.command("policies")(policies)
