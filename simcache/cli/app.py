"""Root of the ``simcache`` command line.

Each command family lives in its own module with a ``register(app)`` function that adds commands
(or a sub-group built with :class:`~simcache.cli.common.CommandGroup`). Commands import heavy
libraries (torch, faiss, streamlit) inside their bodies so that ``--help`` stays quick.
"""

from __future__ import annotations

from simcache.cli import analyze, catalogue, dashboard, data, demo, model, models, replay, trace
from simcache.cli.common import CommandGroup

app = CommandGroup(
    name="simcache",
    help="RecVAE embedding traces and similarity-cache simulation.",
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """RecVAE embedding traces and similarity-cache simulation."""

for _module in (data, model, models, trace, replay, analyze, catalogue, demo, dashboard):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
