"""RecVAE as a :class:`~recvae.trace.encoder.TraceEncoder`: encoder means, decoder top-k, decoder catalogue.

The embedding of a prefix is the encoder mean ``mu`` (dropout off) of its binary row, computed
incrementally by :class:`~recvae.trace.prefix.PrefixEmbedder`; the item scores are the decoder's
logits ``mu @ W.T + b``, so the catalogue is the decoder's weight rows and bias.
:func:`load_encoder` gives the encoder of a checkpoint (or of a model trained on the spot), as
``simcache build-trace`` uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from recvae.errors import UserError
from recvae.model import RecVAE
from recvae.trace.catalogue import Catalogue
from recvae.trace.encoder import Chunk, EncoderDescription, TraceEncoder
from recvae.trace.prefix import PrefixBatch, PrefixEmbedder

log = logging.getLogger(__name__)

#: What a RecVAE trace row's vector is.
EMBEDDING_TEXT = "encoder mean (mu), dropout off, float32"


class RecVAEEncoder(TraceEncoder):
    """Embeds prefixes with a :class:`RecVAE`'s encoder mean.

    ``checkpoint_sha256`` and ``info`` (e.g. ``epoch``, ``best_score``) are recorded in the trace
    metadata beside the architecture. The model is moved to ``device``; ``chunk_rows``,
    ``batch_rows``, ``workers`` and ``backend`` tune :class:`PrefixEmbedder` (None: its defaults).
    """

    model_type = "recvae"

    def __init__(
        self,
        model: RecVAE,
        *,
        checkpoint_sha256: str = "",
        info: dict | None = None,
        device: str | torch.device = "cpu",
        chunk_rows: int | None = None,
        batch_rows: int | None = None,
        workers: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model = model
        self.checkpoint_sha256 = str(checkpoint_sha256)
        self.info = dict(info or {})
        self._device = torch.device(device)
        self._tuning = {"chunk_rows": chunk_rows, "batch_rows": batch_rows, "workers": workers, "backend": backend}
        model.eval()
        if self._device.type != "cpu":
            model.to(self._device)
        self._embedders: dict[int, PrefixEmbedder] = {}

    @property
    def dim(self) -> int:
        return int(self.model.cfg.latent_dim)

    @property
    def n_items(self) -> int:
        return int(self.model.cfg.n_items)

    @property
    def device(self) -> str:
        return str(self._device)

    def description(self) -> EncoderDescription:
        return EncoderDescription(
            embedding=EMBEDDING_TEXT,
            checkpoint_sha256=self.checkpoint_sha256,
            details={"config": self.model.cfg.to_dict(), **self.info},
        )

    def embedder(self, topk: int) -> PrefixEmbedder:
        """The incremental embedder for ``topk``-item lists (built once per ``topk``)."""
        if topk not in self._embedders:
            tuning = {n: v for n, v in self._tuning.items() if v is not None}
            self._embedders[topk] = PrefixEmbedder(self.model, topk=topk, device=self._device, **tuning)
        return self._embedders[topk]

    def prepare(self, topk: int) -> None:
        self.embedder(topk)

    def embed(self, batch: PrefixBatch) -> np.ndarray:
        return self.embedder(0)(batch)[0]

    def item_scores(self, embeddings: np.ndarray) -> np.ndarray:
        dec = self.model.decoder
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32), device=dec.weight.device)
            return dec(x).float().cpu().numpy()

    def top_items(self, batch: PrefixBatch, embeddings: np.ndarray, k: int) -> np.ndarray:
        emb = self.embedder(k)
        mu = torch.as_tensor(np.asarray(embeddings, dtype=np.float32), device=emb.device)
        return emb.top_items(mu, batch).cpu().numpy()

    def iter_chunks(self, batch: PrefixBatch, topk: int) -> Iterator[Chunk]:
        """:meth:`PrefixEmbedder.iter_chunks`: chunks in parallel threads on the CPU."""
        return self.embedder(topk).iter_chunks(batch)

    def catalogue(self, item_ids: np.ndarray) -> Catalogue:
        """The decoder's weight row and bias of every vocabulary item."""
        dec = self.model.decoder
        return Catalogue(
            ids=item_ids,
            vectors=dec.weight.detach().float().cpu().numpy().copy(),
            bias=dec.bias.detach().float().cpu().numpy().copy(),
            metadata={
                "model": self.model_type,
                "checkpoint_sha256": self.checkpoint_sha256,
                "vector": "decoder weight row of the item",
                "score": "embedding @ vector + bias (the decoder logit)",
            },
        )


def load_encoder(
    prepared,
    dataset: str,
    checkpoint: str | Path | None,
    *,
    device: torch.device,
    seed: int = 0,
    train_overrides: dict | None = None,
    progress: bool = True,
) -> RecVAEEncoder:
    """The encoder of the checkpoint ``checkpoint``, or (None) of a model trained on ``prepared``.

    Without a checkpoint a model is trained with the dataset's defaults (``seed`` and
    ``train_overrides`` change the settings), or a cached one with the same settings is reused.
    """
    from recvae.checkpoint import load_model

    if checkpoint is None:
        from recvae.training import TrainConfig, train_or_reuse

        overrides = {"seed": seed, "device": str(device), **(train_overrides or {})}
        config = TrainConfig.for_dataset(dataset, **overrides)
        log.info("no --model given: training (or reusing) a %s model", dataset)
        model_path = train_or_reuse(prepared, config, progress=progress)
    else:
        model_path = Path(checkpoint)
        if not model_path.exists():
            raise UserError(f"{model_path}: no such checkpoint")
    net, info = load_model(model_path, device=str(device), expect=prepared)
    return RecVAEEncoder(
        net,
        checkpoint_sha256=str(info.get("identity") or info.get("sha256", "")),  # tensors + config, not file bytes
        info={k: info[k] for k in ("epoch", "best_score") if k in info},
        device=device,
    )
