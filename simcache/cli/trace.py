"""``simcache build-trace DATASET`` and ``simcache trace info TRACE``."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from simcache.cli.common import CommandGroup
from simcache.cli.data import (
    DataDirOpt,
    DataSeedOpt,
    DatasetArg,
    HeldoutOpt,
    MeanItemsOpt,
    MinItemsOpt,
    MinUsersOpt,
    NClustersOpt,
    NItemsOpt,
    NUsersOpt,
    ThresholdOpt,
)


class Clock(str, Enum):
    time = "time"
    file_order = "file-order"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _parse_users(value: str | None) -> object:
    """``--users``: split names, a sample size, raw ids (comma-separated), or @FILE of ids."""
    if value is None:
        return None
    v = value.strip()
    if v.startswith("@"):
        from recvae.errors import UserError

        path = Path(v[1:])
        if not path.is_file():
            raise UserError(f"--users: {path}: no such file")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if v.isdigit():
        return int(v)
    return v


def build_trace_cmd(
    dataset: DatasetArg,
    data_dir: DataDirOpt = None,
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="Checkpoint to embed with. Without it, train one with the dataset's "
        "defaults, or reuse a cached one trained on the same data and settings.")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Trace file to write (default: a file in traces/ named after the dataset, model, "
    "dimension and top-k).")] = None,
    min_history: Annotated[int, typer.Option(
        "--min-history", help="Users with fewer interactions are embedded once, on everything.")] = 50,
    initial_fraction: Annotated[float, typer.Option(
        "--initial-fraction", help="Share of the history (in time order) in a user's first embedding.")] = 0.8,
    step: Annotated[int, typer.Option("--step", help="One more embedding after every STEP further interactions.")] = 10,
    topk: Annotated[int, typer.Option(
        "--topk", help="Recommended items stored per embedding (prefix items excluded); 0 = none.")] = 100,
    no_topk: Annotated[bool, typer.Option("--no-topk", help="Store no top-k lists (same as --topk 0).")] = False,
    users: Annotated[Optional[str], typer.Option(
        "--users", help="Restrict the users: split names (train,validation,test), a number N "
        "(a random sample of N users, by --seed), comma-separated raw ids, or @FILE with one id per line.")] = None,
    device: Annotated[Device, typer.Option("--device", help="Where to compute.")] = Device.auto,
    seed: Annotated[int, typer.Option("--seed", help="Seed for training (without --model) and for --users N.")] = 0,
    clock: Annotated[Clock, typer.Option(
        "--clock", help="time: order by timestamps. file-order: row position in the raw file as a "
        "synthetic clock (for datasets without timestamps, such as msd).")] = Clock.time,
    epochs: Annotated[Optional[int], typer.Option(
        "--epochs", help="Training epochs when a model has to be trained (default: per dataset).")] = None,
    heldout_users: HeldoutOpt = None,
    min_items_per_user: MinItemsOpt = None,
    min_users_per_item: MinUsersOpt = None,
    threshold: ThresholdOpt = None,
    n_users: NUsersOpt = None,
    n_items: NItemsOpt = None,
    n_clusters: NClustersOpt = None,
    mean_items: MeanItemsOpt = None,
    data_seed: DataSeedOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    model_type: Annotated[str, typer.Option(
        "--model-type", help="recvae, or a model of `simcache models` (its checkpoint with --model, else trained "
        "or reused with its defaults).")] = "recvae",
    no_catalogue: Annotated[bool, typer.Option(
        "--no-catalogue", help="Do not write the model's item catalogue beside the trace.")] = False,
) -> None:
    """Build a timestamped trace of user embeddings (RecVAE, or --model-type) for DATASET (an Arrow IPC file).

    Each user is embedded on growing prefixes of their time-ordered history; rows are sorted by the time of the newest interaction included. See traces/README.md for the format.
    """
    from recvae.outputs import check_output, clean_leftovers
    from recvae.trace.build import build_trace_stats

    if out is not None:
        check_output(out, kind="file")
        clean_leftovers(out, echo=lambda m: typer.echo(m, err=True))  # what a killed build of it left
    prep = {
        "heldout_users": heldout_users, "min_items_per_user": min_items_per_user,
        "min_users_per_item": min_users_per_item, "threshold": threshold, "n_users": n_users,
        "n_items": n_items, "n_clusters": n_clusters, "mean_items": mean_items, "seed": data_seed,
    }
    stats = build_trace_stats(
        dataset,
        data_dir=data_dir,
        model=model,
        out=out,
        min_history=min_history,
        initial_fraction=initial_fraction,
        step=step,
        topk=0 if no_topk else topk,
        users=_parse_users(users),
        device=device.value,
        seed=seed,
        clock=clock.value,
        progress=not quiet,
        prepare_params={k: v for k, v in prep.items() if v is not None},
        train_overrides={"epochs": epochs} if epochs is not None else None,
        model_type=model_type,
        catalogue=not no_catalogue,
    )
    typer.echo(
        f"wrote {stats.path}: {stats.rows:,} embeddings of {stats.users:,} users "
        f"(dim {stats.dim}, top-{stats.topk or 'none'}) in {stats.seconds_total:.1f} s; "
        f"embedding {stats.embeddings_per_second:,.0f}/s on {stats.device}"
    )


def info_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace file (.arrow), or any request file replay reads.", show_default=False)],
    sample: Annotated[int, typer.Option("--sample", help="Requests sampled for nearest-neighbour distances.")] = 1000,
    reference: Annotated[int, typer.Option(
        "--reference", help="Search the nearest neighbours among at most this many rows (sampled beyond).")] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Only verify the file's integrity: every record batch and the metadata against the "
        "checksums the trace records (OK, or one error line naming the corrupt part).")] = False,
) -> None:
    """Rows, users, time span, embeddings per user, norms and distance scales (to choose a radius)."""
    from recvae.errors import UserError
    from simcache.trace.info import trace_info

    if sample < 1 or reference < 1:
        raise UserError("--sample and --reference must be >= 1")
    if verify:
        from recvae.trace.integrity import verify_trace

        typer.echo(verify_trace(trace).message())
        return
    info = trace_info(trace, sample=sample, reference=reference, seed=seed)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        typer.echo(info.format())


def register(app: CommandGroup) -> None:
    """Add ``build-trace`` and the ``trace`` group to ``app``."""
    app.command("build-trace")(build_trace_cmd)
    trace_app = CommandGroup(name="trace", help="Inspect traces.")
    app.add_typer(trace_app, name="trace")
    trace_app.command("info")(info_cmd)
