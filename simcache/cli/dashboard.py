"""``simcache dashboard PATH...``: explore traces, sweeps, replays and analyses in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from simcache.cli.common import CommandGroup


def dashboard(
    paths: Annotated[list[Path], typer.Argument(
        help="Traces, sweep folders, replay folders (replay --out), analysis folders or demo report folders; "
             "each is searched for what it holds.", show_default=False)],
    port: Annotated[Optional[int], typer.Option(
        "--port", help="Port on 127.0.0.1 (default: a free one).", show_default=False)] = None,
) -> None:
    """Start a local Streamlit dashboard (pages Trace, Sweep, Replay, Models) and print its URL.

    Needs the optional dashboard extra. The server listens on 127.0.0.1 only.
    """
    from simcache.dashboard.server import serve

    serve(list(paths), port=port, echo=typer.echo)


def register(app: CommandGroup) -> None:
    """Add ``dashboard`` to ``app``."""
    app.command("dashboard")(dashboard)
