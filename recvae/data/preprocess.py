"""The Mult-VAE "strong generalization" protocol (Liang et al. 2018), exactly as its reference code.

Steps (as in the project spec, ``shared/specs/recvae.md`` section 1), on the interactions in raw file order:

1. Binarise: keep rows with ``value > threshold`` (MSD: every row).
2. Filter once, not iteratively: items with >= ``min_users_per_item`` rows (only when > 0), then
   users with >= ``min_items_per_user`` rows (counted after the item filter).
3. Users sorted by raw id ascending (numeric ids numerically, string ids lexicographically, as
   ``groupby`` sorts them), permuted by ``RandomState(98765).permutation(n_users)``; the first
   ``n - 2H`` are training users, the next ``H`` validation users, the last ``H`` test users.
4. Item vocabulary = items of training users' rows in order of first appearance in raw file
   order. Validation/test rows with an item outside the vocabulary are dropped.
5. Per held-out split (validation, then test), ``RandomState(98765)`` is created once, then for
   each user in ascending raw id order with ``n`` remaining rows: if ``n >= 5``,
   ``choice(n, int(0.2 * n), replace=False)`` picks the held-out rows, indexing the user's rows
   **in raw file order** (``groupby`` keeps the original row order within a group); the others are
   the fold-in rows. Users with fewer than 5 rows are all fold-in, with an empty held-out row.

Matrix rows follow the permuted user order (``train_users``, ``val_users``, ``test_users``), like
the reference code's ``profile2id``. Every held-out user has a row, even one left with no rows
after step 4 (the reference code would silently drop such users at the ends of the block).
Matrices are binary float32 CSR (a duplicated (user, item) pair counts once).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from recvae.data.interactions import MANIFEST_NAME, PARQUET_NAME, ingest
from recvae.data.prepared import PreparedData
from recvae.data.registry import get_dataset
from recvae.errors import UserError
from recvae.storage import cache_dir

#: Bump when the protocol's output changes (invalidates cached prepared data).
PROTOCOL_VERSION = 1
SEED = 98765
HELDOUT_PROPORTION = 0.2
MIN_ITEMS_TO_SPLIT = 5


# ---------------------------------------------------------------------------------------------
# Raw ids -> dense codes whose order is the ascending order of the raw ids.


def factorize_sorted(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniques, codes)`` with ``uniques`` sorted ascending and ``uniques[codes] == ids`` (int32 codes)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu" and ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo >= 0 and hi < 4 * ids.size + 10_000_000:
            present = np.zeros(hi + 1, dtype=bool)
            present[ids] = True
            uniques = np.flatnonzero(present).astype(ids.dtype)
            remap = np.cumsum(present, dtype=np.int32) - 1
            return uniques, remap[ids]
    uniques, codes = np.unique(ids, return_inverse=True)
    return uniques, codes.reshape(-1).astype(np.int32)


def _factorize_dictionary(chunks: list[pa.DictionaryArray]) -> tuple[np.ndarray, np.ndarray]:
    """``factorize_sorted`` for dictionary-encoded string chunks sharing one dictionary."""
    dictionary = chunks[0].dictionary.to_numpy(zero_copy_only=False).astype(str)
    indices = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    order = np.argsort(dictionary, kind="stable")
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size)
    return dictionary[order], rank[indices]


# ---------------------------------------------------------------------------------------------
# The protocol on coded arrays.


def run_protocol(
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    min_items_per_user: int,
    min_users_per_item: int,
    heldout: int | Callable[[int], int],
) -> tuple[PreparedData, dict]:
    """Apply steps 2-5 to binarised rows in raw order.

    ``user_codes``/``item_codes``: per-row codes into ``user_ids``/``item_ids`` (raw ids; user
    codes must increase with the raw id). ``heldout``: H, or a function of the number of users
    after filtering returning H. Returns the data (manifest empty) and a dict of counts.
    """
    n_ucodes, n_icodes = len(user_ids), len(item_ids)
    keep = np.ones(user_codes.size, dtype=bool)
    if min_users_per_item > 0:
        ic = np.bincount(item_codes, minlength=n_icodes)
        keep &= ic[item_codes] >= min_users_per_item
    if min_items_per_user > 0:
        uc = np.bincount(user_codes[keep], minlength=n_ucodes)
        keep &= uc[user_codes] >= min_items_per_user
    u, i = user_codes[keep], item_codes[keep]
    del keep

    present_users = np.flatnonzero(np.bincount(u, minlength=n_ucodes))  # ascending raw id
    n_users = present_users.size
    if n_users == 0:
        raise UserError("no users left after filtering; lower --min-items-per-user / --min-users-per-item")
    h = heldout(n_users) if callable(heldout) else int(heldout)
    if h < 1 or n_users - 2 * h < 1:
        raise UserError(f"{n_users} users after filtering leave no training users with H = {h}; lower --heldout-users")
    perm = np.random.RandomState(SEED).permutation(n_users)
    permuted = present_users[perm]
    n_tr = n_users - 2 * h
    blocks = (permuted[:n_tr], permuted[n_tr : n_tr + h], permuted[n_tr + h :])
    role = np.full(n_ucodes, -1, dtype=np.int8)
    pos = np.full(n_ucodes, -1, dtype=np.int64)
    for r, block in enumerate(blocks):
        role[block] = r
        pos[block] = np.arange(block.size)
    ur = role[u]

    # Vocabulary: items of training rows in order of first appearance.
    tr = ur == 0
    vocab_codes = pd.unique(i[tr])
    n_vocab = vocab_codes.size
    col = np.full(n_icodes, -1, dtype=np.int64)
    col[vocab_codes] = np.arange(n_vocab)
    train = _csr(pos[u[tr]], col[i[tr]], (n_tr, n_vocab))

    counts: dict = {
        "after_filter": {
            "events": int(u.size),
            "users": int(n_users),
            "items": int(np.count_nonzero(np.bincount(i, minlength=n_icodes))),
        },
        "heldout_users": int(h),
        "train_users": int(n_tr),
        "train_events": int(train.nnz),
        "items": int(n_vocab),
    }
    out = {}
    for r, split in ((1, "val"), (2, "test")):
        m = ur == r
        su, si = u[m], col[i[m]]
        seen = si >= 0
        counts[f"{split}_dropped_unseen_rows"] = int(np.count_nonzero(~seen))
        su, si = su[seen], si[seen]
        fold, held, n_small = _split_heldout(su, si)
        out[f"{split}_tr"] = _csr(pos[su[fold]], si[fold], (h, n_vocab))
        out[f"{split}_te"] = _csr(pos[su[held]], si[held], (h, n_vocab))
        counts[f"{split}_tr_events"] = int(out[f"{split}_tr"].nnz)
        counts[f"{split}_te_events"] = int(out[f"{split}_te"].nnz)
        counts[f"{split}_users_without_heldout"] = int(n_small)

    data = PreparedData(
        train=train,
        val_tr=out["val_tr"],
        val_te=out["val_te"],
        test_tr=out["test_tr"],
        test_te=out["test_te"],
        items=np.asarray(item_ids)[vocab_codes],
        train_users=np.asarray(user_ids)[blocks[0]],
        val_users=np.asarray(user_ids)[blocks[1]],
        test_users=np.asarray(user_ids)[blocks[2]],
    )
    return data, counts


def _split_heldout(users: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Fold-in / held-out masks over rows (in raw order) of one held-out block; step 5.

    Returns ``(fold_mask, held_mask, n_users_with_fewer_than_5_rows)``.
    """
    order = np.argsort(users, kind="stable")  # ascending user, raw order within a user
    held_sorted = np.zeros(users.size, dtype=bool)
    su = users[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]]) if su.size else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, su.size])
    rs = np.random.RandomState(SEED)
    n_small = 0
    for start, n in zip(starts.tolist(), sizes.tolist()):
        if n >= MIN_ITEMS_TO_SPLIT:
            idx = rs.choice(n, size=int(HELDOUT_PROPORTION * n), replace=False)
            held_sorted[start + idx] = True
        else:
            n_small += 1
    held = np.zeros(users.size, dtype=bool)
    held[order] = held_sorted
    return ~held, held, n_small


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


