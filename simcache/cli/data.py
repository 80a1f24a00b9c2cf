"""``simcache data fetch|prepare|info|list``: datasets, their ingest and the Mult-VAE protocol."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from simcache.cli.common import CommandGroup

DatasetArg = Annotated[str, typer.Argument(help="Dataset name (see `simcache data list`).", show_default=False)]
DataDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--data-dir",
        help="Folder (or file) holding the dataset's raw files as distributed, e.g. an unpacked "
        "ml-100k/ folder, a folder with ratings.csv, a Netflix training_set/ folder. "
        "Without it MovieLens and MSD are downloaded into the cache folder.",
    ),
]
HeldoutOpt = Annotated[Optional[int], typer.Option("--heldout-users", help="Validation users = test users = H (default: per dataset).")]
MinItemsOpt = Annotated[Optional[int], typer.Option("--min-items-per-user", help="Keep users with at least this many positives (default: per dataset).")]
MinUsersOpt = Annotated[Optional[int], typer.Option("--min-users-per-item", help="Keep items with at least this many positives, applied first (default: per dataset).")]
ThresholdOpt = Annotated[Optional[float], typer.Option("--threshold", help="Positives are rows with value > threshold (default: per dataset; MSD: all).")]
NUsersOpt = Annotated[Optional[int], typer.Option("--n-users", help="synthetic only: number of users.")]
NItemsOpt = Annotated[Optional[int], typer.Option("--n-items", help="synthetic only: number of items.")]
NClustersOpt = Annotated[Optional[int], typer.Option("--n-clusters", help="synthetic only: latent taste clusters.")]
MeanItemsOpt = Annotated[Optional[float], typer.Option("--mean-items", help="synthetic only: mean items per user.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="synthetic only: generator seed.")]
#: The generator seed where ``--seed`` already means something else (training, embedding).
DataSeedOpt = Annotated[Optional[int], typer.Option("--data-seed", help="synthetic only: generator seed.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Recompute even when a cached result exists.")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict",
    help="Refuse raw files that need a repair (byte-order mark, blank lines, a last line cut short, "
    "duplicate rows); without it they are repaired and each repair is reported.")]


def generator_params(n_users: int | None, n_items: int | None, n_clusters: int | None, mean_items: float | None,
                     seed: int | None) -> dict:
    """The synthetic generator's options that were given (None: the generator's default)."""
    opts = {"n_users": n_users, "n_items": n_items, "n_clusters": n_clusters, "mean_items": mean_items, "seed": seed}
    return {k: v for k, v in opts.items() if v is not None}


def _n(x: int) -> str:
    return f"{x:,}"


def _sparsity(events: int, users: int, items: int) -> str:
    cells = users * items
    return f"{100.0 * (1 - events / cells):.3f}%" if cells else "n/a"


def _day(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")


def _echo_repairs(manifest: dict) -> None:
    """One line per repair or note recorded when the raw files were parsed."""
    from recvae.data.interactions import repairs_of

    for r in repairs_of(manifest):
        typer.echo(f"repaired: {r.message()}" if r.kind != "unterminated" else f"note: {r.message()}")


def _rows(pairs: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def list_cmd() -> None:
    """List the known datasets with their source and protocol defaults."""
    from recvae.data import dataset_names, get_dataset

    for name in dataset_names():
        s = get_dataset(name)
        h = f"H={s.heldout_users:,}" if s.heldout_users else f"H={s.heldout_fraction:.0%} of users"
        thr = "all rows" if s.threshold is None else f"value > {s.threshold:g}"
        src = s.url or ("generated" if s.format == "synthetic" else "local files only (--data-dir)")
        typer.echo(f"{name:16s} {s.title}\n{'':16s} {src}\n{'':16s} positives: {thr}; "
                   f"min items/user {s.min_items_per_user}, min users/item {s.min_users_per_item}; {h}")


def fetch_cmd(
    dataset: DatasetArg,
    data_dir: DataDirOpt = None,
    n_users: NUsersOpt = None,
    n_items: NItemsOpt = None,
    n_clusters: NClustersOpt = None,
    mean_items: MeanItemsOpt = None,
    seed: SeedOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Download (or read from --data-dir) and ingest DATASET into the cache as Parquet."""
    from recvae.data.interactions import MANIFEST_NAME, PARQUET_NAME, ingest
    from recvae.outputs import check_output
    from recvae.storage import cache_dir
    import json

    check_output(cache_dir(), kind="folder", option="cache folder")
    d = ingest(dataset, data_dir, strict=strict, **generator_params(n_users, n_items, n_clusters, mean_items, seed))
    m = json.loads((d / MANIFEST_NAME).read_text())
    c = m["counts"]
    typer.echo(f"{dataset}: {_n(c['rows'])} interactions, {_n(c['users'])} users, {_n(c['items'])} items")
    _echo_repairs(m)
    typer.echo(f"{d / PARQUET_NAME}")


