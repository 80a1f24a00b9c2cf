"""Column names and types of a simcache trace (an Arrow IPC file), shared by writers and readers.

One row per request (one embedding of one user at one point of their history), rows sorted by
``timestamp`` with a deterministic tie-break. The schema metadata key ``simcache`` holds a JSON
object describing how the trace was produced (dataset, preprocessing, checkpoint hash, schedule,
package version, seed, item vocabulary for ``topk``).
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = "timestamp"  # int64, Unix seconds (UTC) of the newest interaction included
USER = "user_id"  # string, the dataset's raw user id
SEQ = "seq"  # int32, 0-based sequence number of this embedding within the user
N_ITEMS = "n_items"  # int32, number of interactions the embedding includes
SPLIT = "split"  # string: "train", "validation" or "test" (the user's protocol split)
EMBEDDING = "embedding"  # fixed_size_list<float32>[dim], the encoder mean
TOPK = "topk"  # fixed_size_list<int32>[k], item indices into the vocabulary; optional column

METADATA_KEY = b"simcache"
SPLITS = ("train", "validation", "test")


def trace_schema(dim: int, topk: int | None, metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
    """The Arrow schema of a trace with embedding dimension ``dim`` and ``topk`` items (None: no column)."""
    fields = [
        pa.field(TIMESTAMP, pa.int64(), nullable=False),
        pa.field(USER, pa.string(), nullable=False),
        pa.field(SEQ, pa.int32(), nullable=False),
        pa.field(N_ITEMS, pa.int32(), nullable=False),
        pa.field(SPLIT, pa.string(), nullable=False),
        pa.field(EMBEDDING, pa.list_(pa.float32(), dim), nullable=False),
    ]
    if topk:
        fields.append(pa.field(TOPK, pa.list_(pa.int32(), topk), nullable=False))
    return pa.schema(fields, metadata=metadata)
