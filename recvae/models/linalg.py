"""Sums, Gram matrices and ridge solves over ragged groups of items, incrementally over prefixes.

Every model whose user embedding is a function of *sums over the user's items* (a linear first
layer, a genre profile, the normal equations of a least-squares user step) can embed many prefixes
of one history without re-reading it: the items between two consecutive prefix lengths of a user
form one *segment*; a segment's sum (or Gram matrix) is computed once and the prefix values are
cumulative sums over the user's segments. The same functions serve whole rows of a CSR matrix
(each row one group), which is what an ALS sweep needs.

All sums are taken in float64. The reference for every function is a plain per-row loop in
``tests/recvae/models/test_linalg.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch

from recvae.trace.prefix import PrefixBatch, available_cores, concat_ranges

#: Most (row, position, dim) float64 values one batched Gram product may hold (~64 MiB).
_GRAM_BLOCK = 1 << 23


def group_sums(starts: np.ndarray, lengths: np.ndarray, items: np.ndarray, table: np.ndarray,
               weights: np.ndarray | None = None) -> np.ndarray:
    """(groups, d) float64: ``sum_p w_p * table[items[p]]`` over ``p in [start, start + length)``.

    ``weights`` (aligned with ``items``, None = 1) weigh each position.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    pos = concat_ranges(starts, lengths)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    data = np.ones(pos.size) if weights is None else np.asarray(weights, dtype=np.float64)[pos]
    n_items = table.shape[0]
    sel = sp.csr_matrix((data, np.asarray(items, dtype=np.int64)[pos], indptr), shape=(lengths.size, n_items))
    return np.asarray(sel @ np.asarray(table, dtype=np.float64))


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: the batched products here are small, and torch's thread
    pool slows them down 10-25x on a busy machine (measured: 891 vs 22,105 prefixes/s on 2 loaded
    cores). Parallelism comes from independent chunks instead (:func:`map_chunks`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def map_chunks(func: Callable[[int, int], np.ndarray], chunks: list[tuple[int, int]], out: np.ndarray,
               workers: int | None = None) -> np.ndarray:
    """``out[lo:hi] = func(lo, hi)`` for every chunk, in ``workers`` threads (default: the cores available).

    Each chunk is computed the same way whatever the number of workers, so results do not depend on it.
    """
    workers = workers or available_cores()
    with one_torch_thread():
        if workers <= 1 or len(chunks) <= 1:
            for lo, hi in chunks:
                out[lo:hi] = func(lo, hi)
            return out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for (lo, hi), part in zip(chunks, pool.map(lambda c: func(*c), chunks)):
                out[lo:hi] = part
    return out


def group_grams(starts: np.ndarray, lengths: np.ndarray, items: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(groups, d, d) float64: ``sum_p table[items[p]] table[items[p]]^T`` over each group.

    Groups of equal length are stacked and multiplied in one batched product (``torch.bmm``,
    which runs strided stacks through BLAS where ``numpy.matmul`` falls back to a slow loop), so
    the cost is a few calls per distinct length instead of one Python step per group.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    table = np.asarray(table, dtype=np.float64)
    d = table.shape[1]
    out = np.zeros((lengths.size, d, d))
    for length in np.unique(lengths):
        if length == 0:
            continue
        idx = np.flatnonzero(lengths == length)
        step = max(1, _GRAM_BLOCK // int(length * d))
        for lo in range(0, idx.size, step):
            sub = idx[lo : lo + step]
            vec = torch.from_numpy(table[items[starts[sub, None] + np.arange(length)]])  # (n, length, d)
            with one_torch_thread():
                out[sub] = torch.bmm(vec.transpose(1, 2), vec).numpy()
    return out


def _segments(batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray]:
    """Start (in ``batch.items``) and length of each row's new items since the user's previous row."""
    prev = batch.previous_lengths()
    return batch.starts() + prev, batch.lengths - prev


def cumulate_per_user(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 0 restarted at each user's first row (rows of a user consecutive), in place."""
    m = owner.size
    if m == 0:
        return values
    new_group = np.r_[True, owner[1:] != owner[:-1]]
    first = np.maximum.accumulate(np.where(new_group, np.arange(m), 0))
    rank = np.arange(m) - first
    for r in range(1, int(rank.max()) + 1 if m else 1):
        rows = np.flatnonzero(rank == r)
        values[rows] += values[rows - 1]
    return values


def prefix_sums(batch: PrefixBatch, table: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(m, d) float64: for each row, ``sum_p w_p table[item_p]`` over the row's prefix.

    ``weights`` is aligned with ``batch.items`` (None = 1).
    """
    starts, lengths = _segments(batch)
    return cumulate_per_user(group_sums(starts, lengths, batch.items, table, weights), batch.owner)


def prefix_grams(batch: PrefixBatch, table: np.ndarray) -> np.ndarray:
    """(m, d, d) float64: for each row, ``sum_p table[item_p] table[item_p]^T`` over the row's prefix."""
    starts, lengths = _segments(batch)
    return cumulate_per_user(group_grams(starts, lengths, batch.items, table), batch.owner)


def ridge_solve(gram: np.ndarray, rhs: np.ndarray, reg: np.ndarray | float) -> np.ndarray:
    """(m, d): the solutions of ``(gram_r + reg_r * I) x_r = rhs_r`` (``reg`` scalar, (m,) or (m, d)).

    With ``gram = A^T A`` and ``rhs = A^T t`` this is ``argmin ||A x - t||^2 + reg ||x||^2``.
    """
    gram = np.array(gram, dtype=np.float64, copy=True)
    m, d, _ = gram.shape
    reg = np.asarray(reg, dtype=np.float64)
    reg = np.broadcast_to(reg[:, None] if reg.ndim == 1 else reg, (m, d))
    diag = np.arange(d)
    gram[:, diag, diag] += reg
    if m == 0:
        return np.zeros((0, d))
    return np.linalg.solve(gram, np.asarray(rhs, dtype=np.float64)[..., None])[..., 0]
