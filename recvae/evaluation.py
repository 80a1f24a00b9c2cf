"""Fold-in -> held-out evaluation shared by every scorer (the model and the baselines).

A *scorer* is any callable mapping a CSR batch of fold-in rows (batch, n_items) to a score
matrix of the same shape (numpy array or torch tensor, any device). :func:`evaluate` excludes the
fold-in items (score ``-inf``), ranks, and averages the per-user metrics of
:mod:`recvae.metrics` over the users that have at least one held-out item; the others are counted
in ``n_excluded`` and never enter a mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from recvae.errors import UserError
from recvae.metrics import ranking_metrics
from recvae.model import RecVAE, SparseRows, as_input

Scorer = Callable[[sp.csr_matrix], "np.ndarray | torch.Tensor"]

#: The three numbers the papers report, in their order.
HEADLINE = ("ndcg@100", "recall@20", "recall@50")


class ModelScorer:
    """Decoder logits at ``z = mu`` for the fold-in rows (the RecVAE evaluation scores)."""

    def __init__(self, model: RecVAE, device: torch.device | str = "cpu") -> None:
        self.model = model
        self.device = torch.device(device)

    def __call__(self, fold_in: sp.csr_matrix) -> torch.Tensor:
        return self.model.score(as_input(fold_in, self.device))


def _as_scores(out: "np.ndarray | torch.Tensor", shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    if isinstance(out, np.ndarray):
        scores = torch.from_numpy(np.array(out, dtype=np.float32))  # own copy: filled in place below
    elif isinstance(out, torch.Tensor):
        scores = out.detach().to(device=device, dtype=torch.float32)
    else:
        raise TypeError(f"scorer returned {type(out).__name__}, expected a numpy array or torch tensor")
    if tuple(scores.shape) != shape:
        raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected {shape}")
    return scores.to(device)


def evaluate(
    scorer: Scorer,
    fold_in: sp.csr_matrix,
    held_out: sp.csr_matrix,
    ks: Sequence[int] = (20, 50, 100),
    *,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    per_user: bool = False,
) -> dict:
    """Metrics of ``scorer`` on (fold-in, held-out) rows: mean and standard error per metric.

    Returns ``{"n_users", "n_evaluated", "n_excluded", "ks", "metrics": {"ndcg@100": {"mean",
    "se"}, ...}}`` (plus ``"per_user"``: name -> float64 array over evaluated users, with
    ``"users"`` their row indices, when ``per_user``). The standard error is
    ``std / sqrt(n)`` (population std, as in the Mult-VAE reference code).
    Raises :class:`UserError` when no user has a held-out item.
    """
    fold_in = sp.csr_matrix(fold_in)
    held_out = sp.csr_matrix(held_out)
    if fold_in.shape != held_out.shape:
        raise ValueError(f"fold-in {fold_in.shape} and held-out {held_out.shape} differ in shape")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n_users, n_items = fold_in.shape
    users = np.flatnonzero(held_out.getnnz(axis=1) > 0)
    if users.size == 0:
        raise UserError(f"nothing to evaluate: none of the {n_users} users has a held-out item")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if device is None and isinstance(scorer, ModelScorer):
        dev = scorer.device

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, users.size, batch_size):
        rows = users[start : start + batch_size]
        fin = fold_in[rows]
        scores = _as_scores(scorer(fin), (rows.size, n_items), dev)
        fin_rows = SparseRows.from_scipy(fin, dev)
        scores[fin_rows.row_ids, fin_rows.indices] = -math.inf
        relevant = SparseRows.from_scipy(held_out[rows], dev).to_dense() > 0
        for name, values in ranking_metrics(scores, relevant, ks).items():
            parts.setdefault(name, []).append(values.cpu().numpy())

    per = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    n = users.size
    result = {
        "n_users": int(n_users),
        "n_evaluated": int(n),
        "n_excluded": int(n_users - n),
        "ks": list(ks),
        "metrics": {
            name: {"mean": float(v.mean()), "se": float(v.std() / math.sqrt(n))} for name, v in per.items()
        },
    }
    if per_user:
        result["per_user"] = per
        result["users"] = users
    return result


def format_table(results: dict[str, dict], metrics: Sequence[str] | None = None) -> str:
    """A plain-text table: one row per metric, one column per named result (mean ± se)."""
    names = list(results)
    first = results[names[0]]
    metrics = list(metrics) if metrics is not None else _metric_order(first["metrics"])
    width = max(len(n) for n in names + ["metric"])
    cell = max(17, width)
    lines = ["metric".ljust(10) + "".join(n.rjust(cell + 2) for n in names)]
    for m in metrics:
        row = m.ljust(10)
        for n in names:
            v = results[n]["metrics"].get(m)
            row += (f"{v['mean']:.4f} ± {v['se']:.4f}" if v else "-").rjust(cell + 2)
        lines.append(row)
    lines.append(
        f"users evaluated: {first['n_evaluated']} of {first['n_users']} "
        f"({first['n_excluded']} without held-out items excluded)"
    )
    return "\n".join(lines)


def _metric_order(metrics: dict) -> list[str]:
    head = [m for m in HEADLINE if m in metrics]
    return head + sorted((m for m in metrics if m not in head), key=lambda m: (m.split("@")[0], int(m.split("@")[1])))


def split_matrices(data, split: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(fold-in, held-out) of ``split``: "test" or "validation" (alias "val")."""
    if split == "test":
        return data.test_tr, data.test_te
    if split in ("validation", "val"):
        return data.val_tr, data.val_te
    raise UserError(f"unknown split '{split}'; use test or validation")


def evaluate_model(model: RecVAE, data, split: str = "test", *, device: torch.device | str = "cpu", batch_size: int = 1000) -> dict:
    """:func:`evaluate` of a RecVAE model on a split of ``data`` (a PreparedData)."""
    fold_in, held_out = split_matrices(data, split)
    model = model.to(device).eval()
    return evaluate(ModelScorer(model, device), fold_in, held_out, batch_size=batch_size)


def evaluate_popularity(data, split: str = "test", *, batch_size: int = 1000) -> dict:
    """:func:`evaluate` of the popularity baseline (training counts) on a split of ``data``."""
    from recvae.baselines import PopularityScorer

    fold_in, held_out = split_matrices(data, split)
    return evaluate(PopularityScorer(data.train), fold_in, held_out, batch_size=batch_size)
