"""``simcache analyze <analysis> INPUT --out DIR``: the metric-space analyses, one subcommand each, and ``all``.

Every subcommand writes ``<analysis>.json`` (numbers) and ``<analysis>.png`` (figure, with the two
synthetic baselines on the same axes) into ``--out``; ``all`` runs them all and adds ``report.md``.
The work is done by :mod:`simcache.analysis`; this module only parses options.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from simcache.cli.common import CommandGroup


class BaselineCenter(str, Enum):
    mean = "mean"
    origin = "origin"


class Covariance(str, Enum):
    full = "full"
    diag = "diag"
    tied = "tied"
    spherical = "spherical"


InputArg = Annotated[Path, typer.Argument(
    help="A simcache trace (.arrow), an Arrow/Parquet file with a vector column, or a .npy matrix.",
    show_default=False)]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON, PNG (and report) files.")]
LatestOpt = Annotated[bool, typer.Option(
    "--latest-per-user", help="Keep only each user's latest embedding (highest seq). Default: all rows.")]
SampleOpt = Annotated[int, typer.Option(
    "--sample", min=0, help="Analyse a seeded random subsample of at most this many rows (0: all rows).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for subsamples, baselines and every random choice.")]
VectorColumnOpt = Annotated[Optional[str], typer.Option(
    "--vector-column", help="Column holding the vectors (default: 'embedding' or the only vector column).")]
CenterOpt = Annotated[BaselineCenter, typer.Option(
    "--baseline-center", help="mean: baselines centred on the data mean with its total variance; origin: "
    "centred on 0 with the data's mean squared norm.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", min=1, help="Cap BLAS/OpenMP threads for t-SNE/UMAP (helps on a busy machine).")]
BinsOpt = Annotated[int, typer.Option("--bins", min=5, help="Histogram bins.")]
CentersOpt = Annotated[int, typer.Option("--centers", min=1, help="balls: number of random centres.")]
KMinOpt = Annotated[int, typer.Option("--k-min", min=1, help="knn-radius: smallest k of the log R(k) fit.")]
KMaxOpt = Annotated[int, typer.Option("--k-max", min=2, help="knn-radius: largest k of the log R(k) fit.")]
KMleOpt = Annotated[int, typer.Option("--k-mle", min=2, help="knn-radius: neighbours for the Levina-Bickel MLE.")]
AnglePairsOpt = Annotated[int, typer.Option("--angle-pairs", min=1, help="angles: random pairs of points.")]
CenterAnglesOpt = Annotated[bool, typer.Option(
    "--center-angles", help="angles: subtract the mean first (default: angles from the origin).")]
ProjPairsOpt = Annotated[int, typer.Option("--projection-pairs", min=1, help="projections: coordinate pairs.")]
MaxKOpt = Annotated[int, typer.Option("--max-components", min=1, help="gmm: fit K = 1..this many components.")]
CovOpt = Annotated[Covariance, typer.Option("--covariance", help="gmm: covariance type of the mixtures.")]
PcaOpt = Annotated[int, typer.Option(
    "--pca-dims", min=0, help="gmm/map: project on this many principal components first (0: no projection).")]
GmmSampleOpt = Annotated[int, typer.Option("--gmm-sample", min=0, help="gmm: points fitted per set (0: all).")]
MapSampleOpt = Annotated[int, typer.Option("--map-sample", min=0, help="map: points embedded per set (0: all).")]
PerplexityOpt = Annotated[float, typer.Option("--perplexity", min=2.0, help="map: t-SNE perplexity.")]
ComponentsOpt = Annotated[Optional[int], typer.Option(
    "--components", min=1, help="map: mixture components for the colours (default: chosen by BIC).")]
NoUmapOpt = Annotated[bool, typer.Option("--no-umap", help="map: skip the UMAP view.")]
NoBaselineMapsOpt = Annotated[bool, typer.Option("--no-baseline-maps", help="map: skip the baselines' t-SNE maps.")]
DriftPairsOpt = Annotated[int, typer.Option("--drift-pairs", min=1, help="drift: random pairs of different users.")]
DriftQueriesOpt = Annotated[int, typer.Option(
    "--drift-queries", min=1, help="drift: rows whose nearest other user is searched.")]

DEFAULT_OUT = Path("simcache-report")


def _run(names: list[str], input_path: Path, out: Path, *, report: bool, latest: bool, sample: int, seed: int,
         vector_column: Optional[str], **options: Any) -> None:
    from recvae.errors import UserError
    from simcache.analysis.inputs import prepare_input
    from simcache.analysis.run import AnalysisOptions, run_analyses

    def say(msg: str) -> None:
        typer.echo(msg, err=True)

    inp = prepare_input(input_path, vector_column=vector_column, latest=latest, sample=sample or None, seed=seed)
    info = inp.info
    say(f"input: {info['path']} ({info['rows']:,} rows, dimension {info['dim']})"
        + (f"; latest per user: {info['rows_selected']:,} rows" if latest else ""))
    if info["subsampled"]:
        say(f"subsampled: analysing {info['rows_analysed']:,} of {info['rows_selected']:,} rows (seed {seed}); "
            "--sample 0 analyses all")
    if len(inp.points) < 3:
        raise UserError(f"{input_path}: {len(inp.points)} rows selected; the analyses need at least 3")
    if "drift" in names and len(names) == 1 and not inp.has_users:
        raise UserError(f"{input_path}: drift needs a trace with a user_id column (several embeddings per user)")
    for key in ("gmm_sample", "map_sample"):
        if key in options and options[key] == 0:
            options[key] = None
    for key in ("baseline_center", "covariance"):
        if key in options and isinstance(options[key], Enum):
            options[key] = options[key].value
    opts = AnalysisOptions(seed=seed, **options)
    if opts.k_min >= opts.k_max:
        raise UserError(f"--k-min ({opts.k_min}) must be smaller than --k-max ({opts.k_max})")
    try:
        run_analyses(inp, names, out, opts, report=report, log=say)
    except ValueError as exc:  # the analyses' documented argument checks (e.g. too few points for k)
        raise UserError(str(exc)) from None
    typer.echo(str(out / "report.md") if report else str(out))


def register(app: CommandGroup) -> None:
    """Add the ``analyze`` group to ``app``."""
    group = CommandGroup(name="analyze", help="What metric space do the embeddings live in? Each analysis writes "
                         "a PNG and a JSON beside two synthetic baselines (uniform ball, isotropic Gaussian).")
    app.add_typer(group, name="analyze")

    @group.command("norms")
    def norms_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                  sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                  baseline_center: CenterOpt = BaselineCenter.mean, bins: BinsOpt = 60) -> None:
        """L2 norms: min/max/quantiles and histogram."""
        _run(["norms"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, bins=bins)

    @group.command("balls")
    def balls_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                  sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                  baseline_center: CenterOpt = BaselineCenter.mean, centers: CentersOpt = 20,
                  bins: BinsOpt = 60) -> None:
        """Distances from random centres and the number of points inside a growing ball."""
        _run(["balls"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, centers=centers, bins=bins)

    @group.command("knn-radius")
    def knn_radius_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                       sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                       baseline_center: CenterOpt = BaselineCenter.mean, k_min: KMinOpt = 5, k_max: KMaxOpt = 20,
                       k_mle: KMleOpt = 20) -> None:
        """Intrinsic dimension: log R(k) = (1/d) log k + c, Levina-Bickel MLE and TwoNN."""
        _run(["knn-radius"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, k_min=k_min, k_max=k_max, k_mle=k_mle)

    @group.command("angles")
    def angles_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                   sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                   baseline_center: CenterOpt = BaselineCenter.mean, angle_pairs: AnglePairsOpt = 20_000,
                   center_angles: CenterAnglesOpt = False) -> None:
        """Angles to the coordinate axes and between random pairs, against the isotropic density h(θ)."""
        _run(["angles"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, angle_pairs=angle_pairs,
             center_angles=center_angles)

    @group.command("projections")
    def projections_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                        sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                        baseline_center: CenterOpt = BaselineCenter.mean, projection_pairs: ProjPairsOpt = 6) -> None:
        """Scatter plots of random pairs of coordinates, and the covariance spectrum."""
        _run(["projections"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, projection_pairs=projection_pairs)

    @group.command("gmm")
    def gmm_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                baseline_center: CenterOpt = BaselineCenter.mean, max_components: MaxKOpt = 8,
                covariance: CovOpt = Covariance.full, pca_dims: PcaOpt = 50, gmm_sample: GmmSampleOpt = 10_000) -> None:
        """Gaussian mixtures with 1..K components: BIC/AIC curves and the chosen K."""
        _run(["gmm"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, max_components=max_components,
             covariance=covariance, pca_dims=pca_dims, gmm_sample=gmm_sample)

    @group.command("map")
    def map_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                baseline_center: CenterOpt = BaselineCenter.mean, map_sample: MapSampleOpt = 5_000,
                perplexity: PerplexityOpt = 30.0, components: ComponentsOpt = None, max_components: MaxKOpt = 8,
                covariance: CovOpt = Covariance.full, pca_dims: PcaOpt = 50, no_umap: NoUmapOpt = False,
                no_baseline_maps: NoBaselineMapsOpt = False, threads: ThreadsOpt = None) -> None:
        """2-D t-SNE (and UMAP, if installed) views coloured by Gaussian-mixture component."""
        _run(["map"], input, out, report=False, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, map_sample=map_sample,
             perplexity=perplexity, components=components, max_components=max_components, covariance=covariance,
             pca_dims=pca_dims, umap=not no_umap, baseline_maps=not no_baseline_maps, threads=threads)

    @group.command("drift")
    def drift_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, seed: SeedOpt = 0,
                  vector_column: VectorColumnOpt = None, baseline_center: CenterOpt = BaselineCenter.mean,
                  drift_pairs: DriftPairsOpt = 200_000, drift_queries: DriftQueriesOpt = 2_000,
                  sample: SampleOpt = 20_000, bins: BinsOpt = 60) -> None:
        """Drift between consecutive embeddings of a user, against distances between users (uses every row;
        --sample only sizes the baselines)."""
        _run(["drift"], input, out, report=False, latest=False, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, drift_pairs=drift_pairs,
             drift_queries=drift_queries, bins=bins)

    @group.command("all")
    def all_cmd(input: InputArg, out: OutOpt = DEFAULT_OUT, latest_per_user: LatestOpt = False,
                sample: SampleOpt = 20_000, seed: SeedOpt = 0, vector_column: VectorColumnOpt = None,
                baseline_center: CenterOpt = BaselineCenter.mean, bins: BinsOpt = 60, centers: CentersOpt = 20,
                k_min: KMinOpt = 5, k_max: KMaxOpt = 20, k_mle: KMleOpt = 20, angle_pairs: AnglePairsOpt = 20_000,
                center_angles: CenterAnglesOpt = False, projection_pairs: ProjPairsOpt = 6,
                max_components: MaxKOpt = 8, covariance: CovOpt = Covariance.full, pca_dims: PcaOpt = 50,
                gmm_sample: GmmSampleOpt = 10_000, map_sample: MapSampleOpt = 5_000,
                perplexity: PerplexityOpt = 30.0, components: ComponentsOpt = None, no_umap: NoUmapOpt = False,
                no_baseline_maps: NoBaselineMapsOpt = False, drift_pairs: DriftPairsOpt = 200_000,
                drift_queries: DriftQueriesOpt = 2_000, threads: ThreadsOpt = None) -> None:
        """Run every analysis and write report.md linking the figures (drift uses every row of the trace)."""
        from simcache.analysis import ANALYSIS_NAMES

        _run(list(ANALYSIS_NAMES), input, out, report=True, latest=latest_per_user, sample=sample, seed=seed,
             vector_column=vector_column, baseline_center=baseline_center, bins=bins, centers=centers,
             k_min=k_min, k_max=k_max, k_mle=k_mle, angle_pairs=angle_pairs, center_angles=center_angles,
             projection_pairs=projection_pairs, max_components=max_components, covariance=covariance,
             pca_dims=pca_dims, gmm_sample=gmm_sample, map_sample=map_sample, perplexity=perplexity,
             components=components, umap=not no_umap, baseline_maps=not no_baseline_maps,
             drift_pairs=drift_pairs, drift_queries=drift_queries, threads=threads)
