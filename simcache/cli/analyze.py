"""``simcache analyze <analysis> INPUT``: the metric-space analyses, one subcommand each, and ``all``.

Every subcommand writes ``<analysis>.json`` (numbers) and ``<analysis>.png`` (figure, with the two
synthetic baselines on the same axes) into ``--out``; ``all`` runs them all and adds ``report.md``.

The subcommands are derived from :mod:`simcache.analysis.registry`: one per registered analysis,
with the input options below and the options the analysis declares (each registry
:class:`~simcache.analysis.spec.Option` becomes one command-line option, spelled
``Option.cli_flag``). Every subcommand runs :func:`analyze`, so a parameter goes: command-line
option -> :func:`analyze` -> :class:`~simcache.analysis.registry.AnalysisOptions` ->
:func:`~simcache.analysis.run.run_analyses` -> the analysis' ``compute``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from simcache.analysis import registry
from simcache.analysis.spec import Option
from simcache.cli.common import CommandGroup

InputArg = Annotated[Path, typer.Argument(
    help="A simcache trace (.arrow), an Arrow/Parquet file with a vector column, or a .npy matrix.",
    show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Folder for the JSON, PNG (and report) files (default: a folder named after the input, "
    "not the demo's; its name is printed at the end).", show_default=False)]
LatestOpt = Annotated[bool, typer.Option(
    "--latest-per-user", help="Analyse only each user's latest embedding (highest seq); the default when the "
    "input has user ids, so that users with many embeddings do not dominate.")]
AllRowsOpt = Annotated[bool, typer.Option("--all-rows", help="Analyse every row instead.")]
SampleOpt = Annotated[int, typer.Option(
    "--sample", min=0, help="Analyse a seeded random subsample of at most this many rows (0: all rows).")]
VectorColumnOpt = Annotated[Optional[str], typer.Option(
    "--vector-column", help="Column holding the vectors (default: 'embedding' or the only vector column).",
    show_default=False)]
ProgressOpt = Annotated[bool, typer.Option(
    "--progress", help="Progress bars on stderr for the slow steps (default: only on a terminal).")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bars, even on a terminal.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="analyze all: replace the report already in --out (else a reused folder is refused).")]

DEFAULT_SAMPLE = 20_000
GROUP_HELP = ("What metric space do the embeddings live in? Each analysis writes a PNG and a JSON beside two "
              "synthetic baselines (uniform ball, isotropic Gaussian).")


def default_out(input_path: Path) -> Path:
    """The output folder when ``--out`` is not given: named after the input, never the demo's folder."""
    return Path(f"simcache-report-analyze-{input_path.stem}")


def analyze(names: Sequence[str], input: Path, *, out: Path | None = None, report: bool = False,
            latest_per_user: bool = False, all_rows: bool = False, sample: int = DEFAULT_SAMPLE,
            vector_column: str | None = None, progress: bool = False, no_progress: bool = False,
            overwrite: bool = False, **options: Any) -> None:
    """Run the analyses ``names`` on ``input`` and write their files: what every ``analyze`` subcommand does.

    ``options`` are the analyses' options as the command line parsed them (registry names). With
    ``report`` (``analyze all``) the folder is owned by the run: built under a temporary name and
    swapped in whole, a reused folder refused unless ``overwrite``; a single analysis adds its two
    files to the folder (atomically, under the folder's lock).
    """
    from recvae.errors import UserError
    from recvae.outputs import check_output, fresh_folder, owned_folder

    if latest_per_user and all_rows:
        raise UserError("--latest-per-user and --all-rows exclude each other")
    if progress and no_progress:
        raise UserError("--progress and --no-progress exclude each other")
    specs = [registry.get(n) for n in names]
    known = registry.options_of(names)
    values = {name: known[name].from_cli(value) for name, value in options.items()}
    opts = registry.AnalysisOptions(**values)
    every_row = all(s.every_row for s in specs)
    latest = False if every_row or all_rows else (True if latest_per_user else None)
    for spec in specs:  # option checks first: nothing is locked or read for a bad option
        if spec.check is not None:
            try:
                spec.check(opts)
            except ValueError as exc:
                raise UserError(str(exc)) from None
    target = check_output(out if out is not None else default_out(input), kind="folder")
    echo = lambda m: typer.echo(m, err=True)  # noqa: E731
    if report:
        owner = fresh_folder(target, known=("*.json", "*.png", "report.md"), overwrite=overwrite,
                             command="simcache analyze all", echo=echo)  # fmt: skip
    else:
        owner = owned_folder(target, command=f"simcache analyze {names[0]}", echo=echo)
    with owner as dest:
        _prepare_and_run(names, input, dest, specs, opts, report=report, latest=latest, sample=sample,
                         vector_column=vector_column, progress=True if progress else (False if no_progress else None))
    typer.echo(str(target / "report.md") if report else str(target))


