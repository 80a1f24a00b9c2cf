"""Every command's ``--help`` shows its texts whole: no markup eaten, no stray " .", no cut-off default.

Typer renders help with Rich, which reads ``[...]`` as markup: a help text ending in
"[default: x]." came out as "... ." with the default gone. The walk covers every command of the
app, so a command added later is checked too.
"""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from simcache.cli.app import app

#: Commands whose help the lead is fixing in simcache/cli/replay.py (square brackets in help texts).
BOX = re.compile(r"[│╭╮╰╯─]+")


def _commands(cmd=None, path: tuple[str, ...] = ()):
    cmd = typer.main.get_command(app) if cmd is None else cmd
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _normal(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


COMMANDS = [pytest.param(path, cmd, id=" ".join(path) or "simcache")
            for path, cmd in _commands()]


def test_the_walk_reaches_every_family():
    paths = {p for p, _ in _commands()}
    for expected in [("replay",), ("sweep",), ("policies",), ("analyze", "all"), ("analyze", "drift"),
                     ("data", "list"), ("trace", "info"), ("build-trace",), ("train",), ("evaluate",), ("demo",)]:
        assert expected in paths


@pytest.mark.parametrize(("path", "cmd"), COMMANDS)
@pytest.mark.parametrize("width", ["80", "200"])
def test_help_text_is_shown_whole(path, cmd, width):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": width})
    assert r.exit_code == 0, r.output
    shown = _normal(r.output)
    assert not re.search(r" \.(\s|$)", shown), f"stray ' .' in: {shown}"
    assert "…" not in shown, "a cell was cut off"
    assert shown.count("[default:") == len(re.findall(r"\[default: [^\[\]]+\]", shown)), "a default is cut off"
    if width == "80":
        return  # narrow: cells wrap side by side, so only the checks above read the text reliably
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    for text in texts:
        assert _normal(text) in shown, f"help text not shown whole: {text!r}"
    for p in cmd.params:
        default = getattr(p.default, "value", p.default)
        shows = getattr(p, "show_default", None) is not False and not getattr(p, "is_flag", False)
        if shows and isinstance(default, (int, float, str)) and not isinstance(default, bool) and default != "":
            assert f"[default: {default}]" in shown, f"{p.name}: default {default!r} not shown"
