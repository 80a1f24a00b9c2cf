"""Output paths that cannot take the output: refused before any work, one line, nothing written.

Each case runs over every command that writes (the ``COMMANDS`` table: a new command is one row).
Read-only and full file systems are tiny ``tmpfs`` mounts made by the test, which needs root
(the tests skip with the reason otherwise); root ignores permission bits, so a read-only folder
is a read-only mount rather than a ``chmod``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from typer.testing import CliRunner

from recvae import outputs
from simcache.cli.app import app
from simcache.trace.io import write_requests
from tests.faults.conftest import fails_cleanly, files_under


@dataclass(frozen=True)
class Command:
    """One command that writes an output: its arguments for an output path, and what it writes."""

    name: str
    args: Callable[[Path, Path], list[str]]  # (trace, out) -> arguments
    kind: str  # "file" or "folder"


SYNTH = ["synthetic", "--n-users", "120", "--n-items", "60"]
COMMANDS = [
    Command("train", lambda t, o: ["train", *SYNTH, "--epochs", "1", "--no-progress", "--out", o], "folder"),
    Command("build-trace", lambda t, o: ["build-trace", *SYNTH, "--epochs", "1", "--quiet", "--out", o], "file"),
    Command("replay", lambda t, o: ["replay", t, "--capacity", "10", "--radius", "0.1", "--out", o], "folder"),
    Command("sweep", lambda t, o: ["sweep", t, "--capacity", "10", "--jobs", "1", "--out", o], "folder"),
    Command("analyze all", lambda t, o: ["analyze", "all", t, "--no-progress", "--out", o], "folder"),
    Command("analyze gmm", lambda t, o: ["analyze", "gmm", t, "--no-progress", "--out", o], "folder"),
    Command("demo", lambda t, o: ["demo", "--users", "60", "--items", "40", "--epochs", "1", "--out", o], "folder"),
]
IDS = [c.name for c in COMMANDS]


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    users = np.array([f"u{u}" for u in rng.integers(0, 30, n)], dtype=object)
    return write_requests(tmp_path_factory.mktemp("trace") / "t.arrow", vectors,
                          timestamp=np.arange(n, dtype=np.int64), user_id=users)  # fmt: skip


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False, fill: int = 0) -> Iterator[Path]:
    """A ``tmpfs`` of ``size`` mounted at ``path`` (``fill`` bytes taken first), optionally read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (read-only and full file systems are mounts)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        if fill:
            (path / "filler").write_bytes(b"\0" * fill)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("cmd", COMMANDS, ids=IDS)
def test_out_of_the_wrong_kind(cmd: Command, trace: Path, tmp_path: Path) -> None:
    """A file where a folder is expected, or a folder where a file is."""
    out = tmp_path / "out"
    if cmd.kind == "folder":
        out.write_text("a file\n")
        fails_cleanly(cmd.args(trace, out), "--out", str(out), "is an existing file", untouched=tmp_path)
        assert out.read_text() == "a file\n"
    else:
        out.mkdir()
        fails_cleanly(cmd.args(trace, out), "--out", str(out), "is an existing folder", untouched=tmp_path)


@pytest.mark.parametrize("cmd", COMMANDS, ids=IDS)
def test_out_under_a_file(cmd: Command, trace: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    out = tmp_path / "plain" / "sub" / ("t.arrow" if cmd.kind == "file" else "out")
    fails_cleanly(cmd.args(trace, out), "--out", str(out), "is a file", untouched=tmp_path)


@pytest.mark.parametrize("cmd", COMMANDS, ids=IDS)
def test_out_on_a_read_only_file_system(cmd: Command, trace: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        out = ro / ("t.arrow" if cmd.kind == "file" else "out")
        fails_cleanly(cmd.args(trace, out), "--out", str(out), "read-only file system", untouched=tmp_path)


@pytest.mark.parametrize("cmd", COMMANDS, ids=IDS)
def test_out_in_an_existing_read_only_folder(cmd: Command, trace: Path, tmp_path: Path) -> None:
    """The folder exists (on a read-only mount): nothing can be written inside or beside it."""
    if cmd.kind == "file":
        pytest.skip("a file output has no folder of its own")
    mount = tmp_path / "m"
    with tmpfs(mount, "1m") as m:
        (m / "out").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(m)], check=True)
        fails_cleanly(cmd.args(trace, m / "out"), "--out", "read-only file system", untouched=tmp_path)


