"""What a model must provide for the trace builder to embed users' growing histories.

The trace builder (:func:`recvae.trace.build.write_trace_for`) is model-neutral: it computes the
schedule (which prefix of which user is embedded, and when), sorts and writes the rows, records
the metadata and the item catalogue. Everything model-specific sits behind :class:`TraceEncoder`.

Adding a model (Mult-VAE, ALS fold-in, MF, AutoRec, metadata profiles, ...) means one subclass:

* ``model_type`` (class attribute): a short registry name, e.g. ``"mult-vae"``; recorded in the
  trace metadata as ``model.type`` and in the catalogue as ``model``;
* :attr:`dim` and :attr:`n_items`: embedding dimension and the size of the item vocabulary the
  model was trained on (the builder refuses data with another vocabulary size);
* :meth:`description`: what goes into the trace metadata (:class:`EncoderDescription`: what the
  embedding is, the checkpoint's identity, the model's configuration);
* :meth:`embed`: the embeddings of a :class:`~recvae.trace.prefix.PrefixBatch` of prefixes,
  ``(len(batch), dim)`` float32, each row exactly what the model gives for that prefix alone
  (the trace tests compare against a direct computation). Rows of one user come consecutively
  with growing lengths, so a model may reuse work between them (RecVAE keeps running sums of its
  first layer; an ALS fold-in may solve each prefix from scratch);

and, optionally:

* :meth:`item_scores` (the model's score of every vocabulary item for given embeddings): enables
  top-k lists, taken by :meth:`top_items` with the prefix's own items excluded; or override
  :meth:`top_items` directly;
* :meth:`catalogue`: one vector (and bias) per vocabulary item in the embedding's space, so that
  ``embedding @ vectors.T + bias`` ranks items as the model does (object caches serve from it);
* :meth:`bind`: the histories and raw interactions about to be embedded (models that embed
  ratings or user metadata take them from there);
* :meth:`iter_chunks`: how a large batch is cut and computed (default: user-aligned chunks of
  :attr:`chunk_rows` rows, one after the other); override it to run chunks in parallel.

The same inputs must give the same bytes: no randomness, no dependence on the chunking (the
contract test in ``tests/recvae/trace/test_trace_encoder.py`` builds a trace through a throwaway
encoder and checks this).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch, topk_outside_prefix, user_aligned_chunks

#: One computed chunk: rows ``lo:hi`` of the batch, their embeddings and top-k lists (or None).
Chunk = tuple[int, int, np.ndarray, "np.ndarray | None"]


@dataclass(frozen=True)
class EncoderDescription:
    """What the trace metadata says about the model.

    ``embedding``: what a trace row's vector is, in words (e.g. RecVAE's "encoder mean (mu),
    dropout off, float32"). ``checkpoint_sha256``: identity of the trained model ("" when it has
    no file). ``details``: further JSON-serialisable facts, recorded under ``model`` beside the
    checksum (RecVAE: ``config``, ``epoch``, ``best_score``).
    """

    embedding: str
    checkpoint_sha256: str = ""
    details: dict = field(default_factory=dict)


class TraceEncoder(ABC):
    """A model as the trace builder sees it (see the module docstring for the recipe)."""

    #: Short registry name of the model family, recorded in the metadata.
    model_type: str = ""
    #: Rows per chunk of the default :meth:`iter_chunks` (bounds memory of one :meth:`embed` call).
    chunk_rows: int = 4096

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding dimension."""

    @property
    @abstractmethod
    def n_items(self) -> int:
        """Number of items of the vocabulary the model was trained on (its item indices)."""

    @abstractmethod
    def description(self) -> EncoderDescription:
        """What the trace metadata records about the model."""

    @abstractmethod
    def embed(self, batch: PrefixBatch) -> np.ndarray:
        """``(len(batch), dim)`` float32: the embedding of each prefix of ``batch``."""

    @property
    def device(self) -> str:
        """Where the encoder computes, for the build summary."""
        return "cpu"

    # -- optional ------------------------------------------------------------------------------
    def prepare(self, topk: int) -> None:
        """Set up what embedding with ``topk``-item lists needs (called once, before the timed part)."""

    def bind(self, histories: object, interactions: object, items: np.ndarray) -> None:
        """Learn about the histories about to be embedded, before :meth:`prepare` (optional).

        ``histories``: the :class:`recvae.trace.history.Histories` of the users in the trace (every
        :class:`PrefixBatch` indexes its ``items``/``offsets``); ``interactions``: the dataset's raw
        interactions; ``items``: the vocabulary's raw item ids. Models that need more than the
        items of a prefix (ratings, user metadata) take them from here.
        """

    def item_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``(m, n_items)`` float32 scores of every vocabulary item (higher = recommended first).

        Optional: implementing it gives the trace its top-k lists.
        """
        raise NotImplementedError

    @property
    def supports_topk(self) -> bool:
        """Whether :meth:`top_items` works: :meth:`item_scores` or :meth:`top_items` is overridden."""
        cls = type(self)
        return cls.item_scores is not TraceEncoder.item_scores or cls.top_items is not TraceEncoder.top_items

    def top_items(self, batch: PrefixBatch, embeddings: np.ndarray, k: int) -> np.ndarray:
        """``(len(batch), k)`` int32: the ``k`` best vocabulary items of each row outside its prefix.

        By decreasing :meth:`item_scores`; ``-1`` where fewer than ``k`` items are left.
        """
        scores = np.array(self.item_scores(embeddings), dtype=np.float32)  # a copy: modified in place
        return topk_outside_prefix(torch.from_numpy(scores), batch, k).numpy()

    def catalogue(self, item_ids: np.ndarray) -> Catalogue | None:
        """The model's item vectors for the vocabulary whose raw ids are ``item_ids`` (None: none).

        Vectors (and bias) in vocabulary order, in the embedding space, such that
        ``embedding @ vectors.T + bias`` are the model's item scores. The builder adds the
        metadata that ties the catalogue to the trace (kind, vocabulary, dimension, size).
        """
        return None

    def iter_chunks(self, batch: PrefixBatch, topk: int) -> Iterator[Chunk]:
        """Yield ``(lo, hi, embeddings, top)`` for consecutive row ranges of ``batch``, in order.

        Ranges never split a user's rows. ``top`` is ``(hi - lo, topk)`` int32, or None when
        ``topk`` is 0.
        """
        for lo, hi in user_aligned_chunks(batch.owner, self.chunk_rows):
            part = batch.slice(lo, hi)
            emb = np.ascontiguousarray(self.embed(part), dtype=np.float32)
            yield lo, hi, emb, (self.top_items(part, emb, topk) if topk else None)
