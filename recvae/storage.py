"""Where things are stored and how they are written: the cache directory and atomic writes.

Every file the package produces is written to a temporary name beside its destination and renamed
into place only when complete, so an interrupted job never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "SIMCACHE_CACHE_DIR"
#: This machine's name as it appears in temporary file names and lock files (letters, digits, -).
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def cache_dir() -> Path:
    """The per-user cache root (``$SIMCACHE_CACHE_DIR``, else ``$XDG_CACHE_HOME/simcache``, else ``~/.cache/simcache``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "simcache"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    With ``is_dir=True`` the temporary path is a fresh directory and replaces a directory. The
    temporary name, ``.<name>.p<pid>@<host>.<random>.tmp``, names its writer, so that what a killed
    run leaves behind can be recognised and removed (:mod:`recvae.outputs`). A write failure
    that names no file (Arrow's, matplotlib's) is given ``path`` as its ``filename``.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest.name}.p{os.getpid()}@{HOST}."
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=dest.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
    _apply_umask(tmp, 0o777 if is_dir else 0o666)
    try:
        yield tmp
        if is_dir and dest.exists():
            # Move the old folder aside first so ``dest`` is missing only for an instant.
            old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=dest.parent))
            os.replace(dest, old / "old")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(dest)  # a full disk or a read-only mount then names the output
        raise


def _apply_umask(path: Path, mode: int) -> None:
    """Give a temp file/folder the permissions a plain ``open``/``mkdir`` would (mkstemp uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
