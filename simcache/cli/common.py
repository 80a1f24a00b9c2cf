"""Shared CLI plumbing: the command-group class that turns user errors into one line and exit 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from recvae.errors import UserError

EXIT_USER_ERROR = 2


def report_user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so a :class:`UserError` (or a write failure due to the place: full disk,
    read-only file system, no permission) prints ``error: <message>`` and exits with code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except OSError as exc:
            from recvae.outputs import describe_os_error

            message = describe_os_error(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


class CommandGroup(typer.Typer):
    """A Typer whose commands all report user errors uniformly; use it for every (sub-)group."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(report_user_errors(func))
            return func

        return decorator
