"""Reading request files: simcache traces, generic Arrow/Parquet files with a vector column, ``.npy``.

:func:`load_requests` is the one entry point. It returns :class:`Requests`: the query vectors as an
``(n, d)`` float32 array plus the optional trace columns (timestamp, user id, ...), validated once.

Formats, chosen by extension:

- ``.arrow``, ``.feather``, ``.ipc``: an Arrow IPC *file*. It is memory-mapped; when the vectors sit
  in one record batch, :attr:`Requests.vectors` is a zero-copy view of the file. With several record
  batches the vectors are only joined into one in-memory array when :attr:`Requests.vectors` is
  first used; :meth:`Requests.iter_vector_blocks` streams them batch by batch without that copy,
  so a trace larger than memory can be replayed. (An Arrow IPC *stream* is read into memory.)
- ``.parquet``, ``.pq``: read into memory.
- ``.npy``: a 2-D float matrix, rows = requests in order, memory-mapped (``np.load(mmap_mode="r")``).
  There are no other columns.

The vector column of an Arrow/Parquet file is ``vector_column`` when given, else the trace column
``embedding`` when present, else the single column of fixed-size lists (or lists) of floats; several
candidates is an error that names them. Columns named as in :mod:`recvae.trace.format`
(``timestamp``, ``user_id``, ``seq``, ``n_items``, ``split``, ``topk``) are picked up when present.

Validation (each failure is one :class:`~recvae.errors.UserError` line naming the file): missing or
unreadable file, a corrupt Arrow/Parquet file (every batch fully validated before use; a simcache
trace's schema and metadata checked against its rows, :func:`recvae.trace.format.check_trace`), unknown extension, no rows, vectors that are not 2-D or not floating point,
ragged list rows, NaN/inf (the first bad row is named), a dimension different from ``expect_dim``,
and timestamps that decrease. Decreasing timestamps are refused unless ``sort=True``, which
reorders every column by a *stable* sort on the timestamp (requests with equal timestamps keep
their file order); sorting materialises the vectors in memory. Floating-point vectors of another
width (float16/float64) are converted to float32, which also copies them.

Writing a request file is :func:`recvae.trace.format.write_requests` (the trace format's writer),
also importable from here as :func:`write_requests`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from recvae.errors import UserError
from recvae.trace import format as tf
from recvae.trace.format import write_requests

__all__ = ["Requests", "load_requests", "write_requests"]

log = logging.getLogger(__name__)

ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
PARQUET_SUFFIXES = (".parquet", ".pq")
NPY_SUFFIXES = (".npy",)
SUFFIXES = ARROW_SUFFIXES + PARQUET_SUFFIXES + NPY_SUFFIXES

# Optional per-request columns picked up by name (numpy dtype they are returned as).
_INT_COLUMNS = {tf.TIMESTAMP: np.int64, tf.SEQ: np.int64, tf.N_ITEMS: np.int64}
_STR_COLUMNS = (tf.USER, tf.SPLIT)
_VALIDATE_BLOCK = 1 << 16  # rows per block when scanning vectors for NaN/inf


class Requests:
    """The requests of one file, in replay order.

    Attributes (all per-request arrays have length ``n``; optional ones are ``None`` when absent):

    - ``vectors``: ``(n, d)`` float32, C-contiguous rows; memory-mapped where the format allows.
    - ``timestamp``: int64 ``(n,)``; ``user_id``, ``split``: object arrays of ``str``;
      ``seq``, ``n_items``: int64 ``(n,)``; ``topk``: int32 ``(n, k)``.
    - ``metadata``: the JSON object under the schema key ``simcache`` (``{}`` when absent).
    - ``path``: the file read; ``dim``: ``d``; ``len(requests)``: ``n``.

    Columns other than the vectors are converted to numpy on first access.
    """

    def __init__(
        self,
        path: Path,
        *,
        vectors: np.ndarray | None = None,
        table: pa.Table | None = None,
        vector_column: str | None = None,
        dim: int,
        n: int,
        metadata: dict | None = None,
        order: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.metadata = metadata or {}
        self.vector_column = vector_column
        self._table = table
        self._vectors = vectors
        self._dim = int(dim)
        self._n = int(n)
        self._order = order  # permutation applied by sort=True (None: file order)
        self._columns: dict[str, np.ndarray | None] = {}

    # -- shape ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def dim(self) -> int:
        return self._dim

    def __repr__(self) -> str:
        present = [c for c in self.column_names if c != "vectors"]
        return f"Requests({str(self.path)!r}, n={self._n}, dim={self._dim}, columns={present})"

    @property
    def column_names(self) -> list[str]:
        """Names of the optional columns present (besides the vectors)."""
        if self._table is None:
            return []
        names = set(self._table.column_names)
        return [c for c in (*_INT_COLUMNS, *_STR_COLUMNS, tf.TOPK) if c in names]

    @property
    def n_chunks(self) -> int:
        """Number of separate vector chunks (record batches); 1 means :attr:`vectors` is a view."""
        if self._vectors is not None or self._table is None:
            return 1
        return self._table.column(self.vector_column).num_chunks

    # -- vectors -------------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """``(n, d)`` float32 vectors; joins record batches (one copy) the first time if needed."""
        if self._vectors is None:
            blocks = [b for b in self._iter_chunks()]
            self._vectors = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
            if self._order is not None:
                self._vectors = np.ascontiguousarray(self._vectors[self._order])
                self._order = None
        return self._vectors

    def iter_vector_blocks(self, block_rows: int = 65536) -> Iterator[np.ndarray]:
        """Yield the vectors in order as ``(m, d)`` float32 blocks of at most ``block_rows`` rows.

        For a multi-batch Arrow file this reads record batch by record batch (memory-mapped, zero
        copy), so the whole matrix is never materialised.
        """
        if block_rows < 1:
            raise ValueError("block_rows must be >= 1")
        if self._vectors is not None or self._order is not None or self._table is None:
            v = self.vectors
            for start in range(0, len(v), block_rows):
                yield v[start : start + block_rows]
            return
        for chunk in self._iter_chunks():
            for start in range(0, len(chunk), block_rows):
                yield chunk[start : start + block_rows]

    def _iter_chunks(self) -> Iterator[np.ndarray]:
        assert self._table is not None and self.vector_column is not None
        for chunk in self._table.column(self.vector_column).chunks:
            if len(chunk):
                yield _list_chunk_to_numpy(chunk, self._dim, self.path, self.vector_column)

    # -- optional columns ----------------------------------------------------------------------
    def _column(self, name: str) -> np.ndarray | None:
        if name in self._columns:
            return self._columns[name]
        arr = None
        if self._table is not None and name in self._table.column_names:
            arr = _column_to_numpy(self._table.column(name), name, self.path)
            if self._order is not None:
                arr = arr[self._order]
        self._columns[name] = arr
        return arr

    @property
    def timestamp(self) -> np.ndarray | None:
        return self._column(tf.TIMESTAMP)

    @property
    def user_id(self) -> np.ndarray | None:
        return self._column(tf.USER)

    @property
    def seq(self) -> np.ndarray | None:
        return self._column(tf.SEQ)

    @property
    def n_items(self) -> np.ndarray | None:
        return self._column(tf.N_ITEMS)

    @property
    def split(self) -> np.ndarray | None:
        return self._column(tf.SPLIT)

    @property
    def topk(self) -> np.ndarray | None:
        return self._column(tf.TOPK)

    # -- derived -------------------------------------------------------------------------------
    def head(self, n: int) -> "Requests":
        """The first ``n`` requests (views where possible)."""
        n = max(0, min(int(n), self._n))
        if n == self._n:
            return self
        table, vectors, order = self._table, self._vectors, self._order
        if order is not None:
            order = order[:n]  # the first n in sorted order; columns are gathered lazily
        elif table is not None:
            table = table.slice(0, n)
        out = Requests(self.path, vectors=None if vectors is None else vectors[:n], table=table,
                       vector_column=self.vector_column, dim=self._dim, n=n,
                       metadata=self.metadata, order=order)
        out._columns = {k: (None if v is None else v[:n]) for k, v in self._columns.items()}
        return out


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def load_requests(
    path: str | Path,
    *,
    vector_column: str | None = None,
    sort: bool = False,
    expect_dim: int | None = None,
    validate: bool = True,
) -> Requests:
    """Open and validate a request file (see the module docstring for formats and rules).

    ``sort=True`` stable-sorts requests by timestamp instead of refusing decreasing timestamps.
    ``expect_dim`` refuses vectors of another dimension. ``validate=False`` skips the NaN/inf scan
    (a full pass over the vectors) for a file that was already validated, e.g. in sweep workers.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if not p.is_file():
        raise UserError(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(
            f"{p}: unknown request file type {suffix or '(no extension)'!r}; "
            f"expected one of {', '.join(SUFFIXES)}"
        )
    try:
        if suffix in NPY_SUFFIXES:
            req = _load_npy(p)
        else:
            table = _read_arrow(p) if suffix in ARROW_SUFFIXES else _read_parquet(p)
            req = _from_table(p, table, vector_column)
    except UserError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise UserError(f"{p}: cannot read ({type(exc).__name__}: {_one_line(exc)})") from None

    if len(req) == 0:
        raise UserError(f"{p}: the file has no requests (0 rows)")
    if expect_dim is not None and req.dim != int(expect_dim):
        raise UserError(f"{p}: vectors have dimension {req.dim}, expected {int(expect_dim)}")
    if validate:
        _check_finite(req)
    _check_order(req, sort)
    return req


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _read_arrow(p: Path) -> pa.Table:
    """The file's table, validated (:func:`recvae.trace.format.read_ipc`; an IPC stream is read too),
    and, for a simcache trace, its schema and metadata checked against the rows."""
    table = tf.read_ipc(p, stream_fallback=True)
    tf.check_trace(p, table, tf.decode_metadata(table.schema, p))
    return table


def _read_parquet(p: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
        table.validate(full=True)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{p}: not a readable Parquet file ({_one_line(exc)})") from None
    return table


def _is_float_list(t: pa.DataType) -> bool:
    return (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)) and (
        pa.types.is_floating(t.value_type)
    )


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _choose_vector_column(p: Path, table: pa.Table, vector_column: str | None) -> str:
    if vector_column is not None:
        if vector_column not in table.column_names:
            raise UserError(
                f"{p}: no column {vector_column!r} (columns: {', '.join(table.column_names)})"
            )
        return vector_column
    if tf.EMBEDDING in table.column_names:
        return tf.EMBEDDING
    candidates = [f.name for f in table.schema if _is_float_list(f.type)]
    if not candidates:
        raise UserError(
            f"{p}: no column of float vectors found (columns: {', '.join(table.column_names)}); "
            "name one with --vector-column"
        )
    if len(candidates) > 1:
        raise UserError(
            f"{p}: several vector columns ({', '.join(candidates)}); choose one with --vector-column"
        )
    return candidates[0]


def _from_table(p: Path, table: pa.Table, vector_column: str | None) -> Requests:
    col = _choose_vector_column(p, table, vector_column)
    t = table.schema.field(col).type
    if not _is_list(t):
        raise UserError(f"{p}: column {col!r} has type {t}, not a list of floats (vectors must be 2-D)")
    if not pa.types.is_floating(t.value_type):
        raise UserError(f"{p}: column {col!r} holds {t.value_type} values, not floating point")
    if table.column(col).null_count:
        raise UserError(f"{p}: column {col!r} has null vectors")
    if pa.types.is_fixed_size_list(t):
        dim = t.list_size
    else:
        dim = _ragged_check(p, table.column(col), col)
    if dim < 1:
        raise UserError(f"{p}: column {col!r} holds empty vectors (dimension 0)")
    return Requests(p, table=table, vector_column=col, dim=dim, n=table.num_rows,
                    metadata=tf.decode_metadata(table.schema, p))


def _ragged_check(p: Path, column: pa.ChunkedArray, name: str) -> int:
    import pyarrow.compute as pc

    if len(column) == 0:
        return 1
    lengths = pc.list_value_length(column)
    lo, hi = pc.min(lengths).as_py(), pc.max(lengths).as_py()
    if lo != hi:
        first = int(np.flatnonzero(lengths.to_numpy(zero_copy_only=False) != lengths[0].as_py())[0])
        raise UserError(
            f"{p}: column {name!r} has vectors of different lengths ({lo} to {hi}; row {first} "
            f"differs from row 0)"
        )
    return int(lo)


def _list_chunk_to_numpy(chunk: pa.Array, dim: int, p: Path, name: str) -> np.ndarray:
    """``(len, dim)`` float32 from a (fixed-size) list array; zero-copy for float32 fixed lists."""
    values = chunk.flatten().to_numpy(zero_copy_only=False)  # flatten honours slice offsets
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    return values.reshape(len(chunk), dim)


def _column_to_numpy(column: pa.ChunkedArray, name: str, p: Path) -> np.ndarray:
    t = column.type
    if name == tf.TOPK:
        if not _is_list(t) or not pa.types.is_integer(t.value_type):
            raise UserError(f"{p}: column {name!r} has type {t}, expected lists of integers")
        k = t.list_size if pa.types.is_fixed_size_list(t) else _ragged_check(p, column, name)
        if len(column) == 0:
            return np.zeros((0, k), dtype=np.int32)
        flat = np.concatenate([c.flatten().to_numpy(zero_copy_only=False) for c in column.chunks])
        return flat.astype(np.int32, copy=False).reshape(len(column), k)
    if column.null_count:
        raise UserError(f"{p}: column {name!r} has missing values")
    if name in _INT_COLUMNS:
        if pa.types.is_timestamp(t):
            column = column.cast(pa.timestamp("s")).cast(pa.int64())
        elif pa.types.is_date(t):
            column = column.cast(pa.timestamp("s")).cast(pa.int64())
        elif not pa.types.is_integer(t):
            raise UserError(f"{p}: column {name!r} has type {t}, expected integers")
        return column.to_numpy().astype(_INT_COLUMNS[name], copy=False)
    # user id and split: strings (ids stored as integers are turned into their decimal text)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
        column = column.cast(pa.string())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _load_npy(p: Path) -> Requests:
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{p}: not a plain .npy array ({_one_line(exc)})") from None
    if arr.ndim != 2:
        raise UserError(f"{p}: expected a 2-D matrix (rows = requests), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{p}: vectors have dtype {arr.dtype}, not floating point")
    if arr.shape[1] < 1:
        raise UserError(f"{p}: vectors have dimension 0")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return Requests(p, vectors=arr, dim=arr.shape[1], n=arr.shape[0])


def _check_finite(req: Requests) -> None:
    offset = 0
    for block in req.iter_vector_blocks(_VALIDATE_BLOCK):
        ok = np.isfinite(block).all(axis=1)
        if not ok.all():
            row = offset + int(np.flatnonzero(~ok)[0])
            what = "NaN" if np.isnan(block[row - offset]).any() else "inf"
            raise UserError(f"{req.path}: vector of request {row} contains {what}")
        offset += len(block)


def _check_order(req: Requests, sort: bool) -> None:
    ts = req.timestamp
    if ts is None or len(ts) < 2:
        return
    bad = np.flatnonzero(ts[1:] < ts[:-1])
    if len(bad) == 0:
        return
    if not sort:
        i = int(bad[0]) + 1
        raise UserError(
            f"{req.path}: timestamps decrease at request {i} ({int(ts[i - 1])} then {int(ts[i])}); "
            "pass --sort to replay in timestamp order (stable sort)"
        )
    order = np.argsort(ts, kind="stable")
    log.info("%s: sorted %d requests by timestamp (%d were out of order)", req.path, len(ts), len(bad))
    # Materialise the columns already read in the new order; the rest are permuted on access.
    vectors = req.vectors
    req._vectors = np.ascontiguousarray(vectors[order])  # noqa: SLF001
    req._columns = {k: (None if v is None else v[order]) for k, v in req._columns.items()}  # noqa: SLF001
    req._order = order  # noqa: SLF001 - for columns read later
