"""Root of the ``simcache`` command line.

Each command family lives in its own module with a ``register(app)`` function that adds commands
(or a sub-group built with :class:`~simcache.cli.common.CommandGroup`). Commands import heavy
libraries (torch, faiss) inside their bodies so that ``--help`` stays instant.
"""

from __future__ import annotations

from simcache.cli import analyze, catalogue, data, demo, model, replay, trace
from simcache.cli.common import CommandGroup

app = CommandGroup(
    name="simcache",
    help="RecVAE embedding traces and similarity-cache simulation.",
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """RecVAE embedding traces and similarity-cache simulation."""

for _module in (data, model, trace, replay, catalogue, analyze, demo):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
