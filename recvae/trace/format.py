"""The trace file format, in one place: column names and types, metadata encoding, reader, writer.

A trace is an uncompressed Arrow IPC *file* (memory-mappable, zero-copy reads), one row per
request (one embedding of one user at one point of their history), rows sorted by ``timestamp``
with a deterministic tie-break (:func:`global_order`). The schema metadata key ``simcache``
holds one JSON object describing how the file was produced (dataset, preprocessing, model,
schedule, package version, seed, item vocabulary for ``topk``); :func:`encode_metadata` is the
only encoding, used for traces, request files and item catalogues alike.

Writers: :func:`write_trace` (the trace builder's rows, held as codes into label arrays) and
:func:`write_requests` (any subset of the trace columns, e.g. vectors from another source); both
go through :func:`write_ipc`, the one atomic IPC writer. Given the same arrays and metadata, the
bytes written are identical. :func:`write_trace` also records a checksum of every record batch
(format version 2); :mod:`recvae.trace.integrity` verifies it.

Reader: :func:`read_ipc` is the one way every Arrow IPC input (trace, request file, catalogue) is
opened: a file Arrow cannot parse, or whose batches fail Arrow's full validation, is one
:class:`~recvae.errors.UserError` naming the file, before any of its data is used (Arrow's C++
code aborts the process on some invalid arrays it is handed unvalidated). :func:`check_trace`
then checks a simcache trace's schema and metadata against its rows. The format is documented
in ``traces/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recvae.errors import UserError
from recvae.storage import atomic_path

log = logging.getLogger(__name__)

TIMESTAMP = "timestamp"  # int64, Unix seconds (UTC) of the newest interaction included
USER = "user_id"  # string, the dataset's raw user id
SEQ = "seq"  # int32, 0-based sequence number of this embedding within the user
N_ITEMS = "n_items"  # int32, number of interactions the embedding includes
SPLIT = "split"  # string: "train", "validation" or "test" (the user's protocol split)
EMBEDDING = "embedding"  # fixed_size_list<float32>[dim], the user embedding
TOPK = "topk"  # fixed_size_list<int32>[k], item indices into the vocabulary; optional column

#: The per-request columns other than the embedding, in file order (all optional for request files).
OPTIONAL_COLUMNS = (TIMESTAMP, USER, SEQ, N_ITEMS, SPLIT)
_COLUMN_TYPES = {TIMESTAMP: pa.int64(), USER: pa.string(), SEQ: pa.int32(), N_ITEMS: pa.int32(), SPLIT: pa.string()}

METADATA_KEY = b"simcache"
SPLITS = ("train", "validation", "test")

#: Format identifier and version recorded in a trace's metadata (bump on incompatible changes).
TRACE_FORMAT = "simcache-trace"
TRACE_FORMAT_VERSION = 2
#: Format versions this reader understands (1: no checksum; 2: ``checksum`` in the metadata).
READABLE_FORMAT_VERSIONS = (1, 2)
#: Metadata key of the checksums (format 2): ``{"algorithm", "batches", "metadata", "arrow"}``.
CHECKSUM_KEY = "checksum"
CHECKSUM_ALGORITHM = "sha256"
#: The first bytes of an Arrow IPC file.
IPC_MAGIC = b"ARROW1"
#: The model type of a trace whose ``model`` metadata names none (every format-1 trace before
#: other models existed was RecVAE's); :func:`model_metadata` leaves it out, :func:`model_type` reads it.
DEFAULT_MODEL_TYPE = "recvae"
#: Where a trace's item catalogue lives: beside the trace, named ``<trace stem>`` + this suffix.
CATALOGUE_SUFFIX = ".catalogue.arrow"

#: Rows per record batch; fixed so that identical inputs give identical bytes.
BATCH_ROWS = 65536


# ----------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------
def trace_schema(
    dim: int,
    topk: int | None,
    metadata: dict[bytes, bytes] | None = None,
    *,
    columns: Sequence[str] = OPTIONAL_COLUMNS,
) -> pa.Schema:
    """The Arrow schema of a trace with embedding dimension ``dim`` and ``topk`` items (None: no column).

    ``columns``: which of :data:`OPTIONAL_COLUMNS` are present (default all, as ``build-trace``
    writes them); they keep their file order whatever order they are given in.
    """
    unknown = set(columns) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise ValueError(f"unknown trace columns {sorted(unknown)}")
    fields = [pa.field(name, _COLUMN_TYPES[name], nullable=False) for name in OPTIONAL_COLUMNS if name in columns]
    fields.append(pa.field(EMBEDDING, pa.list_(pa.float32(), dim), nullable=False))
    if topk:
        fields.append(pa.field(TOPK, pa.list_(pa.int32(), topk), nullable=False))
    return pa.schema(fields, metadata=metadata)


def global_order(timestamp: np.ndarray, user_rank: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The trace's row order: by timestamp, then user (ascending raw id), then sequence number."""
    return np.lexsort((seq, user_rank, timestamp))