def _prepare_and_run(names: Sequence[str], input: Path, dest: Path, specs: list, opts: Any, *, report: bool,
                     latest: bool | None, sample: int, vector_column: str | None, progress: bool | None) -> None:
    """Load and select the input rows, then run the analyses into ``dest``."""
    from recvae.errors import UserError
    from recvae.outputs import final_names_in
    from simcache.analysis.inputs import prepare_input
    from simcache.analysis.run import check_options, run_analyses

    def say(msg: str) -> None:  # names the final folder, not the temporary one the run writes into
        typer.echo(final_names_in(msg), err=True)

    inp = prepare_input(input, vector_column=vector_column, latest=latest, sample=sample or None, seed=opts.seed)
    info = inp.info
    check_options(names, opts, len(inp.points))
    say(f"input: {info['path']} ({info['rows']:,} rows, dimension {info['dim']}); rows: {info['row_selection']}")
    if info["subsampled"]:
        say(f"subsampled: analysing {info['rows_analysed']:,} of {info['rows_selected']:,} rows "
            f"(seed {opts.seed}); --sample 0 analyses all")
    if len(inp.points) < 3:
        raise UserError(f"{input}: {len(inp.points)} rows selected; the analyses need at least 3")
    if len(specs) == 1 and specs[0].needs_users and not inp.has_users:
        raise UserError(f"{input}: {specs[0].name} needs a trace with a user_id column (several embeddings per user)")
    try:
        run_analyses(inp, names, dest, opts, report=report, log=say, progress=progress)
    except ValueError as exc:  # the analyses' documented argument checks (e.g. too few points for k)
        raise UserError(str(exc)) from None


def option_parameter(opt: Option) -> inspect.Parameter:
    """The Typer parameter of one registry option (keyword-only, named as the option)."""
    kwargs: dict[str, Any] = {"help": opt.help}
    if opt.min is not None:
        kwargs["min"] = opt.min
    if opt.choices:
        kind: Any = Literal[opt.choices]
    elif opt.type is bool:
        kind = bool
    else:
        kind = opt.type
    if opt.cli_default is None:
        kind = Optional[kind]
        kwargs["show_default"] = False
    return inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=opt.cli_default,
                             annotation=Annotated[kind, typer.Option(opt.cli_flag, **kwargs)])


def command_signature(names: Sequence[str], *, row_selection: bool, report: bool = False) -> inspect.Signature:
    """The parameters of the subcommand running ``names``: input, input options, then the analyses' options."""
    kw = inspect.Parameter.KEYWORD_ONLY
    opts = registry.options_of(names)
    params = [inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=InputArg),
              inspect.Parameter("out", kw, default=None, annotation=OutOpt)]
    if row_selection:
        params.append(inspect.Parameter("latest_per_user", kw, default=False, annotation=LatestOpt))
        params.append(inspect.Parameter("all_rows", kw, default=False, annotation=AllRowsOpt))
    params.append(inspect.Parameter("sample", kw, default=DEFAULT_SAMPLE, annotation=SampleOpt))
    params.append(option_parameter(opts.pop("seed")))
    params.append(inspect.Parameter("vector_column", kw, default=None, annotation=VectorColumnOpt))
    params += [option_parameter(o) for o in opts.values()]
    params.append(inspect.Parameter("progress", kw, default=False, annotation=ProgressOpt))
    params.append(inspect.Parameter("no_progress", kw, default=False, annotation=NoProgressOpt))
    if report:
        params.append(inspect.Parameter("overwrite", kw, default=False, annotation=OverwriteOpt))
    return inspect.Signature(params, return_annotation=None)


def analysis_command(names: Sequence[str] | None, *, report: bool, doc: str) -> Callable[..., None]:
    """A subcommand running ``names`` (``None``: every analysis registered when it runs) through :func:`analyze`."""
    selected = tuple(registry.names() if names is None else names)

    def command(input: Path, **params: Any) -> None:
        analyze(registry.names() if names is None else selected, input, report=report, **params)

    command.__signature__ = command_signature(  # type: ignore[attr-defined]
        selected, row_selection=not all(registry.get(n).every_row for n in selected), report=report)
    command.__doc__ = doc
    command.__name__ = command.__qualname__ = "analyze_" + ("all" if names is None else "_".join(selected))
    return command


