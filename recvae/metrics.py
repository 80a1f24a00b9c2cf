"""Per-user ranking metrics of the Mult-VAE protocol, vectorised in torch (CPU or GPU).

Definitions (spec section 4), for a user with held-out set ``R`` and ranked list ``r_1, r_2, ...``:

* ``Recall@k = |top_k ∩ R| / min(k, |R|)``
* ``NDCG@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{j<=k} [r_j in R] / log2(j + 1)`` and
  ``IDCG@k = sum_{j <= min(k, |R|)} 1 / log2(j + 1)``.

Ranking: descending score; ties are broken by the lower item index (a stable sort), so results
are deterministic and identical on every device. Items the caller wants excluded (fold-in items)
are given the score ``-inf`` and so rank after every finite score.

The functions take only users with ``|R| >= 1``; :func:`recvae.evaluation.evaluate` removes the
others (and counts them) before calling them, so no metric is ever NaN.
"""

from __future__ import annotations

import torch


def ranked_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(batch, min(k, n_items)) item indices of the ``k`` best scores, best first, ties by index."""
    k = min(int(k), scores.shape[-1])
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    return order[:, :k]


def discounts(k: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(k,) position discounts ``1 / log2(j + 1)`` for ``j = 1..k`` (float64)."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device))


def _check(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if hits.dim() != 2 or n_relevant.shape != hits.shape[:1]:
        raise ValueError(f"hits must be (batch, depth) and n_relevant (batch,), got {tuple(hits.shape)}, {tuple(n_relevant.shape)}")
    if n_relevant.numel() and int(n_relevant.min()) < 1:
        raise ValueError("users without held-out items have no defined metric; filter them out first")


def recall_at_k(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """(batch,) float64 Recall@k from ``hits`` (batch, depth >= k or all items): hits[u, j] = rank j+1 is relevant."""
    _check(hits, n_relevant, k)
    found = hits[:, :k].to(torch.float64).sum(dim=-1)
    return found / torch.clamp(n_relevant.to(torch.float64), max=k)


def ndcg_at_k(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """(batch,) float64 NDCG@k from ``hits`` as in :func:`recall_at_k`."""
    _check(hits, n_relevant, k)
    top = hits[:, :k].to(torch.float64)
    disc = discounts(k, hits.device)
    dcg = (top * disc[: top.shape[1]]).sum(dim=-1)
    ideal = torch.cumsum(disc, dim=0)  # ideal[m - 1] = IDCG with m relevant items in the top k
    idcg = ideal[torch.clamp(n_relevant, max=k).long() - 1]
    return dcg / idcg


def ranking_metrics(scores: torch.Tensor, relevant: torch.Tensor, ks: tuple[int, ...] = (20, 50, 100)) -> dict[str, torch.Tensor]:
    """Per-user ``ndcg@k`` and ``recall@k`` for every k, each a (batch,) float64 tensor.

    ``scores`` (batch, n_items) float, excluded items already at ``-inf``; ``relevant`` (batch,
    n_items) bool, every row with at least one True.
    """
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n_relevant = relevant.sum(dim=-1)
    top = ranked_items(scores, max(ks))
    hits = torch.gather(relevant, 1, top)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at_k(hits, n_relevant, k)
        out[f"recall@{k}"] = recall_at_k(hits, n_relevant, k)
    return out
