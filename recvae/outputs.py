"""Result folders owned by one run at a time: a lock per folder, no surprise reuse, no leftovers.

Every command that writes a result folder (``replay --out``, ``sweep``, ``train``) goes through
this module, so that a folder never holds files of two runs:

- **one run at a time**: :class:`FolderLock` holds ``.<name>.lock`` beside the folder, an
  ``flock``-ed file that records the owner's PID, host and command. A second run is refused with
  one line naming the owner; the kernel drops the lock when its owner dies, so a stale lock file
  (dead owner) is simply taken over, and said so.
- **no surprise overwrite**: :func:`refuse_reuse` refuses a non-empty folder unless the caller
  was asked to overwrite (or resume, where that is meaningful), with a message saying which flag
  to pass; :func:`clear` removes a previous run's files, and refuses when the folder holds files
  the command does not write (so ``--out ~ --overwrite`` deletes nothing).
- **whole folders**: :func:`fresh_folder` builds the result under a temporary name beside the
  destination and swaps it in only when complete (for commands that cannot resume).
- **checked first**: :func:`check_output` refuses, before any work starts, an output path of the
  wrong kind (a file where a folder is expected or the reverse), in a place that cannot be written
  (read-only file system, no permission, a file on the way) or on a disk without room for an
  estimate of the output; :func:`describe_os_error` turns a failure while writing (``ENOSPC``,
  ``EROFS``, ``EACCES``) into the one line the command line prints.
- **leftovers**: temporary files carry their writer's PID and host in their name (see
  :func:`recvae.storage.atomic_path`); :func:`clean_leftovers` lists those of a folder and removes
  the ones whose writer is dead (a temporary file of another host is only listed).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from recvae.errors import UserError
from recvae.storage import HOST, atomic_path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"
# ``.<name>.p<pid>@<host>.<random>.tmp`` (or ``.old``): see recvae.storage.atomic_path
_TEMP = re.compile(r"^\.(?P<name>.+)\.p(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[^.]+\.(?:tmp|old)$")
_UNTAGGED_TEMP = re.compile(r"^\..+\.[^.]+\.(?:tmp|old)$")

Echo = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it (so a folder can be swapped whole)."""
    f = Path(folder).absolute()
    return f.parent / f".{f.name}{LOCK_SUFFIX}"


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether process ``pid`` runs on this host (and, with ``started``, is the one that started then)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


class FolderLock:
    """Exclusive ownership of a result folder for the duration of a ``with`` block.

    The lock file beside the folder is ``flock``-ed (released by the kernel when the owner dies,
    however it dies) and holds ``{"pid", "host", "started", "command"}`` for the refusal message.
    """

    def __init__(self, folder: str | os.PathLike, command: str = "simcache", echo: Echo | None = None) -> None:
        self.folder = Path(folder)
        self.path = lock_path(folder)
        self.command = command
        self.echo = echo or _quiet
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`UserError` naming the run that holds it."""
        if fcntl is None:  # pragma: no cover
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_record(fd)
                os.close(fd)
                raise UserError(f"{self.folder} is in use by another run ({_describe(owner)}); "
                                "wait for it to finish or choose another output folder") from None  # fmt: skip
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous owner removed the file between our open and flock
                os.close(fd)
                continue
            break
        previous = _read_record(fd)
        if previous:
            self.echo(f"taking over the lock of {self.folder} left by a run that is no longer running "
                      f"({_describe(previous)})")  # fmt: skip
        me = psutil.Process()
        record = {"pid": os.getpid(), "host": HOST, "started": me.create_time(), "command": self.command,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_record(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None


def _describe(owner: dict | None) -> str:
    if not owner:
        return "owner unknown"
    return f"{owner.get('command', '?')}, pid {owner.get('pid', '?')} on {owner.get('host', '?')} since {owner.get('since', '?')}"


# ----------------------------------------------------------------------------------------------
# Leftovers of killed runs
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leftover:
    """A temporary file or folder that an atomic write left behind."""

    path: Path
    pid: int | None  # None: an untagged name (older writer), owner unknown
    host: str | None

    @property
    def owner_dead(self) -> bool:
        """Its writer ran on this host and is no longer running (then it can be removed)."""
        return self.pid is not None and self.host == HOST and not pid_alive(self.pid)


def find_leftovers(folder: str | os.PathLike) -> list[Leftover]:
    """Temporary files of atomic writes inside ``folder`` (recursively) and beside it (its own)."""
    folder = Path(folder).absolute()
    found: list[Path] = []
    if folder.parent.is_dir():
        found += [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    if folder.is_dir():
        for root, dirs, files in os.walk(folder):
            for name in [*dirs, *files]:
                if name.startswith("."):
                    found.append(Path(root) / name)
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    out = []
    for p in sorted(set(found)):
        m = _TEMP.match(p.name)
        if m:
            out.append(Leftover(p, int(m["pid"]), m["host"]))
        elif _UNTAGGED_TEMP.match(p.name) and not p.name.endswith(LOCK_SUFFIX):
            out.append(Leftover(p, None, None))
    return out


def clean_leftovers(folder: str | os.PathLike, echo: Echo | None = None) -> list[Leftover]:
    """List the leftovers of ``folder`` (through ``echo``) and remove those whose writer is dead;
    returns the removed ones."""
    say = echo or _quiet
    removed, kept = [], []
    for lo in find_leftovers(folder):
        if lo.owner_dead:
            _remove(lo.path)
            removed.append(lo)
        elif lo.pid != os.getpid():
            kept.append(lo)
    if removed:
        say(f"removed {len(removed)} temporary file(s) left by killed runs: {_names(removed)}")
    if kept:
        say(f"note: {len(kept)} temporary file(s) of runs that may still be running (or of another host) "
            f"left in place: {_names(kept)}")  # fmt: skip
    return removed


def _names(items: list[Leftover], limit: int = 5) -> str:
    names = [str(lo.path) for lo in items[:limit]]
    return ", ".join(names) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Reuse of a folder
# ----------------------------------------------------------------------------------------------
def contents(folder: str | os.PathLike) -> list[str]:
    """Files under ``folder`` as sorted relative POSIX paths, without hidden temporary files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))  # fmt: skip


