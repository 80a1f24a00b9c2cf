"""Usage errors of every command: one line ``error: --option: <problem> (allowed: <range>)``, exit 2.

The cases are generated from the options the Typer app declares (its click command tree), so an
option added later is covered without editing this file: every ranged number gets a value below its
minimum (and above its maximum), every number a word, every choice an unknown name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer

from simcache.cli.app import app
from simcache.cli.common import allowed_values
from tests.faults.conftest import fails_cleanly


def _commands(group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    for name, cmd in sorted(group.commands.items()):
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def _long(param) -> str:
    return max((o for o in param.opts if o.startswith("--")), key=len)


def _cases() -> list[tuple[tuple[str, ...], str, str, str]]:
    """(command path, flag, bad value, what the message must contain) for every declared option.

    An option declared alike in several commands (same flag, same bounds) is tried once, in the
    first command that has it, to keep the suite fast.
    """
    root = typer.main.get_command(app)
    cases = []
    for path, cmd in _commands(root):
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option" or p.is_flag or not any(o.startswith("--") for o in p.opts):
                continue
            flag = _long(p)
            desc = p.type_descriptor
            annotation = getattr(desc, "annotation", None)
            if getattr(p, "min", None) is not None:
                cases.append((path, flag, str(p.min - 1), f">= {p.min:g}"))
            if getattr(p, "max", None) is not None:
                cases.append((path, flag, str(p.max + 1), f"{p.max:g}"))
            if desc.choices:
                cases.append((path, flag, "no-such-choice", allowed_values(p)))
            elif annotation in (int, float) or str(annotation) in ("int | None", "float | None", "typing.Optional[int]",
                                                                   "typing.Optional[float]"):
                cases.append((path, flag, "many", "allowed:"))
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for path, flag, value, needle in cases:
        if (flag, value, needle) not in seen:
            seen.add((flag, value, needle))
            unique.append((path, flag, value, needle))
    return unique


CASES = _cases()


def test_the_cases_cover_the_app():
    """A generator that found nothing would pass vacuously."""
    flags = {flag for _, flag, _, _ in CASES}
    assert len(flags) > 30
    assert {"--bins", "--threads", "--n-users", "--sample", "--capacity", "--perplexity"} <= flags


@pytest.mark.parametrize("path, flag, value, needle", CASES, ids=[f"{' '.join(c[0])} {c[1]}={c[2]}" for c in CASES])
def test_bad_option_value_is_one_line(path, flag, value, needle):
    line = fails_cleanly([*path, flag, value], flag, "(allowed: ", needle)
    assert line.startswith(f"error: {flag}: ")


@pytest.mark.parametrize("args, needles", [
    (["analyze", "norms", "--bins", "2"], ["--bins", ">= 5"]),
    (["analyze", "map", "--threads", "0"], ["--threads", ">= 1"]),
    (["analyze", "norms", "--sample", "-1"], ["--sample", ">= 0"]),
    (["replay", "t.arrow", "--capacity", "x"], ["--capacity", "an integer"]),
    (["replay", "t.arrow"], ["--capacity", "missing"]),
    (["replay"], ["TRACE", "missing"]),
    (["replay", "t.arrow", "-C", "5", "--no-such-option"], ["--no-such-option", "no such option"]),
    (["no-such-command"], ["No such command", "no-such-command"]),
    (["replay", "t.arrow", "-C", "5", "extra", "more"], ["unexpected extra argument"]),
])
def test_explicit_usage_errors(args, needles, tmp_path):
    fails_cleanly(args, *needles, untouched=tmp_path)


def test_help_still_works():
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["replay", "--help"])
    assert res.exit_code == 0 and "--capacity" in res.output
    res = CliRunner().invoke(app, ["data"])  # a group without a command shows its help
    assert "fetch" in res.output and "error:" not in res.output