# ---------------------------------------------------------------------------------------------
# From the cached Parquet to PreparedData.


def _positive_batches(f: pq.ParquetFile, threshold: float | None):
    for batch in f.iter_batches(columns=["user", "item", "value"], batch_size=4_000_000):
        if threshold is not None:
            batch = batch.filter(pc.greater(batch.column("value"), threshold))
        yield batch


def _read_positives(parquet: Path, threshold: float | None, integer_ids: bool):
    """Stream the Parquet, keep rows with value > threshold; return coded arrays and the raw row count.

    Integer ids take two streaming passes (which ids occur, then int32 codes written into
    preallocated arrays), so memory is 8 bytes per positive plus one batch.
    """
    f = pq.ParquetFile(parquet, read_dictionary=None if integer_ids else ["user", "item"])
    n_raw = f.metadata.num_rows
    if integer_ids:
        seen = {"user": np.zeros(0, bool), "item": np.zeros(0, bool)}
        n_pos = 0
        for batch in _positive_batches(f, threshold):
            n_pos += batch.num_rows
            for col in ("user", "item"):
                mm = pc.min_max(batch.column(col)).as_py()
                if mm["min"] is None:
                    continue
                if mm["min"] < 0 or mm["max"] >= 2**31 - 1:
                    return _read_positives_generic(f, threshold, n_raw)
                if mm["max"] >= seen[col].size:
                    grown = np.zeros(max(mm["max"] + 1, 2 * seen[col].size), bool)
                    grown[: seen[col].size] = seen[col]
                    seen[col] = grown
                seen[col][batch.column(col).to_numpy()] = True
        out = {}
        for col in ("user", "item"):
            ids = np.flatnonzero(seen[col]).astype(np.int64)
            remap = (np.cumsum(seen[col], dtype=np.int64) - 1).astype(np.int32)
            codes = np.empty(n_pos, np.int32)
            out[col] = (ids, remap, codes)
        at = 0
        for batch in _positive_batches(f, threshold):
            n = batch.num_rows
            for col in ("user", "item"):
                ids, remap, codes = out[col]
                codes[at : at + n] = remap[batch.column(col).to_numpy()]
            at += n
        return out["user"][0], out["user"][2], out["item"][0], out["item"][2], n_raw
    users, items = [], []
    for batch in _positive_batches(f, threshold):
        users.append(batch.column("user"))
        items.append(batch.column("item"))
    table = pa.table(
        {"user": pa.chunked_array(users, pa.dictionary(pa.int32(), pa.string())),
         "item": pa.chunked_array(items, pa.dictionary(pa.int32(), pa.string()))}
    ).unify_dictionaries()
    del users, items
    ch_u, ch_i = table.column("user").chunks, table.column("item").chunks
    if not ch_u or not sum(len(c) for c in ch_u):
        return np.zeros(0, str), np.zeros(0, np.int32), np.zeros(0, str), np.zeros(0, np.int32), n_raw
    user_ids, ucodes = _factorize_dictionary(ch_u)
    item_ids, icodes = _factorize_dictionary(ch_i)
    # dictionaries may hold ids whose rows were all below the threshold: drop them
    user_ids, ucodes = _compact(user_ids, ucodes)
    item_ids, icodes = _compact(item_ids, icodes)
    return user_ids, ucodes, item_ids, icodes, n_raw


