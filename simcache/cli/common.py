"""Shared CLI plumbing: the command-group class that turns user errors into one line and exit 2.

Both kinds of bad input end the same way: a :class:`UserError` raised by a command, and a usage
error found by click while parsing (an out-of-range number, a bad choice, a missing or unknown
option) print exactly one line, ``error: --option: <problem> (allowed: <range>)`` for a
parameter, and exit with code 2, without Typer's usage box.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import typer
from typer._click import exceptions as click_errors  # Typer's own click: its usage errors
from typer.core import TyperGroup

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


def _bound(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isinf(x)):
        return ""
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def allowed_values(param: Any) -> str:
    """What ``param`` (a Typer parameter) accepts, in words: a range, the choices, or the kind of value."""
    lo, hi = _bound(getattr(param, "min", None)), _bound(getattr(param, "max", None))
    if lo and hi:
        return f"{lo} .. {hi}"
    if lo or hi:
        return f">= {lo}" if lo else f"<= {hi}"
    desc = getattr(param, "type_descriptor", None)
    choices = getattr(desc, "choices", None) if desc is not None else None
    if choices:
        return ", ".join(str(getattr(c, "value", c)) for c in choices)
    annotation = getattr(desc, "annotation", None)
    if getattr(param, "is_flag", False) or annotation is bool:
        return "a flag, no value"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if desc is not None and getattr(desc, "is_path", False):
        return "a path"
    return "see --help"


def _param_label(param: Any) -> str:
    opts = list(getattr(param, "opts", []) or [])
    long = [o for o in opts if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "argument" or not opts:
        return str(getattr(param, "metavar", None) or param.name or "argument").upper()
    return max(long or opts, key=len)


def usage_error_line(exc: Any) -> str:
    """The one line a usage error prints: ``error: --option: <problem> (allowed: <range>)``."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_errors.MissingParameter) and param is not None:
        return f"error: {_param_label(param)}: missing (required; allowed: {allowed_values(param)})"
    if isinstance(exc, click_errors.BadParameter) and param is not None:
        problem = " ".join(str(exc.message).split())
        return f"error: {_param_label(param)}: {problem} (allowed: {allowed_values(param)})"
    if isinstance(exc, click_errors.NoSuchOption):
        near = f"; did you mean {', '.join(sorted(exc.possibilities))}?" if exc.possibilities else ""
        return f"error: {exc.option_name}: no such option{near} (see --help)"
    message = " ".join(exc.format_message().split())
    where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
    return f"error: {where}{message} (see --help)"


def _one_line(exc: Any) -> Exception:
    typer.echo(usage_error_line(exc), err=True)
    return typer.Exit(EXIT_USER_ERROR)


class OneLineUsageGroup(TyperGroup):
    """A click group that prints usage errors of itself and every sub-command as one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:
            raise _one_line(exc) from None


class CommandGroup(typer.Typer):
    """A Typer whose commands all report user errors uniformly; use it for every (sub-)group."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("cls", OneLineUsageGroup)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(report_user_errors(func))
            return func

        return decorator