# ----------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------
def encode_metadata(meta: dict) -> dict[bytes, bytes]:
    """Schema metadata: one JSON object under the ``simcache`` key (keys sorted, compact, deterministic)."""
    return {METADATA_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()}


def decode_metadata(schema: pa.Schema, source: str | Path | None = None) -> dict:
    """The JSON object under the ``simcache`` key ({} when absent).

    Metadata that is not valid JSON is ignored with a warning naming ``source`` (a file is still
    readable without it); a JSON value that is not an object comes back as ``{"value": ...}``.
    """
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        log.warning("%s: schema metadata %r is not valid JSON; ignored", source or "file", METADATA_KEY.decode())
        return {}
    return meta if isinstance(meta, dict) else {"value": meta}


def read_metadata(path: str | Path) -> dict:
    """The ``simcache`` metadata of an Arrow IPC file (trace, request file, catalogue), without its rows."""
    p = Path(path)
    try:
        with pa.memory_map(str(p), "r") as source:
            return decode_metadata(pa.ipc.open_file(source).schema, p)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{p}: not a readable Arrow IPC file ({one_line(exc)})") from None


def metadata_sha256(meta: dict) -> str:
    """SHA-256 of a metadata object's encoding without its ``checksum`` entry (what that entry records)."""
    rest = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(encode_metadata(rest)[METADATA_KEY]).hexdigest()


def model_metadata(model_type: str, fields: dict) -> dict:
    """The ``model`` entry of a trace's metadata: ``fields`` plus ``type`` unless it is the default."""
    out = dict(fields)
    if model_type != DEFAULT_MODEL_TYPE:
        out["type"] = model_type
    return out


def model_type(meta: dict) -> str:
    """The model type a trace's metadata records (:data:`DEFAULT_MODEL_TYPE` when it names none)."""
    model = meta.get("model")
    return str(model.get("type", DEFAULT_MODEL_TYPE)) if isinstance(model, dict) else DEFAULT_MODEL_TYPE


def vocabulary_sha256(items: np.ndarray | Sequence) -> str:
    """SHA-256 of the raw item ids, one per line in vocabulary order.

    Its first 16 hex digits are the ``vocabulary_fingerprint`` of the prepared data.
    """
    return hashlib.sha256("\n".join(map(str, np.asarray(items).tolist())).encode()).hexdigest()


def catalogue_path(trace: str | Path) -> Path:
    """The item catalogue that belongs to ``trace``: ``<trace stem>.catalogue.arrow`` beside it."""
    trace = Path(trace)
    return trace.with_name(trace.stem + CATALOGUE_SUFFIX)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def one_line(exc: BaseException) -> str:
    """An exception's message on one line, shortened (for error messages naming a file)."""
    return " ".join(str(exc).split())[:300]


