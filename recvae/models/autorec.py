"""AutoRec (Sedhain et al., WWW 2015), user-based: a one-hidden-layer autoencoder of a user's ratings.

``h = sigmoid(V r_u + b)`` (hidden width 500), ``r^_u = W h + c``; the loss counts observed
ratings only::

    sum_u sum_{i observed in u} (r_ui - r^_ui)^2 + (reg / 2) (|W|_F^2 + |V|_F^2)

(unobserved entries are 0 in the input and ignored by the loss: training computes the predictions
at the observed entries only, :meth:`AutoRecNet.observed`). Trained with Adam over mini-batches of
users, each batch weighing the regulariser by its share of users so that an epoch sums to the
objective (its gradient ``reg / n_users * W`` is added in place, the penalty itself is never
formed). The user embedding is the hidden layer ``h``; ``V r`` is
linear in the ratings, so prefix embeddings come from running rating-weighted sums of ``V``'s
columns. Item vectors in the same space: the rows of ``W`` (score = ``h . W_i + c_i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recvae.errors import UserError
from recvae.model import SparseRows
from recvae.models.base import HistoryContext, ModelConfig, Recommender
from recvae.models.linalg import prefix_sums
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch, user_aligned_chunks
from recvae.training import adam


@dataclass
class AutoRecConfig(ModelConfig):
    epochs: int = 50
    hidden_dim: int = 500
    lr: float = 1e-3
    batch_size: int = 64  # users per Adam step
    reg: float = 1.0  # lambda of the (reg / 2) |W|^2 + |V|^2 penalty

    def validate(self) -> None:
        super().validate()
        if self.hidden_dim < 1 or self.batch_size < 1 or self.lr <= 0 or self.reg < 0:
            raise UserError("hidden_dim and batch_size must be >= 1, lr > 0, reg >= 0")


class AutoRecNet(nn.Module):
    """``h = sigmoid(V r + b)``, ``r^ = W h + c``.

    ``V`` is kept transposed, as an item table ``item_in`` (n_items, hidden), so that a sparse
    batch's ``V r`` only gathers the rows of its rated items (``embedding_bag``) and its gradient
    only adds to them (a sparse-times-dense product with ``V`` in ``nn.Linear``'s layout copies
    and transposes the whole table two or three times per step). Checkpoints keep ``nn.Linear``'s
    names and layout (:meth:`linear_state` / :meth:`load_linear_state`).
    """

    def __init__(self, n_items: int, hidden: int) -> None:
        super().__init__()
        encoder = nn.Linear(n_items, hidden)  # nn.Linear's initialisation, drawn as before
        self.item_in = nn.Parameter(encoder.weight.detach().t().contiguous())  # V^T
        self.hidden_bias = nn.Parameter(encoder.bias.detach().clone())  # b
        self.decoder = nn.Linear(hidden, n_items)  # W, c

    @property
    def encoder_weight(self) -> torch.Tensor:
        """``V`` (hidden, n_items), a view of :attr:`item_in`."""
        return self.item_in.t()

    def hidden(self, r: SparseRows) -> torch.Tensor:
        pre = F.embedding_bag(r.indices, self.item_in, r.indptr[:-1], mode="sum", per_sample_weights=r.values)
        return torch.sigmoid(pre + self.hidden_bias)

    def forward(self, r: SparseRows) -> torch.Tensor:
        return self.decoder(self.hidden(r))

    def observed(self, r: SparseRows) -> torch.Tensor:
        """The predictions at ``r``'s stored entries only, (nnz,) in its CSR order: ``W_i . h_u + c_i``
        for each stored (u, i), the entries of ``forward(r)`` the loss reads, without the other
        ``n_items`` outputs per user (differentiable in every parameter)."""
        h = self.hidden(r)
        w = self.decoder.weight[r.indices]
        return (h[r.row_ids] * w).sum(-1) + self.decoder.bias[r.indices]

    def linear_state(self) -> dict[str, torch.Tensor]:
        """The parameters under ``nn.Linear``'s names and layout (``encoder.weight``: (hidden, n_items)), on the CPU."""
        return {"encoder.weight": self.encoder_weight.detach().cpu().contiguous(),
                "encoder.bias": self.hidden_bias.detach().cpu().clone(),
                "decoder.weight": self.decoder.weight.detach().cpu().clone(),
                "decoder.bias": self.decoder.bias.detach().cpu().clone()}  # fmt: skip

    def load_linear_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`linear_state` gives (missing or extra keys, wrong shapes: an error)."""
        want = ("decoder.bias", "decoder.weight", "encoder.bias", "encoder.weight")
        if sorted(state) != list(want):
            raise UserError(f"an AutoRec state needs exactly {list(want)}, got {sorted(state)}")
        self.load_state_dict({"item_in": state["encoder.weight"].t(), "hidden_bias": state["encoder.bias"],
                              "decoder.weight": state["decoder.weight"], "decoder.bias": state["decoder.bias"]})


def batch_gradients(net: AutoRecNet, r: SparseRows, n_users: int, reg: float) -> torch.Tensor:
    """Accumulate into the parameters' ``.grad`` the gradient of one mini-batch's share of the
    objective, ``sse / batch + (reg / 2) (|W|^2 + |V|^2) / n_users``; return the batch's sum of
    squared errors (detached). The penalty's gradient ``reg / n_users * W`` is added in place."""
    sse = (net.observed(r) - r.values).pow(2).sum()
    (sse / r.shape[0]).backward()
    for weight in (net.item_in, net.decoder.weight):
        weight.grad.add_(weight.detach(), alpha=reg / n_users)
    return sse.detach()


