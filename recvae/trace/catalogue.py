"""A model's item catalogue: one vector (and bias) per vocabulary item, as an Arrow IPC file.

The catalogue puts the items in the users' embedding space: for RecVAE, item ``i``'s vector is
row ``i`` of the decoder's weight and its bias the decoder's bias, so ``x @ vectors.T + bias``
are the model's scores of every item for the embedding ``x``. ``build-trace`` writes it beside
the trace as ``<trace stem>.catalogue.arrow`` (:func:`recvae.trace.format.catalogue_path`).

File: an uncompressed Arrow IPC file (memory-mappable), one row per item in vocabulary order,
columns ``item_id`` (string, the dataset's raw id), ``vector`` (fixed_size_list<float32>[d]) and
``bias`` (float32, only when the model has one); the schema metadata key ``simcache`` holds, in
the trace's encoding, at least ``kind`` ("catalogue"), ``model``, ``checkpoint_sha256``,
``vocabulary_sha256``, ``dim`` and ``n_items``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from recvae.errors import UserError
from recvae.trace import format as tf

KIND = "catalogue"
ITEM_ID = "item_id"
VECTOR = "vector"
BIAS = "bias"


@dataclass
class Catalogue:
    """Item vectors in vocabulary order.

    ``ids``: (n,) object array of str, the raw item ids; ``vectors``: (n, d) float32;
    ``bias``: (n,) float32 or None; ``metadata``: the JSON object of the file.
    """

    ids: np.ndarray
    vectors: np.ndarray
    bias: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = np.asarray([str(i) for i in np.asarray(self.ids).tolist()], dtype=object).reshape(-1)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.bias is not None:
            self.bias = np.asarray(self.bias, dtype=np.float32)
        n = self.ids.size
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n or self.vectors.shape[1] < 1:
            raise ValueError(f"vectors must be ({n}, d) with d >= 1, got {self.vectors.shape}")
        if self.bias is not None and self.bias.shape != (n,):
            raise ValueError(f"bias must be ({n},), got {self.bias.shape}")

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``(m, n)`` float32 model scores ``x @ vectors.T + bias`` of every item for embeddings ``x``."""
        s = np.asarray(x, dtype=np.float32) @ self.vectors.T
        return s + self.bias if self.bias is not None else s


def _schema_and_columns(catalogue: Catalogue) -> tuple[pa.Schema, list[pa.Array]]:
    n, d = catalogue.vectors.shape
    fields = [pa.field(ITEM_ID, pa.string(), nullable=False),
              pa.field(VECTOR, pa.list_(pa.float32(), d), nullable=False)]
    arrays = [pa.array(list(catalogue.ids), type=pa.string()), tf._fixed_list(catalogue.vectors, pa.float32())]
    if catalogue.bias is not None:
        fields.append(pa.field(BIAS, pa.float32(), nullable=False))
        arrays.append(pa.array(catalogue.bias, type=pa.float32()))
    meta = {**catalogue.metadata, "kind": KIND, "dim": int(d), "n_items": int(n)}
    return pa.schema(fields, metadata=tf.encode_metadata(meta)), arrays


def catalogue_bytes(catalogue: Catalogue) -> bytes:
    """The exact bytes :func:`write_catalogue` writes (to checksum a catalogue before writing it)."""
    schema, arrays = _schema_and_columns(catalogue)
    return tf.ipc_bytes(schema, [arrays])


def write_catalogue(path: str | Path, catalogue: Catalogue) -> Path:
    """Write ``catalogue`` to ``path`` atomically, as one record batch.

    ``kind``, ``dim`` and ``n_items`` are set in its metadata from the data.
    """
    schema, arrays = _schema_and_columns(catalogue)
    return tf.write_ipc(path, schema, [arrays])


def read_catalogue(path: str | Path) -> Catalogue:
    """Read a catalogue file (memory-mapped: ``vectors`` and ``bias`` are read-only views of it).

    Each problem is one :class:`~recvae.errors.UserError` line naming the file: missing file, not
    an Arrow IPC file or a corrupt one (:func:`recvae.trace.format.read_ipc`), another kind of file (e.g. a trace), missing or mistyped columns, no
    rows, duplicate or null ids, non-finite vectors or biases, metadata disagreeing with the data.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such catalogue file")
    table = tf.read_ipc(p)
    meta = tf.decode_metadata(table.schema, p)
    if meta.get("kind", KIND) != KIND:
        raise UserError(f"{p}: not a catalogue (its metadata says kind {meta.get('kind')!r})")
    names = table.column_names
    if VECTOR not in names or ITEM_ID not in names:
        what = "a trace, not a catalogue" if tf.EMBEDDING in names else "not a catalogue"
        raise UserError(f"{p}: {what}: needs columns {ITEM_ID!r} and {VECTOR!r} (has {', '.join(names)})")
    vtype = table.schema.field(VECTOR).type
    if not (pa.types.is_fixed_size_list(vtype) and pa.types.is_float32(vtype.value_type)):
        raise UserError(f"{p}: column {VECTOR!r} has type {vtype}, expected fixed_size_list<float32>")
    if not (pa.types.is_string(table.schema.field(ITEM_ID).type)):
        raise UserError(f"{p}: column {ITEM_ID!r} has type {table.schema.field(ITEM_ID).type}, expected string")
    n, d = table.num_rows, vtype.list_size
    if n == 0 or d < 1:
        raise UserError(f"{p}: the catalogue is empty ({n} items of dimension {d})")
    for name in (ITEM_ID, VECTOR, *([BIAS] if BIAS in names else [])):
        if table.column(name).null_count:
            raise UserError(f"{p}: column {name!r} has missing values")
    table = table.combine_chunks()
    vectors = table.column(VECTOR).chunk(0).flatten().to_numpy().reshape(n, d)
    bias = None
    if BIAS in names:
        if not pa.types.is_float32(table.schema.field(BIAS).type):
            raise UserError(f"{p}: column {BIAS!r} has type {table.schema.field(BIAS).type}, expected float32")
        bias = table.column(BIAS).chunk(0).to_numpy()
    ids = np.asarray(table.column(ITEM_ID).to_pylist(), dtype=object)
    _check_values(p, ids, vectors, bias)
    for key, value in (("dim", d), ("n_items", n)):
        if key in meta and meta[key] != value:
            raise UserError(f"{p}: metadata says {key} {meta[key]} but the file holds {value}")
    return Catalogue(ids=ids, vectors=vectors, bias=bias, metadata=meta)


def _check_values(p: Path, ids: np.ndarray, vectors: np.ndarray, bias: np.ndarray | None) -> None:
    unique, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise UserError(f"{p}: item id {str(unique[counts > 1][0])!r} appears {int(counts.max())} times")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"{p}: the vector of item {ids[row]!r} (row {row}) is not finite")
    if bias is not None and not np.isfinite(bias).all():
        row = int(np.flatnonzero(~np.isfinite(bias))[0])
        raise UserError(f"{p}: the bias of item {ids[row]!r} (row {row}) is not finite")
