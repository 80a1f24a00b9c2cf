"""`simcache demo` (the whole pipeline on an embedded default) and `simcache version`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from recvae import __version__
from simcache.cli.common import CommandGroup


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to create (a reused one is refused unless --overwrite).")] = Path(
        "simcache-report"
    ),
    dataset: Annotated[str, typer.Option(help="Dataset name; the default needs no download.")] = "synthetic",
    data_dir: Annotated[
        Optional[Path], typer.Option("--data-dir", help="Folder with the dataset's raw files (real datasets).")
    ] = None,
    users: Annotated[Optional[int], typer.Option(help="Synthetic users (default 2,000).")] = None,
    items: Annotated[Optional[int], typer.Option(help="Synthetic items (default 1,000).")] = None,
    epochs: Annotated[
        Optional[int], typer.Option(help="Training epochs (default: 10 for synthetic, else the dataset's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for data, training, replay and analysis.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    jobs: Annotated[Optional[int], typer.Option(help="Parallel replay processes (default: up to 4).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the report already in --out.")] = False,
) -> None:
    """Run the whole pipeline (data, RecVAE, trace, cache sweep, analysis) and write a report.

    With no options: the embedded synthetic dataset, CPU-friendly sizes, a few minutes on 2 cores.
    """
    from simcache.demo import run_demo

    result = run_demo(
        out, dataset=dataset, data_dir=data_dir, n_users=users, n_items=items, epochs=epochs,
        seed=seed, device=device, jobs=jobs, overwrite=overwrite, echo=typer.echo,
    )
    typer.echo("")
    typer.echo(result.summary_table())
    typer.echo(f"\nreport: {result.out / 'README.md'}")


def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


def register(app: CommandGroup) -> None:
    """Add ``demo`` and ``version`` to ``app``."""
    app.command("demo")(demo)
    app.command("version")(version)
