"""`simcache version` and (later) `simcache demo`."""

import typer

from recvae import __version__
from simcache.cli.common import CommandGroup


def register(app: CommandGroup) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    def version() -> None:
        """Print the package version."""
        typer.echo(__version__)
