"""Shared plumbing of the PyTorch models: batches of CSR rows on a device, Adam, state round trips."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from recvae.model import Rows, as_input


def batches(matrix: sp.csr_matrix, order: np.ndarray, batch_size: int, device: torch.device) -> Iterator[Rows]:
    """Model inputs for the rows ``order`` of ``matrix`` in batches (the last one may be partial)."""
    for start in range(0, order.size, batch_size):
        yield as_input(matrix[order[start : start + batch_size]], device)


def cpu_state(module: torch.nn.Module) -> dict:
    """A module's state dict as CPU tensors (what checkpoints hold)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