class AutoRec(Recommender):
    name = "autorec"
    title = "U-AutoRec (Sedhain et al. 2015): autoencoder of a user's ratings, loss on observed entries"
    Config = AutoRecConfig
    needs = frozenset({"ratings"})
    embedding_description = "hidden layer sigmoid(V r + b) of the prefix's rating vector, float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.net = AutoRecNet(n_items, config.hidden_dim)
        self.opt = None

    def to(self, device) -> "AutoRec":
        super().to(device)
        self.net.to(self.device)
        return self

    def _optimizer(self):
        if self.opt is None:
            self.opt = adam(self.net.parameters(), self.config.lr)
        return self.opt

    def start(self, data, rng: np.random.Generator) -> None:
        data.require_ratings(self.name)
        torch.manual_seed(int(rng.integers(2**62)))
        self.net = AutoRecNet(self.n_items, self.config.hidden_dim).to(self.device)
        self.opt = None

    def _rows(self, rows: sp.csr_matrix) -> SparseRows:
        return SparseRows.from_scipy(sp.csr_matrix(rows, dtype=np.float32), self.device)

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        fit = sp.csr_matrix(data.require_ratings(self.name).fit, dtype=np.float32)
        if (fit.data == 0).any():  # a stored 0 is no rating (the loss counts observed ratings only)
            fit = fit.copy()
            fit.eliminate_zeros()
        n_users = fit.shape[0]
        opt, net = self._optimizer(), self.net
        net.train()
        sq, nnz = 0.0, 0
        order = rng.permutation(n_users)
        for lo in range(0, n_users, c.batch_size):
            part = fit[order[lo : lo + c.batch_size]]
            opt.zero_grad(set_to_none=True)
            sse = batch_gradients(net, self._rows(part), n_users, c.reg)
            opt.step()
            sq += float(sse.detach())
            nnz += part.nnz
        return {"train_rmse": float(np.sqrt(sq / max(nnz, 1)))}

    def training_state(self) -> dict:
        return {"optimizer": self._optimizer().state_dict(), "layout": "item-rows"}

    def load_training_state(self, state: dict) -> None:
        opt = self._optimizer()
        opt.load_state_dict(state["optimizer"])
        if state.get("layout") != "item-rows":  # written before V was kept as an item table: V's moments transposed
            moments = opt.state.get(self.net.item_in, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in moments:
                    moments[key] = moments[key].t().contiguous()

    def state_dict(self) -> dict:
        return self.net.linear_state()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_linear_state(state)

    @property
    def dim(self) -> int:
        return int(self.config.hidden_dim)

    @torch.no_grad()
    def embed(self, rows: sp.csr_matrix, users=None) -> np.ndarray:
        self.net.eval()
        return self.net.hidden(self._rows(rows)).cpu().numpy()

    @torch.no_grad()
    def score(self, rows: sp.csr_matrix) -> torch.Tensor:
        self.net.eval()
        return self.net(self._rows(rows))

    @torch.no_grad()
    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        if context.values is None:
            raise UserError(f"model '{self.name}' embeds rating vectors: no ratings were given")
        vt = self.net.item_in.detach().double().cpu().numpy()  # (n_items, hidden)
        b = self.net.hidden_bias.detach().double().cpu().numpy()
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        for lo, hi in user_aligned_chunks(batch.owner, 4096):
            part = batch.slice(lo, hi)
            a = prefix_sums(part, vt, context.values) + b
            out[lo:hi] = (1.0 / (1.0 + np.exp(-a))).astype(np.float32)
        return out

    @torch.no_grad()
    def scores_from_embeddings(self, z, batch, context) -> torch.Tensor:
        return self.net.decoder(torch.as_tensor(np.asarray(z, np.float32), device=self.device)).cpu()

    def catalogue(self) -> Catalogue:
        return Catalogue(ids=self.items, vectors=self.net.decoder.weight.detach().float().cpu().numpy(),
                             bias=self.net.decoder.bias.detach().float().cpu().numpy(),
                             metadata={"score": "user . vector + bias (the decoder's rows)"})

    @torch.no_grad()
    def predict(self, rows: sp.csr_matrix, targets: sp.csr_matrix) -> np.ndarray:
        self.net.eval()
        t = sp.csr_matrix(targets)
        out = []
        for lo in range(0, t.shape[0], 1024):
            pred = self.net(self._rows(sp.csr_matrix(rows)[lo : lo + 1024])).cpu().numpy()
            part = t[lo : lo + 1024]
            row = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
            out.append(pred[row, part.indices])
        return np.concatenate(out) if out else np.zeros(0)
