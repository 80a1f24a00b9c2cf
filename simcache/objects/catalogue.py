"""Reading a catalogue of objects: the trace builder's catalogue file or any vector file.

:func:`load_catalogue` is the one entry point; it returns a
:class:`recvae.trace.catalogue.Catalogue` (ids, float32 vectors, optional bias, metadata),
validated once. Files of the trace builder's layout are read by its own reader
(:func:`recvae.trace.catalogue.read_catalogue`); write one with
:func:`recvae.trace.catalogue.write_catalogue`. Formats, by extension:

- ``.arrow``, ``.feather``, ``.ipc``: an Arrow IPC file. The **simcache catalogue** written next
  to a trace has columns ``item_id`` (string), ``vector`` (fixed_size_list<float32>[d]) and
  optionally ``bias`` (float32), and the schema metadata key ``simcache`` holding a JSON object
  with ``"kind": "catalogue"`` (model checksum, vocabulary fingerprint, ...). Any other Arrow
  file is read generically (below).
- ``.parquet``, ``.pq``: read generically.
- ``.npy``: an (n, d) float matrix; ids are the row numbers, no bias.

Generic Arrow/Parquet: the vector column is ``vector_column`` when given, else ``vector``, else
``embedding``, else the single column of (fixed-size) lists of floats; ids come from
``id_column`` or the first of ``item_id``/``id``/``item`` present (else the row numbers); a
float ``bias`` column is used when present. Each problem is one :class:`UserError` line naming
the file: missing file, unknown extension, no rows, no or ambiguous vector column, ragged rows,
non-float or non-finite values (the first bad object is named), duplicate ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recvae.errors import UserError
from recvae.trace.catalogue import Catalogue, read_catalogue
from recvae.trace.format import read_ipc

ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
PARQUET_SUFFIXES = (".parquet", ".pq")
NPY_SUFFIXES = (".npy",)
#: schema metadata key of simcache files and the ``kind`` of a catalogue
META_KEY = b"simcache"
KIND = "catalogue"
VECTOR_NAMES = ("vector", "embedding")
ID_NAMES = ("item_id", "id", "item")


def as_catalogue(catalogue: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(vectors, bias or None) from a :class:`Catalogue`, an (N, d) array or a (vectors, bias) pair."""
    if hasattr(catalogue, "vectors"):
        return catalogue.vectors, getattr(catalogue, "bias", None)
    if isinstance(catalogue, tuple) and len(catalogue) == 2:
        return catalogue[0], catalogue[1]
    return catalogue, None


def load_catalogue(path: str | Path, *, vector_column: str | None = None, id_column: str | None = None) -> Catalogue:
    """Read and validate a catalogue file (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such catalogue file")
    suffix = path.suffix.lower()
    if suffix in NPY_SUFFIXES:
        try:
            vectors = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise UserError(f"{path}: not a readable .npy file ({exc})") from None
        _check_vectors(vectors, path)
        ids = np.array([str(i) for i in range(vectors.shape[0])], dtype=object)
        return Catalogue(ids, np.ascontiguousarray(vectors, dtype=np.float32), None, {})
    if suffix in ARROW_SUFFIXES:
        table = read_ipc(path)  # every batch validated: a corrupt file is one UserError line
        if _metadata(table).get("kind") == KIND:
            return read_catalogue(path)  # the trace builder's layout, validated by its reader
    elif suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            table.validate(full=True)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    else:
        raise UserError(f"{path}: unknown catalogue format {suffix!r}; expected .npy, .arrow/.feather/.ipc or .parquet")
    return _from_table(table, path, vector_column, id_column)


def _metadata(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _from_table(table: pa.Table, path: Path, vector_column: str | None, id_column: str | None) -> Catalogue:
    if table.num_rows == 0:
        raise UserError(f"{path}: the catalogue has no rows")
    meta = _metadata(table)
    names = table.column_names
    if vector_column is None:
        vector_column = next((c for c in VECTOR_NAMES if c in names), None)
    if vector_column is None:
        lists = [f.name for f in table.schema if _is_float_list(f.type)]
        if len(lists) != 1:
            what = f"several ({', '.join(lists)}); choose one" if lists else "none"
            raise UserError(f"{path}: need one vector column (lists of floats), found {what}")
        vector_column = lists[0]
    if vector_column not in names:
        raise UserError(f"{path}: no column {vector_column!r} (columns: {', '.join(names)})")
    vectors = _vectors(table.column(vector_column), path, vector_column)
    _check_vectors(vectors, path)
    if id_column is None:
        id_column = next((c for c in ID_NAMES if c in names), None)
    elif id_column not in names:
        raise UserError(f"{path}: no id column {id_column!r} (columns: {', '.join(names)})")
    if id_column is None:
        ids = np.array([str(i) for i in range(len(vectors))], dtype=object)
    else:
        ids = np.array([str(v) for v in table.column(id_column).to_pylist()], dtype=object)
        if len(set(ids.tolist())) != len(ids):
            raise UserError(f"{path}: column {id_column!r} has duplicate ids")
    bias = None
    if "bias" in names:
        col = table.column("bias")
        if not pa.types.is_floating(col.type):
            raise UserError(f"{path}: column 'bias' must be floating point, got {col.type}")
        if col.null_count:
            raise UserError(f"{path}: column 'bias' has missing values")
        bias = col.to_numpy().astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(bias))
        if bad.size:
            raise UserError(f"{path}: bias of object {int(bad[0])} is not finite")
    return Catalogue(ids, vectors, bias, meta)


def _is_float_list(t: pa.DataType) -> bool:
    return (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)) and \
        pa.types.is_floating(t.value_type)  # fmt: skip


def _vectors(col: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if not _is_float_list(col.type):
        raise UserError(f"{path}: column {name!r} must hold lists of floats, got {col.type}")
    arr = col.combine_chunks()
    if arr.null_count:
        raise UserError(f"{path}: column {name!r} has missing vectors")
    if pa.types.is_fixed_size_list(arr.type):
        dim = arr.type.list_size
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(flat.reshape(len(arr), dim), dtype=np.float32)
    lengths = arr.value_lengths().to_numpy()
    if len(set(lengths.tolist())) != 1:
        raise UserError(f"{path}: column {name!r} has rows of different lengths")
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat.reshape(len(arr), int(lengths[0])), dtype=np.float32)


def _check_vectors(v: np.ndarray, path: Path) -> None:
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise UserError(f"{path}: catalogue vectors must be a non-empty (n, d) matrix, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.floating):
        raise UserError(f"{path}: catalogue vectors must be floating point, got {v.dtype}")
    for start in range(0, v.shape[0], 1 << 16):
        block = np.asarray(v[start : start + (1 << 16)])
        bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
        if bad.size:
            raise UserError(f"{path}: catalogue object {start + int(bad[0])} has a non-finite (NaN or inf) component")
