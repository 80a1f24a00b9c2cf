"""Request vectors as a stream of blocks, for both cache families' engines.

An engine reads its input block by block (a memory-mapped array is never copied whole): an
``(n, d)`` array is cut into views, and an iterable of ``(n_i, d)`` blocks is re-cut into blocks
of the engine's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from recvae.errors import UserError


def request_blocks(vectors: Any, size: int) -> tuple[int | None, int | None, Iterator[np.ndarray]]:
    """(n or None, d or None, iterator of raw (<= size, d) blocks) for an array or an iterable."""
    if isinstance(vectors, np.ndarray) or hasattr(vectors, "__array_interface__") and hasattr(vectors, "shape"):
        arr = vectors
        if arr.ndim != 2:
            raise UserError(f"vectors must be a 2-D (n, d) array, got shape {tuple(arr.shape)}")
        n, d = int(arr.shape[0]), int(arr.shape[1])
        return n, d, (arr[i : i + size] for i in range(0, n, size))
    if isinstance(vectors, Iterable):
        return None, None, rechunk(vectors, size)
    raise UserError("vectors must be an (n, d) float32 array or an iterable of (n_i, d) blocks")


def rechunk(blocks: Iterable[Any], size: int) -> Iterator[np.ndarray]:
    """Re-cut an iterable of (n_i, d) blocks into blocks of exactly ``size`` rows (last: fewer)."""
    pending: list[np.ndarray] = []
    have = 0
    dim = None
    for blk in blocks:
        blk = np.asarray(blk)
        if blk.ndim != 2:
            raise UserError(f"every block of vectors must be 2-D (n_i, d), got shape {blk.shape}")
        if dim is None:
            dim = blk.shape[1]
        elif blk.shape[1] != dim:
            raise UserError(f"request vectors must all have dimension {dim}, got a block of shape {blk.shape}")
        start = 0
        while start < blk.shape[0]:
            take = min(size - have, blk.shape[0] - start)
            pending.append(blk[start : start + take])
            have += take
            start += take
            if have == size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, have = [], 0
    if have:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)
