"""CLI commands (to be filled in)."""

from simcache.cli.common import CommandGroup


def register(app: CommandGroup) -> None:
    """Add this module's commands to ``app``."""