def register(app: CommandGroup) -> None:
    """Add the ``analyze`` group to ``app``: one subcommand per registered analysis, then ``all``."""
    group = CommandGroup(name="analyze", help=GROUP_HELP)
    app.add_typer(group, name="analyze")
    for spec in registry.REGISTRY.values():
        doc = spec.summary + (f"\n\n{spec.description}" if spec.description else "")
        group.command(spec.name)(analysis_command([spec.name], report=False, doc=doc))
    order = ", ".join(registry.names())
    group.command("all")(analysis_command(
        None, report=True, doc="Run every analysis and write report.md linking the figures (drift uses every row "
        f"of the trace).\n\nIn order: {order}."))
    group.command("compare")(compare_command)


def compare_command(
    traces: Annotated[list[Path], typer.Argument(help="Two or more traces (one per model) to lay side by side.",
                                                 show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder (report.md, compare.json, compare_*.png, "
                                      "one analysis folder per trace).")] = Path("simcache-report-compare"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous comparison in --out.")] = False,
    labels: Annotated[Optional[str], typer.Option(
        "--labels", help="Comma-separated label per trace (default: the model in each trace's metadata, else the "
        "file stem).", show_default=False)] = None,
    analyses: Annotated[Optional[str], typer.Option(
        "--analyses", help="Comma-separated analyses to run (default: every registered one, as analyze all).",
        show_default=False)] = None,
    sample: SampleOpt = DEFAULT_SAMPLE,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every sample, baseline and replay.")] = 0,
    scale_sample: Annotated[int, typer.Option(
        "--scale-sample", min=3, help="Points whose nearest-neighbour distance gives each space's scale.")] = 2000,
    fast: Annotated[bool, typer.Option(
        "--fast", help="Small analysis samples (maps, mixtures, pairs), no UMAP and no baseline maps, for a quick look.")] = False,
    sweep: Annotated[bool, typer.Option(
        "--sweep", help="Also run the same cache sweep on every trace at equal normalised radius.")] = False,
    policy: Annotated[str, typer.Option("--policy", help="--sweep: query policies, comma-separated.")] = "lru",
    object_policy: Annotated[str, typer.Option(
        "--object-policy", help="--sweep: object policies (traces with a catalogue), comma-separated; '' for none.")
    ] = "greedy",
    capacity: Annotated[str, typer.Option("--capacity", help="--sweep: capacities (list or range).")] = "100",
    radius: Annotated[str, typer.Option(
        "--radius", help="--sweep: radii in units of each trace's median nearest-neighbour distance "
        "(object policies: the fetch cost c_f, in units of the median request-to-object distance).")
    ] = "0.25,0.5,1,2",
    k: Annotated[int, typer.Option("--k", min=1, help="--sweep: objects per answer of the object policies.")] = 10,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="--sweep: parallel replays.")] = 1,
) -> None:
    """Lay several traces (models) side by side: every analysis, distance scales raw and normalised, sweeps.

    Distances are normalised by each space's median nearest-neighbour distance (report.md says how).
    """
    from recvae.errors import UserError
    from simcache.analysis.compare import CompareConfig, SweepSpec, compare_traces
    from simcache.replay.sweep import parse_grid

    names_ = [n.strip() for n in labels.split(",")] if labels is not None else None
    opts = registry.AnalysisOptions(seed=seed)
    if fast:
        opts = opts.replace(map_sample=1500, gmm_sample=2000, max_components=6, umap=False, angle_pairs=5000,
                            drift_pairs=20_000, drift_queries=500, threads=1, baseline_maps=False)
    spec = None
    if sweep:
        spec = SweepSpec(policies=tuple(p.strip() for p in policy.split(",") if p.strip()),
                         object_policies=tuple(p.strip() for p in object_policy.split(",") if p.strip()),
                         capacities=tuple(parse_grid(capacity, kind=int, name="capacity")),
                         radii=tuple(parse_grid(radius, kind=float, name="radius")), k=k, jobs=jobs)
    elif (policy, object_policy, capacity, radius) != ("lru", "greedy", "100", "0.25,0.5,1,2"):
        raise UserError("--policy, --object-policy, --capacity and --radius need --sweep")
    selected = registry.names() if analyses is None else tuple(a.strip() for a in analyses.split(",") if a.strip())
    for name in selected:
        try:
            registry.get(name)
        except ValueError as exc:
            raise UserError(f"--analyses: {exc}") from None
    config = CompareConfig(analyses=selected, options=opts, sample=sample or None, scale_sample=scale_sample,
                           labels=tuple(names_) if names_ is not None else None, sweep=spec)
    from recvae.outputs import final_names_in

    compare_traces(traces, config, out=out, overwrite=overwrite, log=lambda m: typer.echo(final_names_in(m), err=True))
    typer.echo(str(out / "report.md"))