def prepare_cmd(
    dataset: DatasetArg,
    data_dir: DataDirOpt = None,
    heldout_users: HeldoutOpt = None,
    min_items_per_user: MinItemsOpt = None,
    min_users_per_item: MinUsersOpt = None,
    threshold: ThresholdOpt = None,
    n_users: NUsersOpt = None,
    n_items: NItemsOpt = None,
    n_clusters: NClustersOpt = None,
    mean_items: MeanItemsOpt = None,
    seed: SeedOpt = None,
    force: ForceOpt = False,
    strict: StrictOpt = False,
) -> None:
    """Apply the Mult-VAE strong-generalization protocol to DATASET and cache the result."""
    from recvae.data.preprocess import prepare, prepared_dir
    from recvae.outputs import check_output
    from recvae.storage import cache_dir

    check_output(cache_dir(), kind="folder", option="cache folder")
    p = prepare(
        dataset, data_dir, heldout_users=heldout_users, min_items_per_user=min_items_per_user,
        min_users_per_item=min_users_per_item, threshold=threshold, force=force, strict=strict,
        **generator_params(n_users, n_items, n_clusters, mean_items, seed),
    )
    c = p.manifest["counts"]
    typer.echo(
        f"{dataset}: {_n(c['train_users'])} training users, {_n(c['heldout_users'])} validation and "
        f"{_n(c['heldout_users'])} test users, {_n(c['items'])} items"
    )
    typer.echo(str(prepared_dir(dataset, p.manifest["key"])))
    _echo_repairs(p.manifest)


def info_cmd(
    dataset: DatasetArg,
    data_dir: DataDirOpt = None,
    heldout_users: HeldoutOpt = None,
    min_items_per_user: MinItemsOpt = None,
    min_users_per_item: MinUsersOpt = None,
    threshold: ThresholdOpt = None,
    n_users: NUsersOpt = None,
    n_items: NItemsOpt = None,
    n_clusters: NClustersOpt = None,
    mean_items: MeanItemsOpt = None,
    seed: SeedOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Counts before and after filtering, sparsity, time span (prepares DATASET if needed)."""
    from recvae.data import get_dataset
    from recvae.data.interactions import repairs_of
    from recvae.data.preprocess import prepare, prepared_dir

    spec = get_dataset(dataset)
    p = prepare(
        dataset, data_dir, heldout_users=heldout_users, min_items_per_user=min_items_per_user,
        min_users_per_item=min_users_per_item, threshold=threshold, strict=strict,
        **generator_params(n_users, n_items, n_clusters, mean_items, seed),
    )
    m = p.manifest
    c, prm, src = m["counts"], m["params"], m["source"]
    thr = "all rows" if prm["threshold"] is None else f"value > {prm['threshold']:g}"
    origin = src.get("origin")
    where = src.get("url") or src.get("root") or ""
    if origin == "generated":
        g = m.get("generator") or {}
        where = ", ".join(f"{k}={v}" for k, v in sorted(g.items()))
    pairs = [
        ("dataset", f"{spec.title} ({dataset})"),
        ("source", f"{origin} {where}".strip()),
    ]
    if origin != "generated":
        pairs.append(("files", f"{src['n_files']} file(s), {_n(src['bytes'])} bytes, content digest {src['digest'][:16]}"))
    for label, key in (("raw", "raw"), (f"positive ({thr})", "positive"), ("after filter", "after_filter")):
        x = c[key]
        pairs.append((label, f"{_n(x['events'])} events, {_n(x['users'])} users, {_n(x['items'])} items, "
                             f"sparsity {_sparsity(x['events'], x['users'], x['items'])}"))
    pairs.append(("filters", f"items with >= {prm['min_users_per_item']} users, then users with >= {prm['min_items_per_user']} items"))
    pairs.append(("split", f"{_n(c['train_users'])} train / {_n(c['heldout_users'])} validation / "
                           f"{_n(c['heldout_users'])} test users (seed {prm['seed']})"))
    pairs.append(("vocabulary", f"{_n(c['items'])} items (training users' items); fingerprint {m['vocabulary_fingerprint']}"))
    pairs.append(("train", f"{_n(c['train_events'])} events, sparsity {_sparsity(c['train_events'], c['train_users'], c['items'])}"))
    for split, label in (("val", "validation"), ("test", "test")):
        pairs.append((label, f"{_n(c[split + '_tr_events'])} fold-in + {_n(c[split + '_te_events'])} held-out events; "
                             f"{_n(c[split + '_dropped_unseen_rows'])} rows with unseen items dropped; "
                             f"{_n(c[split + '_users_without_heldout'])} users with < 5 items (no held-out)"))
    v = m.get("value") or {}
    if v:
        hist = v.get("histogram")
        vs = f"{v['min']:g} .. {v['max']:g}"
        if hist:
            vs += "  (" + ", ".join(f"{k}: {_n(n)}" for k, n in hist.items()) + ")"
        pairs.append(("values", vs))
    t = m.get("time")
    if m["has_timestamps"] and t:
        days = (t["max"] - t["min"]) / 86_400
        pairs.append(("time span", f"{_day(t['min'])} .. {_day(t['max'])} UTC ({days:,.0f} days; resolution: {m['time_resolution']})"))
    else:
        pairs.append(("time span", "no timestamps (file order only)"))
    for r in repairs_of(m):
        pairs.append(("repaired" if r.kind != "unterminated" else "note", r.message()))
    pairs.append(("cache", str(prepared_dir(dataset, m["key"]))))
    typer.echo(_rows(pairs))


def register(app: CommandGroup) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app = CommandGroup(name="data", help="Datasets: download, ingest, Mult-VAE preprocessing, summaries.")
    app.add_typer(data_app, name="data")
    data_app.command("list")(list_cmd)
    data_app.command("fetch")(fetch_cmd)
    data_app.command("prepare")(prepare_cmd)
    data_app.command("info")(info_cmd)
