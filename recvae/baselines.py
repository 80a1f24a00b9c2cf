"""Non-learned scorers evaluated with the same code as the model: the floor every model must beat."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class PopularityScorer:
    """Score every item by the number of training users who have it; the same ranking for all users.

    Ties (e.g. items no training user has) fall back to the item index, like every ranking in
    :mod:`recvae.metrics`.
    """

    def __init__(self, train: sp.spmatrix) -> None:
        counts = np.asarray(sp.csr_matrix(train).getnnz(axis=0), dtype=np.float32)
        self.counts = torch.from_numpy(counts)

    def __call__(self, fold_in: sp.spmatrix) -> torch.Tensor:
        if fold_in.shape[1] != self.counts.numel():
            raise ValueError(f"fold-in has {fold_in.shape[1]} items, the baseline {self.counts.numel()}")
        return self.counts.repeat(fold_in.shape[0], 1)