def read_ipc(path: str | Path, *, stream_fallback: bool = False) -> pa.Table:
    """The table of an Arrow IPC file (memory-mapped, zero copy), every record batch fully validated.

    A file that is not Arrow IPC, cannot be parsed, does not start with the IPC magic or has a
    batch failing ``validate(full=True)`` is a :class:`UserError` naming the file (and the batch).
    ``stream_fallback``: read a file without the file format's magic as an IPC *stream* instead.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(len(IPC_MAGIC))
        source = pa.memory_map(str(p), "r")
        if head != IPC_MAGIC:
            if not stream_fallback:
                raise UserError(f"{p}: not an Arrow IPC file (it does not start with {IPC_MAGIC.decode()})")
            try:
                reader = pa.ipc.open_stream(source)
                batches = [_validated(p, b, i) for i, b in enumerate(reader)]
            except (OSError, pa.ArrowException) as exc:
                raise UserError(f"{p}: not an Arrow IPC file or stream ({one_line(exc)})") from None
            return _named(p, pa.Table.from_batches(batches, schema=reader.schema))
        reader = pa.ipc.open_file(source)
        batches = []
        for i in range(reader.num_record_batches):
            try:
                batch = reader.get_batch(i)
            except (OSError, pa.ArrowException) as exc:
                raise UserError(f"{p}: corrupt record batch {i} ({one_line(exc)})") from None
            batches.append(_validated(p, batch, i))
        return _named(p, pa.Table.from_batches(batches, schema=reader.schema))
    except UserError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{p}: not a readable Arrow IPC file ({one_line(exc)})") from None


def _named(p: Path, table: pa.Table) -> pa.Table:
    """``table``, once its schema's names are known to decode (Arrow does not check that they are UTF-8)."""
    try:
        table.schema.names, str(table.schema)
    except UnicodeDecodeError:
        raise UserError(f"{p}: corrupt schema (a column name is not valid UTF-8)") from None
    return table


def _validated(p: Path, batch: pa.RecordBatch, i: int) -> pa.RecordBatch:
    try:
        batch.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise UserError(f"{p}: corrupt record batch {i} ({one_line(exc)})") from None
    return batch


def is_trace(meta: dict) -> bool:
    """Whether metadata says the file is a simcache trace (not a request file or catalogue)."""
    return meta.get("format") == TRACE_FORMAT and meta.get("kind", "trace") == "trace"


def check_trace(path: str | Path, table: pa.Table, meta: dict) -> None:
    """Refuse a simcache trace whose schema or metadata disagrees with its rows (one UserError line).

    Checks the format version, the column types against :func:`trace_schema`, the metadata's
    ``rows``, ``dim`` and ``topk``, and (format 2) that the checksum entry is well formed, has one
    checksum per record batch and matches the rest of the metadata. Files that are not traces
    (no ``format`` in their metadata) pass unchecked.
    """
    if not is_trace(meta):
        return
    p = Path(path)
    version = meta.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise UserError(f"{p}: trace format version {version!r} is not supported "
                        f"(this version reads {', '.join(map(str, READABLE_FORMAT_VERSIONS))})")
    names = table.column_names
    if EMBEDDING not in names:
        raise UserError(f"{p}: the trace has no {EMBEDDING!r} column (columns: {', '.join(names)})")
    etype = table.schema.field(EMBEDDING).type
    if not (pa.types.is_fixed_size_list(etype) and pa.types.is_float32(etype.value_type)):
        raise UserError(f"{p}: trace column {EMBEDDING!r} has type {etype}, expected fixed_size_list<float32>")
    topk = table.schema.field(TOPK).type.list_size if TOPK in names and pa.types.is_fixed_size_list(
        table.schema.field(TOPK).type) else None
    expected = trace_schema(etype.list_size, topk, columns=[c for c in OPTIONAL_COLUMNS if c in names])
    for field in table.schema:
        want = expected.field(field.name).type if field.name in expected.names else None
        if want is None or field.type != want:
            raise UserError(f"{p}: trace column {field.name!r} has type {field.type}, "
                            f"expected {want if want is not None else 'no such column'}")
    for key, value in (("rows", table.num_rows), ("dim", etype.list_size), ("topk", topk)):
        if key in meta and meta[key] != value:
            raise UserError(f"{p}: the trace's metadata says {key} {meta[key]} but the file holds {value}")
    if version >= 2 or CHECKSUM_KEY in meta:
        _check_checksum_entry(p, meta, len(table.to_batches()))