def is_empty(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is missing or holds no files (empty sub-folders and temporaries aside)."""
    return not contents(folder)


def foreign_files(folder: str | os.PathLike, known: Iterable[str]) -> list[str]:
    """Files of ``folder`` that match none of the ``known`` glob patterns (relative POSIX paths)."""
    pats = list(known)
    return [f for f in contents(folder) if not any(fnmatch.fnmatchcase(f, p) for p in pats)]


def refuse_reuse(folder: str | os.PathLike, what: str, hint: str) -> None:
    """Raise a :class:`UserError` if ``folder`` holds files: ``<folder> already holds <what>; <hint>``."""
    if not is_empty(folder):
        raise UserError(f"{folder} already holds {what}; {hint}")


def clear(folder: str | os.PathLike, known: Iterable[str]) -> list[str]:
    """Remove a previous run's files (those matching ``known``) from ``folder``; refuse, removing
    nothing, when it holds any other file. Returns the removed relative paths."""
    folder = Path(folder)
    known = list(known)
    foreign = foreign_files(folder, known)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UserError(f"{folder} holds files that this command does not write ({shown}); "
                        "refusing to overwrite it: choose another output folder or remove them")  # fmt: skip
    removed = contents(folder)
    for rel in removed:
        (folder / rel).unlink(missing_ok=True)
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            d.rmdir()  # empty sub-folders of the old run
    return removed


@contextlib.contextmanager
def owned_folder(folder: str | os.PathLike, *, command: str, echo: Echo | None = None) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block and first clean the leftovers of dead runs in it.

    A folder the block created is removed again when the block fails before writing any file."""
    folder = Path(folder)
    existed = folder.exists()
    with FolderLock(folder, command, echo):
        clean_leftovers(folder, echo)
        try:
            yield folder
        except BaseException:
            if not existed and folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
            raise


@contextlib.contextmanager
def fresh_folder(folder: str | os.PathLike, *, known: Iterable[str], overwrite: bool, command: str,
                 echo: Echo | None = None) -> Iterator[Path]:  # fmt: skip
    """Own ``folder`` and yield a new, empty temporary folder beside it that replaces ``folder``
    (whole) only when the block succeeds: an interrupted run leaves the previous result intact
    and nothing mixed. A non-empty ``folder`` is refused unless ``overwrite``; with it, a folder
    holding files that match none of ``known`` is refused too."""
    folder = Path(folder)
    with owned_folder(folder, command=command, echo=echo):
        if not is_empty(folder):
            if not overwrite:
                refuse_reuse(folder, "a previous result", "pass --overwrite to replace it, or choose another --out")
            foreign = foreign_files(folder, known)
            if foreign:
                clear(folder, known)  # raises, naming them
        with atomic_path(folder, is_dir=True) as tmp:
            yield tmp


# ----------------------------------------------------------------------------------------------
# Output paths checked before the work, write failures described after it
# ----------------------------------------------------------------------------------------------
#: Write failures that are the place's fault, not the program's: one error line, no traceback.
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}  # fmt: skip
_MB = 1 << 20
#: The free space every output needs at least (its estimate when the command has none).
MIN_FREE_BYTES = _MB


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself when it exists, else the nearest ancestor that does (where it would be created)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable(folder: Path) -> str | None:
    """Why ``folder`` cannot take new files (``None`` when it can)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        try:  # os.access says why only through errno
            fd, name = _probe(folder)
        except OSError as exc:
            return WRITE_ERRNOS.get(exc.errno or 0, exc.strerror or "not writable")
        os.close(fd)
        os.unlink(name)
    return None


def _probe(folder: Path) -> tuple[int, str]:
    """Create (exclusively) a hidden probe file in ``folder``; returns its descriptor and name."""
    return tempfile.mkstemp(prefix=f".probe.p{os.getpid()}@{HOST}.", suffix=".tmp", dir=folder)


def check_output(path: str | os.PathLike, *, kind: Literal["file", "folder"], estimate_bytes: int | None = None,
                 option: str = "--out") -> Path:  # fmt: skip
    """Refuse an output path that cannot receive the output, before any work starts.

    Checks: the kind (``folder``: not an existing file; ``file``: not an existing folder), no
    file on the way to it, the place it is written in (its existing ancestor, and the folder
    itself when it exists) writable, and at least ``estimate_bytes`` (1 MB unless the command
    estimates its output) free there. Creates nothing; raises :class:`UserError` naming
    ``option`` and the path. Returns ``path`` as a :class:`Path`.
    """
    p = Path(path)
    where = f"{option} {p}" if option else str(p)
    if p.exists() or p.is_symlink():
        if kind == "folder" and not p.is_dir():
            raise UserError(f"{where}: is an existing file, not a folder; choose a folder path")
        if kind == "file" and p.is_dir():
            raise UserError(f"{where}: is an existing folder; give a file path (e.g. {p / 'out.arrow'})")
    base = _existing_ancestor(p.absolute())
    if not base.is_dir():
        raise UserError(f"{where}: {base} is a file, so nothing can be created under it")
    if base == p.absolute():  # exists: written inside a folder (and swapped or locked beside it)
        places = [base, base.parent] if kind == "folder" else [base.parent]
    else:
        places = [base]
    for place in places:
        why = _writable(place)
        if why:
            raise UserError(f"{where}: cannot write in {place} ({why})")
    if estimate_bytes is None:
        estimate_bytes = MIN_FREE_BYTES
    if estimate_bytes > 0:
        free = shutil.disk_usage(base).free
        if free < estimate_bytes:
            raise UserError(f"{where}: not enough free space in {base} (the output needs about "
                            f"{max(1, estimate_bytes // _MB):,} MB, {free // _MB:,} MB free)")  # fmt: skip
    return p


def describe_os_error(exc: OSError) -> str | None:
    """The one error line for a failure due to the place (full disk, read-only, no permission),
    ``None`` for other errors. Atomic writers have removed their temporary output by then, which
    the line of a full disk says."""
    code = exc.errno
    text = str(exc)
    if code not in WRITE_ERRNOS and "No space left on device" in text:  # Arrow's IOError carries no errno
        code = errno.ENOSPC
    if code not in WRITE_ERRNOS:
        return None
    target = exc.filename or _path_in(text)
    if code in (errno.ENOSPC, errno.EDQUOT):
        where = f"while writing {final_name(target)}" if target else "while writing the output"
        return f"{WRITE_ERRNOS[code]} {where}; the unfinished output was removed"
    return f"{final_name(target) if target else 'a file'}: {WRITE_ERRNOS[code]}"


def _path_in(text: str) -> str | None:
    m = re.search(r"'(/[^']+)'", text)
    return m.group(1) if m else None


#: a temporary component anywhere in a text (see _TEMP)
_TEMP_IN_TEXT = re.compile(r"\.(?P<name>[^/\s]+?)\.p\d+@[A-Za-z0-9-]+\.[^./\s]+\.(?:tmp|old)(?=$|[/\s:,;)'\"])")


def final_names_in(text: str) -> str:
    """``text`` (a progress line, a message) with every temporary path component named as its
    destination: a run that builds its result in a temporary folder reports the folder it will be."""
    return _TEMP_IN_TEXT.sub(lambda m: m["name"], text)


def final_name(path: str | os.PathLike) -> str:
    """``path`` with each temporary component (``.<name>.p<pid>@<host>.<random>.tmp``) named as
    its destination, so that a message names the file the user asked for."""
    parts = [(m["name"] if (m := _TEMP.match(part)) else part) for part in Path(path).parts]
    return str(Path(*parts)) if parts else str(path)


__all__ = ["FolderLock", "Leftover", "clean_leftovers", "clear", "contents", "find_leftovers", "foreign_files",
           "check_output", "describe_os_error", "final_name", "final_names_in", "fresh_folder", "is_empty", "lock_path", "owned_folder", "pid_alive", "refuse_reuse"]
