"""Result folders owned by one run: the lock, leftovers of killed runs, refusing and clearing reuse."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from recvae.errors import UserError
from recvae.outputs import (
    FolderLock,
    check_output,
    clean_leftovers,
    clear,
    describe_os_error,
    final_name,
    find_leftovers,
    fresh_folder,
    lock_path,
    owned_folder,
)
from recvae.storage import HOST, atomic_path


def dead_pid() -> int:
    """The PID of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_lock_is_refused_naming_the_owner(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, "simcache sweep"):
        rec = json.loads(lock_path(out).read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == HOST
        with pytest.raises(UserError, match=rf"in use by another run \(simcache sweep, pid {os.getpid()} on {HOST}"):
            FolderLock(out, "simcache sweep").acquire()
    assert not lock_path(out).exists()
    with FolderLock(out):  # free again
        pass


def test_a_lock_held_by_another_process_is_refused(tmp_path):
    out = tmp_path / "out"
    code = ("import sys, time; from recvae.outputs import FolderLock; l = FolderLock(sys.argv[1], 'other'); "
            "l.acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=f"other, pid {proc.pid}"):
            FolderLock(out).acquire()
        proc.kill()
        proc.wait()
        said = []
        with FolderLock(out, echo=said.append):  # the kernel dropped the dead owner's lock
            pass
        assert said and f"pid {proc.pid}" in said[0] and "no longer running" in said[0]
    finally:
        proc.kill()


def test_stale_lock_file_is_taken_over(tmp_path):
    out = tmp_path / "out"
    lock_path(out).write_text(json.dumps({"pid": dead_pid(), "host": HOST, "command": "simcache sweep"}))
    said = []
    with FolderLock(out, echo=said.append):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert "taking over" in said[0]


def test_temporary_names_carry_their_writer(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        assert tmp.name.startswith(f".a.json.p{os.getpid()}@{HOST}.") and tmp.name.endswith(".tmp")
        (lo,) = find_leftovers(tmp_path)
        assert lo.pid == os.getpid() and lo.host == HOST and not lo.owner_dead


def test_leftovers_of_dead_writers_are_listed_and_removed(tmp_path):
    out = tmp_path / "out"
    (out / "points").mkdir(parents=True)
    dead = dead_pid()
    mine = out / "points" / f".x.json.p{os.getpid()}@{HOST}.abc123.tmp"
    gone = [out / "points" / f".y.json.p{dead}@{HOST}.k2j4_x.tmp", out / f".results.csv.p{dead}@{HOST}.zz.tmp",
            tmp_path / f".out.p{dead}@{HOST}.q1.tmp"]  # the folder's own swap-in temporary
    other_host = out / f".z.json.p{dead}@elsewhere-7.a1.tmp"
    for p in [mine, other_host, *gone]:
        p.write_text("partial")
    (tmp_path / f".out.p{dead}@{HOST}.q1.tmp").unlink()
    (tmp_path / f".out.p{dead}@{HOST}.q1.tmp").mkdir()
    (out / "kept.json").write_text("{}")
    said = []
    removed = clean_leftovers(out, said.append)
    assert sorted(lo.path for lo in removed) == sorted(gone)
    assert mine.exists() and other_host.exists() and (out / "kept.json").exists()
    assert not any(p.exists() for p in gone)
    assert "removed 3 temporary file(s) left by killed runs" in said[0]
    assert "elsewhere-7" in said[1]


def test_clear_refuses_foreign_files_and_removes_nothing(tmp_path):
    (tmp_path / "points").mkdir()
    (tmp_path / "points" / "a.json").write_text("{}")
    (tmp_path / "results.csv").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"does not write \(notes.txt\)"):
        clear(tmp_path, ["results.csv", "points/*.json"])
    assert (tmp_path / "points" / "a.json").exists()
    (tmp_path / "notes.txt").unlink()
    assert clear(tmp_path, ["results.csv", "points/*.json"]) == ["points/a.json", "results.csv"]
    assert list(tmp_path.iterdir()) == []


def test_fresh_folder_swaps_in_whole_or_keeps_the_old_one(tmp_path):
    out = tmp_path / "out"
    with fresh_folder(out, known=["*.json"], overwrite=False, command="t") as tmp:
        (tmp / "a.json").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]
    with pytest.raises(UserError, match="already holds a previous result; pass --overwrite"):
        with fresh_folder(out, known=["*.json"], overwrite=False, command="t"):
            pass
    with pytest.raises(KeyboardInterrupt):
        with fresh_folder(out, known=["*.json"], overwrite=True, command="t") as tmp:
            (tmp / "b.json").write_text("2")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]  # interrupted: the old result, unmixed
    with fresh_folder(out, known=["*.json"], overwrite=True, command="t") as tmp:
        (tmp / "b.json").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock, no temporaries


def test_fresh_folder_overwrite_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="does not write"):
        with fresh_folder(tmp_path / "home", known=["*.json"], overwrite=True, command="t"):
            pass
    assert (tmp_path / "home" / "thesis.tex").exists()


def test_owned_folder_cleans_before_the_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".r.json.p{dead_pid()}@{HOST}.a.tmp"
    stale.write_text("")
    with owned_folder(out, command="t") as folder:
        assert folder == out and not stale.exists()
        assert lock_path(out).exists()
    assert not lock_path(out).exists()


def test_check_output_refuses_the_wrong_kind_and_creates_nothing(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="is an existing file"):
        check_output(tmp_path / "f", kind="folder")
    with pytest.raises(UserError, match="is an existing folder"):
        check_output(tmp_path / "d", kind="file")
    with pytest.raises(UserError, match="is a file, so nothing"):
        check_output(tmp_path / "f" / "a" / "b", kind="folder")
    with pytest.raises(UserError, match="not enough free space"):
        check_output(tmp_path / "new" / "out", kind="folder", estimate_bytes=1 << 62)
    assert check_output(tmp_path / "new" / "out", kind="folder") == tmp_path / "new" / "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


def test_write_failures_name_the_destination_not_the_temporary_file(tmp_path):
    tmp = tmp_path / f".report.p123@{HOST}.abc123.tmp" / "gmm.png"
    line = describe_os_error(OSError(errno.ENOSPC, "No space left on device", str(tmp)))
    assert line == f"no space left on device while writing {tmp_path / 'report' / 'gmm.png'}; " \
                   "the unfinished output was removed"
    assert final_name(tmp) == str(tmp_path / "report" / "gmm.png")
    arrow_like = OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert describe_os_error(arrow_like).startswith("no space left on device while writing the output")
    assert describe_os_error(OSError(errno.ENOENT, "No such file or directory", "x")) is None


def test_atomic_path_names_the_destination_in_a_write_failure(tmp_path):
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "out.bin"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.filename == str(tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_messages_name_the_final_folder_not_the_temporary_one(tmp_path):
    """A run building its result under a temporary name reports the paths it will have."""
    from recvae.outputs import final_names_in
    from recvae.storage import atomic_path

    with atomic_path(tmp_path / "report", is_dir=True) as tmp:
        line = f"wrote {tmp / 'norms.png'} and {tmp / 'norms.json'} in 0.1 s"
        assert tmp.name != "report" and tmp.name in line
    assert final_names_in(line) == f"wrote {tmp_path / 'report' / 'norms.png'} and {tmp_path / 'report' / 'norms.json'} in 0.1 s"
    assert final_names_in("a file .x.tmp stays as it is") == "a file .x.tmp stays as it is"
