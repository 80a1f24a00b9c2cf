"""Users' time-ordered histories of the interactions the model sees.

The interactions the model sees are the raw rows that pass binarization (``value > threshold``;
every row when the threshold is None, as for MSD), whose user is in one of the protocol's splits
and whose item is in the training vocabulary. A repeated (user, item) pair counts once, at its
first occurrence in time order.

Order within a user: by timestamp, ties broken by the row's position in the raw file (a stable
sort), so the order is fully deterministic. With the ``file-order`` clock (datasets without
timestamps, e.g. MSD) the timestamp of a row *is* its 0-based position in the raw file.

Users are numbered in ascending raw-id order (numeric ids numerically, other ids as strings); this
numbering is the tie-break between users in the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recvae.errors import UserError
from recvae.trace.format import SPLITS
from recvae.trace.prefix import concat_ranges

#: The protocol splits, in the order of their codes in :attr:`Histories.split` (the trace's ``split`` codes).
SPLIT_NAMES = SPLITS
CLOCKS = ("time", "file-order")


@dataclass
class Histories:
    """Per-user item sequences (vocabulary indices) with their timestamps, concatenated."""

    users: np.ndarray  # (n_users,) raw user ids, ascending
    split: np.ndarray  # (n_users,) int8 code into SPLIT_NAMES
    offsets: np.ndarray  # (n_users + 1,) int64; user u owns items[offsets[u]:offsets[u+1]]
    items: np.ndarray  # (n,) int64 vocabulary indices, time order within each user
    times: np.ndarray  # (n,) int64 timestamps, non-decreasing within each user

    @property
    def n_users(self) -> int:
        return int(self.users.size)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, keep: np.ndarray) -> "Histories":
        """Only the users at the (sorted) indices ``keep``."""
        keep = np.asarray(keep, dtype=np.int64)
        counts = self.counts[keep]
        pos = concat_ranges(self.offsets[keep], counts)
        return Histories(
            users=self.users[keep],
            split=self.split[keep],
            offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
            items=self.items[pos],
            times=self.times[pos],
        )

    def to_csr(self, n_items: int) -> sp.csr_matrix:
        """Binary user-by-item matrix of the histories (rows in ``users`` order)."""
        data = np.ones(self.items.size, dtype=np.float32)
        return sp.csr_matrix((data, self.items, self.offsets), shape=(self.n_users, n_items))


def _as_keys(values: np.ndarray, reference: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Make two id arrays comparable: numeric when both are numeric, else as strings."""
    ref = np.asarray(reference)
    vals = np.asarray(values)
    if ref.dtype.kind in "iu" and vals.dtype.kind in "iu":
        return pd.Index(ref.astype(np.int64)), vals.astype(np.int64)
    return pd.Index(ref.astype(str)), vals.astype(str)


#: Largest id for which integer ids are mapped through a dense lookup table instead of a hash.
_DENSE_LOOKUP_MAX = 1 << 26


def _codes(column: pd.Series, reference: np.ndarray) -> np.ndarray:
    """Position (int64) of every value of ``column`` in ``reference`` (-1 when absent).

    A categorical column (string ids, e.g. MSD) is mapped through its categories only; small
    non-negative integer ids through a dense lookup table.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = column.cat.categories.to_numpy()
        index, keys = _as_keys(cats, reference)
        lookup = np.r_[index.get_indexer(keys), -1]  # code -1 (missing value) -> -1
        return lookup[column.cat.codes.to_numpy()].astype(np.int64)
    values = column.to_numpy()
    ref = np.asarray(reference)
    if values.dtype.kind in "iu" and ref.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi < _DENSE_LOOKUP_MAX:
            table = np.full(hi + 1, -1, dtype=np.int64)
            inside = (ref >= 0) & (ref <= hi)
            table[ref[inside]] = np.flatnonzero(inside)
            return table[values]
    index, keys = _as_keys(values, ref)
    return index.get_indexer(keys).astype(np.int64)


def _greater(values: np.ndarray, threshold: float) -> np.ndarray:
    """``values > threshold`` as in float64, without converting a float32 column when not needed."""
    if values.dtype == np.float32 and float(np.float32(threshold)) == threshold:
        return values > np.float32(threshold)
    return values.astype(np.float64, copy=False) > threshold


def _user_time_order(ucode: np.ndarray, times: np.ndarray, n_users: int) -> np.ndarray:
    """Stable order by (user, time): one int64 key when it fits, else a two-key lexsort."""
    if ucode.size == 0:
        return np.zeros(0, dtype=np.int64)
    t0, span = int(times.min()), int(times.max()) - int(times.min()) + 1
    if n_users * span < (1 << 62):
        return np.argsort(ucode * np.int64(span) + (times - t0), kind="stable")
    return np.lexsort((times, ucode))


def _has_repeats(icode: np.ndarray, counts: np.ndarray, n_items: int) -> bool:
    """Whether some user has an item twice (rows grouped by user); per-row sorts, no global sort."""
    offsets = np.r_[0, np.cumsum(counts)]
    m = sp.csr_matrix((np.ones(icode.size, np.int8), icode, offsets), shape=(counts.size, n_items))
    m.sum_duplicates()
    return m.nnz != icode.size


def split_users(train_users: np.ndarray, val_users: np.ndarray, test_users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All users of the protocol sorted ascending, with their split codes."""
    users = np.concatenate([np.asarray(train_users), np.asarray(val_users), np.asarray(test_users)])
    codes = np.repeat(np.arange(3, dtype=np.int8), [len(train_users), len(val_users), len(test_users)])
    order = np.argsort(users, kind="stable")
    return users[order], codes[order]


