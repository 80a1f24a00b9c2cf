"""The README's two commands are the ones the repository's scripts and CI actually run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _sh_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_quick_start_and_test_commands_are_the_first_two_blocks() -> None:
    blocks = _sh_blocks()
    assert blocks[0] == "bash scripts/setup.sh && .venv/bin/simcache demo"
    assert blocks[1] == "bash scripts/setup.sh && .venv/bin/python -m pytest"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert _sh_blocks()[1] in ci


def test_console_script_runs_demo_help() -> None:
    script = Path(sys.executable).parent / "simcache"
    if not script.exists():
        pytest.skip("the simcache console script is not installed next to this Python")
    out = subprocess.run([str(script), "demo", "--help"], capture_output=True, text=True, check=True)
    assert "--out" in out.stdout and "synthetic" in out.stdout
