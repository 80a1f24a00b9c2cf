"""Proving a trace intact: ``simcache trace info --verify``.

A format-2 trace records the SHA-256 of every record batch's IPC message (header, body and
padding, exactly as written) and of its own metadata (:func:`recvae.trace.format.with_checksums`).
:func:`verify_trace` checks, in order:

1. the structure, as every reader does (:func:`~recvae.trace.format.read_ipc` and
   :func:`~recvae.trace.format.check_trace`: parseable, fully validated batches, schema and
   metadata consistent with the rows, the metadata matching its checksum), plus ``simcache``
   metadata that must decode (readers ignore undecodable metadata; verifying must not), and the
   schema message at the start equal to the footer's copy (metadata included);
2. each record batch message, walked from the start of the file independently of the footer,
   against its recorded checksum (a mismatch names the batch);
3. every other byte (the magic, the schema message, the end-of-stream marker, the footer) against
   the file this package's writer produces from the same schema and batches, which is
   byte-identical for an intact file written with the same pyarrow version.

A trace without checksums (format 1, or a request file) gets step 1 only, and the result says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from recvae.errors import UserError
from recvae.trace import format as tf


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_trace` proved: ``checked`` is False when the file records no checksums."""

    path: Path
    batches: int
    checked: bool
    layout_checked: bool = True

    def message(self) -> str:
        """One line for the CLI."""
        if not self.checked:
            return (f"{self.path}: structure valid ({self.batches} record batches), but the file records no "
                    "checksums (a format-1 trace or a request file): its bytes cannot be verified")
        layout = "" if self.layout_checked else " (written by another pyarrow version: footer layout not compared)"
        return f"OK {self.path}: {self.batches} record batches and the metadata match their checksums{layout}"


def verify_trace(path: str | Path) -> Verification:
    """Verify ``path`` (see the module docstring); any corruption is one :class:`UserError` line."""
    p = Path(path)
    table = tf.read_ipc(p)
    _check_metadata_decodes(p, table.schema)
    meta = tf.decode_metadata(table.schema, p)
    tf.check_trace(p, table, meta)
    batches = table.to_batches()
    with pa.memory_map(str(p), "r") as source:
        data = source.read_buffer()
    _check_schema_copies(p, data, table.schema)
    entry = meta.get(tf.CHECKSUM_KEY)
    if not tf.is_trace(meta) or not isinstance(entry, dict):
        return Verification(p, len(batches), checked=False)
    _check_batch_messages(p, data, entry["batches"])
    same_arrow = entry.get("arrow") == pa.__version__
    if same_arrow:
        _check_layout(p, data, table.schema, batches)
    return Verification(p, len(batches), checked=True, layout_checked=same_arrow)


def _check_metadata_decodes(p: Path, schema: pa.Schema) -> None:
    """Refuse ``simcache`` metadata that is not a JSON object: readers ignore it (the rows are still
    usable), but a verification that then found "no checksums" would pass a corrupted checksum entry."""
    raw = (schema.metadata or {}).get(tf.METADATA_KEY)
    if raw is None:
        return
    try:
        ok = isinstance(json.loads(raw), dict)
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise UserError(f"{p}: corrupt metadata (the {tf.METADATA_KEY.decode()!r} entry is not a JSON object)")


def _check_schema_copies(p: Path, data: pa.Buffer, schema: pa.Schema) -> None:
    """The schema message at the start must equal the footer's copy (which readers use), metadata
    included: a damaged footer schema could otherwise drop the metadata that names the checksums,
    or the pyarrow version that decides whether the layout is compared."""
    try:
        first = pa.ipc.read_message(pa.BufferReader(data.slice(8)))
        same = first.type == "schema" and pa.ipc.read_schema(first).equals(schema, check_metadata=True)
    except (OSError, pa.ArrowException, UnicodeDecodeError):
        same = False
    if not same:
        raise UserError(f"{p}: corrupt schema (the copy at the start of the file differs from the footer's)")


def _check_batch_messages(p: Path, data: pa.Buffer, sums: list[str]) -> None:
    """Walk the IPC messages after the magic: one schema, then one record batch per checksum."""
    start = 8  # the magic, padded to 8 bytes
    stream = pa.BufferReader(data.slice(start))
    try:
        first = pa.ipc.read_message(stream)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{p}: corrupt schema message at the start of the file ({tf.one_line(exc)})") from None
    if first.type != "schema":
        raise UserError(f"{p}: corrupt: the file does not start with a schema message")
    for i, expected in enumerate(sums):
        lo = stream.tell()
        try:
            message = pa.ipc.read_message(stream)
        except (OSError, pa.ArrowException) as exc:
            raise UserError(f"{p}: corrupt record batch {i} of {len(sums)} ({tf.one_line(exc)})") from None
        hi = stream.tell()
        actual = hashlib.sha256(memoryview(data)[start + lo : start + hi]).hexdigest()
        if message.type != "record batch" or actual != expected:
            raise UserError(f"{p}: corrupt record batch {i} of {len(sums)} (it does not match its checksum)")


class _Comparer:
    """A write-only file that compares what is written with ``data`` and remembers the first difference."""

    def __init__(self, data: pa.Buffer) -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.first_difference: int | None = None
        self.closed = False

    def write(self, chunk: bytes) -> int:
        chunk = memoryview(chunk).cast("B")
        n = len(chunk)
        if self.first_difference is None and self.data[self.pos : self.pos + n] != chunk:
            given = bytes(self.data[self.pos : self.pos + n])
            k = next((j for j in range(min(n, len(given))) if given[j] != chunk[j]), min(n, len(given)))
            self.first_difference = self.pos + k
        self.pos += n
        return n

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _check_layout(p: Path, data: pa.Buffer, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
    sink = _Comparer(data)
    with pa.PythonFile(sink, mode="w") as f, pa.ipc.new_file(f, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    if sink.first_difference is None and sink.pos != len(data):
        sink.first_difference = min(sink.pos, len(data))
    if sink.first_difference is not None:
        raise UserError(f"{p}: corrupt at byte {sink.first_difference} of {len(data)} (outside the record "
                        "batches: the magic, schema or footer differs from what the writer wrote)")
