"""The option vocabularies of a replay, in one place (CLI choices, validation and help use these).

Cheap to import: no numba, FAISS or torch.
"""

from __future__ import annotations

#: distance between request vectors: Euclidean, or 1 - cosine similarity (vectors unit-normalised)
METRICS = ("l2", "cosine")
#: nearest-neighbour index over the cache: exact flat search, or approximate HNSW / IVF
INDEXES = ("flat", "hnsw", "ivf")
#: ``block`` (batched searches, fast) or ``plain`` (one search per request, the reference)
ENGINES = ("block", "plain")
#: where the flat search runs; ``auto`` takes a GPU when FAISS GPU or CUDA torch sees one
DEVICES = ("auto", "cpu", "cuda")
#: approximation-cost models h(d) (see :class:`simcache.cache.costs.CostModel`)
COST_KINDS = ("zero", "linear", "power")
