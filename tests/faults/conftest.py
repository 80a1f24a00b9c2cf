"""Fault-injection suite: bad input, corrupt files, full or read-only disks, interruptions.

Organised by input kind (one module per kind). Every case asserts the same promise through
:func:`fails_cleanly`: exit code 2, exactly one ``error:`` line that names the file or option,
no traceback text, and no output left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simcache.cli.app import app

REPO = Path(__file__).resolve().parents[2]


def files_under(path: Path) -> list[Path]:
    """Every file and folder under ``path`` (hidden temporary ones included), sorted."""
    return sorted(path.rglob("*")) if path.exists() else []


def fails_cleanly(args: Sequence[str], *needles: str, untouched: Path | None = None) -> str:
    """Run the CLI in-process and assert the bad-input promise; return the error line.

    ``needles`` must all appear in the error line; ``untouched`` is a folder whose contents
    must be the same after the command as before it (nothing written, nothing half-written).
    """
    before = files_under(untouched) if untouched is not None else None
    result = CliRunner().invoke(app, [str(a) for a in args])
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert len([line for line in lines if line.startswith("error: ")]) == 1, err
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    if untouched is not None:
        assert files_under(untouched) == before, "the command left files behind"
    return lines[-1]


def run_process(args: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m simcache.cli`` in a child process (for real exit codes, signals, aborts)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-c", "from simcache.cli.app import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env, **kwargs)  # fmt: skip


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