def _read_positives_generic(f: pq.ParquetFile, threshold: float | None, n_raw: int):
    """Integer ids outside a dense range: concatenate, then factorise by sorting."""
    users, items = [], []
    for batch in _positive_batches(f, threshold):
        users.append(batch.column("user").to_numpy())
        items.append(batch.column("item").to_numpy())
    user_ids, ucodes = factorize_sorted(np.concatenate(users) if users else np.zeros(0, np.int64))
    del users
    item_ids, icodes = factorize_sorted(np.concatenate(items) if items else np.zeros(0, np.int64))
    return user_ids, ucodes, item_ids, icodes, n_raw


def _compact(ids: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = np.bincount(codes, minlength=ids.size) > 0
    if present.all():
        return ids, codes
    remap = (np.cumsum(present) - 1).astype(np.int32)
    return ids[present], remap[codes]


def _prepared_key(name: str, source_digest: str, params: dict, generator: dict | None) -> str:
    blob = json.dumps(
        {"dataset": name, "source": source_digest, "params": params, "generator": generator, "protocol": PROTOCOL_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepared_dir(name: str, key: str) -> Path:
    return cache_dir() / "prepared" / f"{name}-{key}"


def prepare(
    name: str,
    data_dir: str | Path | None = None,
    *,
    heldout_users: int | None = None,
    min_items_per_user: int | None = None,
    min_users_per_item: int | None = None,
    threshold: float | None = None,
    force: bool = False,
    progress: bool | None = None,
    strict: bool = False,
    **params: object,
) -> PreparedData:
    """Run the protocol on dataset ``name`` (None options = the dataset's defaults), with caching.

    The result is saved under ``cache_dir()/prepared/<name>-<hash>/`` and reused when the source
    content (digest), the effective parameters and the protocol version are unchanged.
    ``params`` are the synthetic generator's options. ``force`` recomputes even when cached.
    ``strict`` refuses raw files that need a repair (see :func:`~recvae.data.interactions.ingest`).
    """
    spec = get_dataset(name)
    eff = {
        "threshold": spec.threshold if threshold is None else float(threshold),
        "min_items_per_user": spec.min_items_per_user if min_items_per_user is None else int(min_items_per_user),
        "min_users_per_item": spec.min_users_per_item if min_users_per_item is None else int(min_users_per_item),
        "heldout_users": spec.heldout_users if heldout_users is None else int(heldout_users),
        "heldout_fraction": None if (heldout_users is not None or spec.heldout_users is not None) else spec.heldout_fraction,
        "seed": SEED,
        "heldout_proportion": HELDOUT_PROPORTION,
        "min_items_to_split": MIN_ITEMS_TO_SPLIT,
    }
    if eff["threshold"] is not None and not math.isfinite(eff["threshold"]):
        raise UserError(f"--threshold must be a finite number, got {threshold!r}")
    if eff["min_items_per_user"] < 0 or eff["min_users_per_item"] < 0:
        raise UserError("--min-items-per-user and --min-users-per-item must be >= 0")
    if eff["heldout_users"] is not None and eff["heldout_users"] < 1:
        raise UserError(f"--heldout-users must be >= 1, got {eff['heldout_users']}")

    inter_dir = ingest(name, data_dir, progress=progress, strict=strict, **params)
    inter = json.loads((inter_dir / MANIFEST_NAME).read_text())
    generator = inter["source"].get("generator")
    key = _prepared_key(name, inter["source"]["digest"], eff, generator)
    out = prepared_dir(name, key)
    if not force and (out / "manifest.json").is_file():
        return PreparedData.load(out)

    user_ids, ucodes, item_ids, icodes, n_raw = _read_positives(inter_dir / PARQUET_NAME, eff["threshold"], spec.integer_ids)
    positives = {
        "events": int(ucodes.size),
        "users": int(np.count_nonzero(np.bincount(ucodes, minlength=len(user_ids)))) if ucodes.size else 0,
        "items": int(np.count_nonzero(np.bincount(icodes, minlength=len(item_ids)))) if icodes.size else 0,
    }
    if ucodes.size == 0:
        raise UserError(f"{name}: no interactions left after binarising at value > {eff['threshold']}")
    data, counts = run_protocol(
        ucodes,
        icodes,
        user_ids,
        item_ids,
        min_items_per_user=eff["min_items_per_user"],
        min_users_per_item=eff["min_users_per_item"],
        heldout=lambda n: spec.resolve_heldout(n, eff["heldout_users"]),
    )
    eff["heldout_users"] = counts["heldout_users"]
    raw = inter["counts"]
    data.manifest = {
        "dataset": name,
        "key": key,
        "protocol_version": PROTOCOL_VERSION,
        "params": eff,
        "source": inter["source"],
        "interactions_key": inter["key"],
        "generator": generator,
        "has_timestamps": bool(inter["has_timestamps"]),
        "time_resolution": inter["time_resolution"],
        "time": inter.get("time"),
        "value": inter.get("value"),
        "counts": {"raw": {"events": n_raw, "users": raw["users"], "items": raw["items"]}, "positive": positives, **counts},
        "vocabulary_fingerprint": data.vocabulary_fingerprint(),
    }
    data.save(out)
    return data
