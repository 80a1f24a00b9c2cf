"""``simcache catalogue info CATALOGUE [--requests FILE]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from simcache.cli.common import CommandGroup


def info(
    catalogue: Path,
    requests: Path | None = None,
    *,
    k: int = 10,
    sample: int = 1000,
    seed: int = 0,
    vector_column: str | None = None,
    id_column: str | None = None,
) -> dict:
    """The ``catalogue info`` numbers as a dict (see :mod:`simcache.objects.info`)."""
    from recvae.errors import UserError
    from simcache.objects.catalogue import load_catalogue
    from simcache.objects.info import catalogue_info

    if k < 1 or sample < 1:
        raise UserError("--k and --sample must be >= 1")
    cat = load_catalogue(catalogue, vector_column=vector_column, id_column=id_column)
    x = None
    if requests is not None:
        from simcache.trace.io import load_requests

        x = load_requests(requests, expect_dim=cat.dim).vectors
    return catalogue_info(cat, x, k=k, sample=sample, seed=seed, path=str(catalogue))


def register(app: CommandGroup) -> None:
    """Add the ``catalogue`` group to ``app``."""
    group = CommandGroup(name="catalogue", help="Inspect object catalogues (for object caches).")
    app.add_typer(group, name="catalogue")

    @group.command("info")
    def info_cmd(
        catalogue: Annotated[Path, typer.Argument(help="Catalogue file: simcache catalogue (.arrow), .npy, Arrow or Parquet with a vector column.", show_default=False)],
        requests: Annotated[Optional[Path], typer.Option("--requests", help="Trace or request file: distance scales from its requests to the objects.")] = None,
        k: Annotated[int, typer.Option("--k", help="Answer size whose k-th nearest object is reported.")] = 10,
        sample: Annotated[int, typer.Option("--sample", help="Requests (or objects) sampled for the distance scales.")] = 1000,
        seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
        vector_column: Annotated[Optional[str], typer.Option("--vector-column", help="Vector column of a generic Arrow/Parquet file.")] = None,
        id_column: Annotated[Optional[str], typer.Option("--id-column", help="Id column of a generic Arrow/Parquet file.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    ) -> None:
        """Size, dimension, norms and distance scales between requests and objects (to choose c_f and a radius)."""
        result = info(catalogue, requests, k=k, sample=sample, seed=seed, vector_column=vector_column,
                      id_column=id_column)  # fmt: skip
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
        else:
            typer.echo(result.format())
