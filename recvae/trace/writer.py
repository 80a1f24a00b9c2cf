"""Writing a trace: time-sorted rows as an uncompressed Arrow IPC file, atomically.

The file is written to a temporary name beside the destination, in record batches of a fixed
number of rows, and renamed into place only when complete: an interrupted build leaves no file
at the destination. Uncompressed IPC keeps the file memory-mappable (zero-copy reads).
Given the same arrays and metadata, the bytes written are identical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recvae.storage import atomic_path
from recvae.trace import schema as S

#: Rows per record batch; fixed so that identical inputs give identical bytes.
BATCH_ROWS = 65536


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
    split_code: np.ndarray  # (m,) int8 index into schema.SPLITS
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


def global_order(timestamp: np.ndarray, user_rank: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The trace's row order: by timestamp, then user (ascending raw id), then sequence number."""
    return np.lexsort((seq, user_rank, timestamp))


def encode_metadata(meta: dict) -> dict[bytes, bytes]:
    """Schema metadata: one JSON object under the ``simcache`` key (keys sorted, deterministic)."""
    return {S.METADATA_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()}


def decode_metadata(schema: pa.Schema) -> dict:
    """The JSON object written by :func:`encode_metadata` ({} when absent)."""
    raw = (schema.metadata or {}).get(S.METADATA_KEY)
    return json.loads(raw) if raw else {}


def read_metadata(path: str | Path) -> dict:
    """The ``simcache`` metadata of a trace file, without reading its rows."""
    with pa.memory_map(str(path), "r") as source:
        return decode_metadata(pa.ipc.open_file(source).schema)


def _fixed_list(values: np.ndarray, pa_type: pa.DataType) -> pa.Array:
    rows, width = values.shape
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=pa_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


def write_trace(path: str | Path, cols: TraceColumns, meta: dict, *, batch_rows: int | None = None) -> Path:
    """Write ``cols`` with metadata ``meta`` to ``path`` atomically; return the path.

    ``batch_rows``: rows per record batch (default :data:`BATCH_ROWS`).
    """
    cols.validate()
    batch_rows = int(batch_rows or BATCH_ROWS)
    dim = cols.embedding.shape[1]
    k = cols.topk.shape[1] if cols.topk is not None else None
    schema = S.trace_schema(dim, k, metadata=encode_metadata(meta))
    users = pa.array(np.asarray(cols.user_labels).astype(str), type=pa.string())
    splits = pa.array(list(S.SPLITS), type=pa.string())
    path = Path(path)
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
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
                writer.write_batch(pa.record_batch(arrays, schema=schema))
    return path