def _check_checksum_entry(p: Path, meta: dict, n_batches: int) -> None:
    entry = meta.get(CHECKSUM_KEY)
    sums = entry.get("batches") if isinstance(entry, dict) else None
    if not isinstance(sums, list) or entry.get("algorithm") != CHECKSUM_ALGORITHM:
        raise UserError(f"{p}: the trace's metadata has no valid {CHECKSUM_KEY!r} entry (format version 2 needs one)")
    if len(sums) != n_batches:
        raise UserError(f"{p}: the trace's metadata lists {len(sums)} record batch checksums but the file "
                        f"holds {n_batches} record batches")
    if entry.get("metadata") != metadata_sha256(meta):
        raise UserError(f"{p}: corrupt metadata (it does not match its checksum)")


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_ipc(path: str | Path, schema: pa.Schema, batches: Iterable[list[pa.Array]]) -> Path:
    """Write record batches (lists of column arrays) as an uncompressed Arrow IPC file, atomically.

    The file is written to a temporary name beside ``path`` and renamed into place only when
    complete: an interrupted write leaves no file at the destination.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink:
            _write_batches(sink, schema, batches)
    return path


def ipc_bytes(schema: pa.Schema, batches: Iterable[list[pa.Array]]) -> bytes:
    """The bytes :func:`write_ipc` writes for the same schema and batches (e.g. to checksum them first)."""
    sink = pa.BufferOutputStream()
    _write_batches(sink, schema, batches)
    return sink.getvalue().to_pybytes()


def _write_batches(sink: pa.NativeFile, schema: pa.Schema, batches: Iterable[list[pa.Array]]) -> None:
    with pa.ipc.new_file(sink, schema) as writer:
        for arrays in batches:
            writer.write_batch(pa.record_batch(arrays, schema=schema))


def batch_checksum(batch: pa.RecordBatch) -> str:
    """Hex SHA-256 of a record batch's IPC message, exactly the bytes :func:`write_ipc` writes for it
    (header, body and padding): what format 2 records per batch and ``trace info --verify`` rehashes."""
    return hashlib.sha256(batch.serialize()).hexdigest()


def with_checksums(schema: pa.Schema, meta: dict, batches: Iterable[list[pa.Array]]) -> dict:
    """``meta`` plus its ``checksum`` entry: one :func:`batch_checksum` per batch, and the metadata's own."""
    bare = schema.remove_metadata()
    sums = [batch_checksum(pa.record_batch(arrays, schema=bare)) for arrays in batches]
    rest = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    entry = {"algorithm": CHECKSUM_ALGORITHM, "batches": sums, "arrow": pa.__version__,
             "metadata": metadata_sha256(rest)}
    return {**rest, CHECKSUM_KEY: entry}


def _fixed_list(values: np.ndarray, pa_type: pa.DataType) -> pa.Array:
    rows, width = values.shape
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=pa_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


@dataclass
class TraceColumns:
    """The columns of a trace, already in the final (time-sorted) order.

    Users and splits are given as codes into small label arrays, which keeps half a million rows
    cheap to hold; the writer expands them into the string columns of the schema.
    """

    timestamp: np.ndarray  # (m,) int64
    user_code: np.ndarray  # (m,) int64 index into user_labels
    user_labels: np.ndarray  # (n_users,) str raw user ids
    seq: np.ndarray  # (m,) int32
    n_items: np.ndarray  # (m,) int32
    split_code: np.ndarray  # (m,) int8 index into SPLITS
    embedding: np.ndarray  # (m, dim) float32
    topk: np.ndarray | None  # (m, k) int32, or None for a trace without top-k lists

    def __len__(self) -> int:
        return int(self.timestamp.size)

    def validate(self) -> None:
        m = len(self)
        for name in ("user_code", "seq", "n_items", "split_code"):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"{name} must have shape ({m},)")
        if self.embedding.ndim != 2 or self.embedding.shape[0] != m:
            raise ValueError("embedding must be (rows, dim)")
        if self.topk is not None and (self.topk.ndim != 2 or self.topk.shape[0] != m):
            raise ValueError("topk must be (rows, k)")
        if m and (np.diff(self.timestamp) < 0).any():
            raise ValueError("rows must be sorted by timestamp")