@pytest.mark.parametrize("cmd", COMMANDS, ids=IDS)
def test_out_on_a_full_disk(cmd: Command, trace: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "64k") as full:
        out = full / "sub" / ("t.arrow" if cmd.kind == "file" else "out")
        fails_cleanly(cmd.args(trace, out), "--out", str(out), "not enough free space", untouched=tmp_path)


def test_permissions_as_a_plain_user(trace: Path, tmp_path: Path) -> None:
    """A folder without write permission (``chmod``), for non-root users; root ignores the bits."""
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits (the read-only mount tests cover this case)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        fails_cleanly(["replay", trace, "--capacity", "10", "--out", locked / "out"], "--out", "permission denied",
                      untouched=tmp_path)  # fmt: skip
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("command", ["fetch", "prepare"])
@pytest.mark.parametrize("case", ["read-only", "full"])
def test_data_commands_check_the_cache_folder(command: str, case: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """``data fetch`` / ``data prepare`` write into the cache folder: checked like an ``--out``."""
    with tmpfs(tmp_path / "m", "64k", read_only=case == "read-only") as m:
        cache = m if case == "full" else m / "cache"
        monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(cache))
        needle = "not enough free space" if case == "full" else "read-only file system"
        fails_cleanly(["data", command, "synthetic", "--n-users", "50"], needle, str(cache), untouched=m)


# ----------------------------------------------------------------------------------------------
# The disk fills during the work
# ----------------------------------------------------------------------------------------------
def fails_while_writing(args: list, *needles: str, untouched: Path | None) -> str:
    """Like ``fails_cleanly`` for a failure after the work started (its progress lines allowed
    before the one ``error:`` line, which comes last)."""
    before = files_under(untouched) if untouched is not None else None
    result = CliRunner().invoke(app, [str(a) for a in args])
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    if untouched is not None:
        assert files_under(untouched) == before, "the command left files behind"
    return lines[-1]


WRITERS = {  # name: (arguments, resumable: its complete files stay for --resume)
    "replay --log": (lambda t, o: ["replay", t, "--capacity", "10", "--radius", "0.1", "--log", "--out", o], False),
    "analyze norms": (lambda t, o: ["analyze", "norms", t, "--no-progress", "--out", o], False),
    "sweep": (lambda t, o: ["sweep", t, "--capacity", "10", "--jobs", "1", "--out", o], True),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_disk_full_during_the_work(name: str, trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check passes (its free-space floor lowered) but the output does not fit: one line
    naming the output, and no temporary file left (nothing at all unless the command resumes)."""
    args, resumable = WRITERS[name]
    monkeypatch.setattr(outputs, "MIN_FREE_BYTES", 0)
    with tmpfs(tmp_path / "m", "8k") as m:
        out = m / "out"
        line = fails_while_writing(args(trace, out), "no space left on device", str(out),
                                   untouched=None if resumable else m)  # fmt: skip
        assert ".tmp" not in line, line
        assert outputs.find_leftovers(out) == []
        assert not list(m.glob(".*"))


# ----------------------------------------------------------------------------------------------
# demo: options checked before training, the report folder swapped in whole
# ----------------------------------------------------------------------------------------------
def test_demo_checks_jobs_before_any_work(tmp_path: Path) -> None:
    fails_cleanly(["demo", "--jobs", "0", "--out", tmp_path / "report"], "--jobs", untouched=tmp_path)
