"""Downloads into ``cache_dir()/downloads`` with checksum verification and a progress bar (pooch).

pooch streams to a temporary file beside the destination and moves it into place only once the
checksum matches, so a failed or corrupt download never leaves a file under the final name.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from recvae.data.registry import DatasetSpec
from recvae.errors import UserError
from recvae.storage import cache_dir


def downloads_dir() -> Path:
    """Where downloaded archives are kept."""
    d = cache_dir() / "downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def file_digests(path: str | Path, chunk: int = 1 << 20) -> dict[str, str]:
    """``{"md5": ..., "sha256": ...}`` of a file, read once in chunks."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def verify_file(path: str | Path, checksum: str | None, digests: dict[str, str] | None = None) -> dict[str, str]:
    """Check ``path`` against ``checksum`` (``"md5:<hex>"``/``"sha256:<hex>"``; None: nothing to check).

    Returns the file's digests; a mismatch raises :class:`UserError` naming the file.
    """
    digests = digests or file_digests(path)
    if checksum:
        algo, _, want = checksum.partition(":")
        got = digests.get(algo)
        if got is None:
            raise ValueError(f"unsupported checksum algorithm {algo!r}")
        if got.lower() != want.lower():
            raise UserError(f"{path}: checksum mismatch ({algo} {got}, expected {want}); the file is corrupt or not the official release")
    return digests


def fetch(spec: DatasetSpec, *, progress: bool | None = None) -> Path:
    """Download ``spec``'s official archive (once) and return its path in the cache.

    ``progress``: show a progress bar (None: only when stderr is a terminal).
    """
    if spec.url is None or spec.archive_name is None:
        raise UserError(f"{spec.name}: no official download; pass --data-dir. {spec.notes}".strip())
    import pooch
    import requests

    dest = downloads_dir()
    log = pooch.get_logger()  # its messages would bypass our one-line errors: silence it
    was_disabled, log.disabled = log.disabled, True
    try:
        path = pooch.retrieve(
            spec.url,
            known_hash=spec.checksum,
            fname=spec.archive_name,
            path=dest,
            progressbar=sys.stderr.isatty() if progress is None else progress,
        )
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise UserError(
                f"{spec.url}: checksum mismatch for {spec.archive_name} (expected {spec.checksum}); "
                "nothing was kept, try again or download it yourself and pass --data-dir"
            ) from None
        raise
    except (requests.exceptions.RequestException, OSError) as exc:
        raise UserError(
            f"{spec.url}: download failed ({type(exc).__name__}); download {spec.archive_name} yourself "
            "and pass --data-dir"
        ) from None
    finally:
        log.disabled = was_disabled
    return Path(path)