def build_histories(
    interactions: pd.DataFrame,
    *,
    items: np.ndarray,
    train_users: np.ndarray,
    val_users: np.ndarray,
    test_users: np.ndarray,
    threshold: float | None,
    clock: str = "time",
) -> Histories:
    """Time-ordered histories of every protocol user from the raw interactions table.

    ``interactions`` has columns ``user``, ``item``, ``value`` and (unless ``clock='file-order'``)
    ``timestamp``, in raw file order. ``items`` is the training vocabulary (column order of the
    model's input).
    """
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    n_rows = len(interactions)
    if clock == "time":
        if "timestamp" not in interactions.columns:
            raise UserError("the interactions have no timestamp column; use the file-order clock")
        times = interactions["timestamp"].to_numpy(dtype=np.int64)
    else:
        times = np.arange(n_rows, dtype=np.int64)
    keep = np.ones(n_rows, dtype=bool)
    if threshold is not None:
        keep &= _greater(interactions["value"].to_numpy(), float(threshold))

    users, split = split_users(train_users, val_users, test_users)
    ucode = _codes(interactions["user"], users)
    icode = _codes(interactions["item"], np.asarray(items))
    keep &= (ucode >= 0) & (icode >= 0)
    ucode, icode, times = ucode[keep], icode[keep], times[keep]  # still in raw file order
    # user, then time, then raw position (a stable sort of rows in file order)
    order = _user_time_order(ucode, times, users.size)
    ucode, icode, times = ucode[order], icode[order], times[order]
    # a repeated (user, item) pair counts once, at its first occurrence in this order
    counts = np.bincount(ucode, minlength=users.size)
    if _has_repeats(icode, counts, len(items)):  # rare: only then find the first occurrences
        _, first = np.unique(ucode * np.int64(len(items)) + icode, return_index=True)
        first.sort()
        ucode, icode, times = ucode[first], icode[first], times[first]
        counts = np.bincount(ucode, minlength=users.size)
    return Histories(
        users=users,
        split=split,
        offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
        items=icode,
        times=times,
    )


def check_against_prepared(hist: Histories, prepared) -> None:
    """Raise if the histories do not hold exactly the (user, item) pairs of the prepared matrices.

    Training users must match their ``train`` row; validation/test users their fold-in plus
    held-out rows. A mismatch means the raw table and the prepared data disagree (different
    parameters or a bug), and a trace built from them would not be what the model sees.
    """
    n_items = prepared.n_items
    mine = hist.to_csr(n_items)
    key_index, keys = _as_keys(hist.users, hist.users)
    parts = [
        (prepared.train_users, prepared.train),
        (prepared.val_users, (prepared.val_tr + prepared.val_te).tocsr()),
        (prepared.test_users, (prepared.test_tr + prepared.test_te).tocsr()),
    ]
    for split_users_, matrix in parts:
        _, ids = _as_keys(np.asarray(split_users_), hist.users)
        rows = key_index.get_indexer(ids)
        if (rows < 0).any():
            raise RuntimeError("prepared data lists a user missing from the histories")
        theirs = (matrix > 0).astype(np.float32).tocsr()
        diff = abs(mine[rows] - theirs)
        if diff.nnz:
            bad = int(np.flatnonzero(np.asarray(diff.sum(axis=1)).ravel())[0])
            raise RuntimeError(
                f"the raw interactions and the prepared data disagree for user {split_users_[bad]!r} "
                f"({diff.nnz} (user, item) pairs differ); rebuild the prepared data"
            )