def write_trace(path: str | Path, cols: TraceColumns, meta: dict, *, batch_rows: int | None = None) -> Path:
    """Write ``cols`` with metadata ``meta`` to ``path`` atomically; return the path.

    ``batch_rows``: rows per record batch (default :data:`BATCH_ROWS`). The metadata written is
    ``meta`` plus its ``checksum`` entry (:func:`with_checksums`; the batches are built twice, once
    to checksum them, so that they are never all held in memory at once).
    """
    cols.validate()
    batch_rows = int(batch_rows or BATCH_ROWS)
    dim = cols.embedding.shape[1]
    k = cols.topk.shape[1] if cols.topk is not None else None
    bare = trace_schema(dim, k)
    users = pa.array(np.asarray(cols.user_labels).astype(str), type=pa.string())
    splits = pa.array(list(SPLITS), type=pa.string())

    def batches() -> Iterable[list[pa.Array]]:
        for lo in range(0, len(cols), batch_rows):
            hi = min(lo + batch_rows, len(cols))
            arrays = [
                pa.array(cols.timestamp[lo:hi], type=pa.int64()),
                users.take(pa.array(cols.user_code[lo:hi], type=pa.int64())),
                pa.array(cols.seq[lo:hi], type=pa.int32()),
                pa.array(cols.n_items[lo:hi], type=pa.int32()),
                splits.take(pa.array(cols.split_code[lo:hi].astype(np.int64))),
                _fixed_list(cols.embedding[lo:hi], pa.float32()),
            ]
            if cols.topk is not None:
                arrays.append(_fixed_list(cols.topk[lo:hi], pa.int32()))
            yield arrays

    schema = bare.with_metadata(encode_metadata(with_checksums(bare, meta, batches())))
    return write_ipc(path, schema, batches())


def write_requests(
    path: str | Path,
    vectors: np.ndarray,
    *,
    timestamp: np.ndarray | None = None,
    user_id: np.ndarray | None = None,
    seq: np.ndarray | None = None,
    n_items: np.ndarray | None = None,
    split: np.ndarray | None = None,
    topk: np.ndarray | None = None,
    metadata: dict | None = None,
    batch_rows: int | None = None,
) -> Path:
    """Write requests as an Arrow IPC file with the trace column names and types, atomically.

    Only the columns given are written (a full ``build-trace`` trace has all of them); ``metadata``
    goes under the schema key ``simcache`` (None: no schema metadata). ``batch_rows`` splits the
    file into record batches (default: one). Rows are written in the order given. Useful to turn
    vectors from another source into a memory-mappable request file.
    """
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {v.shape}")
    n, d = v.shape
    given = {TIMESTAMP: timestamp, USER: user_id, SEQ: seq, N_ITEMS: n_items, SPLIT: split}
    columns = {name: np.asarray(col) for name, col in given.items() if col is not None}
    top = np.ascontiguousarray(topk, dtype=np.int32) if topk is not None else None
    for name, col in [*columns.items(), (EMBEDDING, v), (TOPK, top)]:
        if col is not None and len(col) != n:
            raise ValueError(f"column {name} has {len(col)} rows, vectors have {n}")
    schema = trace_schema(d, top.shape[1] if top is not None else None,
                          encode_metadata(metadata) if metadata is not None else None, columns=list(columns))
    step = max(1, int(batch_rows or n or 1))

    def batches() -> Iterable[list[pa.Array]]:
        for start in range(0, n, step):
            sl = slice(start, start + step)
            arrays = [
                pa.array([str(x) for x in col[sl]], type=pa.string()) if _COLUMN_TYPES[name] == pa.string()
                else pa.array(col[sl], type=_COLUMN_TYPES[name])
                for name, col in columns.items()
            ]
            arrays.append(_fixed_list(v[sl], pa.float32()))
            if top is not None:
                arrays.append(_fixed_list(top[sl], pa.int32()))
            yield arrays

    return write_ipc(path, schema, batches())
