"""Embeddings (and top-k recommendations) of many prefixes of users' histories, computed incrementally.

The encoder input of a prefix of ``L`` distinct items is the binary row scaled by ``1 / sqrt(L)``
(L2 normalisation), so its first-layer pre-activation is

    a1(L) = W1 · (sum of the prefix's item indicator vectors) / sqrt(L) + b1
          = (sum of the first L item columns of W1) / sqrt(L) + b1.

The running sum is built from *segment* sums: the items between two consecutive prefix lengths of
a user form one segment, one sparse-by-dense product (segments x items) · W1^T gives every segment
sum at once, and a cumulative sum over each user's segments gives the prefix sums. Sums are taken
in float64 and rounded to float32 once, so they are at least as accurate as the direct product.
The remaining encoder layers run batched over thousands of prefixes; the top-k list is taken from
the decoder logits with the prefix's own items excluded.

On the CPU the dense products go through numpy's BLAS (OpenBLAS), which runs these shapes 2-3x
faster than torch's MKL on AMD processors; the element-wise parts stay in torch. On CUDA everything
runs in torch. Both paths are checked against :func:`direct_prefix_embeddings`, the plain
reference that builds each prefix's dense row and calls :meth:`RecVAE.embed`.

Top-k lists are vocabulary indices (int32) by decreasing score; when fewer than ``k`` items are
left outside the prefix the list is padded with ``-1``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recvae.model import RecVAE

#: Sentinel for "no item" in a top-k list (fewer than k items outside the prefix).
NO_ITEM = -1


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    # offset of each output element from its range's start
    within = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)
    return np.repeat(starts, lengths) + within


def topk_groups(n_items: int, k: int) -> int:
    """Group size for :func:`grouped_topk`: about sqrt(n / k) balances its two selection steps."""
    if k < 1:
        return 1
    return max(1, math.isqrt(n_items // k))


def grouped_topk(logits: torch.Tensor, k: int, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(logits, k, dim=1)`` (sorted), computed from group maxima.

    ``logits`` is ``(rows, n)`` with ``n`` a multiple of ``groups``; column ``j`` belongs to group
    ``j % (n // groups)``. The ``k`` largest values of a row lie in the ``k`` groups with the
    largest maxima: a value outside them is at most the smallest of those ``k`` maxima, which are
    ``k`` values of the row already, so it can only tie with the k-th largest. Hence the top-k is
    the top-k of the ``k * groups`` members of those groups -- a selection over ``n / groups``
    maxima and one over ``k * groups`` candidates instead of one over ``n``. Equal values may be
    returned in another order than ``torch.topk`` would (the values are the same).
    """
    rows, n = logits.shape
    if groups <= 1 or k * groups >= n or k < 1:
        return torch.topk(logits, k, dim=1, largest=True, sorted=True)
    width = n // groups
    maxima = logits.view(rows, groups, width).amax(dim=1)  # (rows, width): max of each group
    _, best = torch.topk(maxima, k, dim=1, largest=True, sorted=False)  # (rows, k) group ids
    members = (best[:, :, None] + width * torch.arange(groups, device=logits.device)).view(rows, -1)
    values, pick = torch.topk(torch.gather(logits, 1, members), k, dim=1, largest=True, sorted=True)
    return values, torch.gather(members, 1, pick)


def topk_outside_prefix(logits: torch.Tensor, batch: "PrefixBatch", k: int, groups: int = 1) -> torch.Tensor:
    """(m, k) int32: the ``k`` best columns of each row of ``logits`` outside the row's prefix items.

    ``logits`` is ``(len(batch), n)`` with columns = vocabulary indices (extra columns scoring
    -inf may pad ``n`` to a multiple of ``groups``, see :func:`grouped_topk`); it is modified in
    place (prefix items set to -inf). Lists are by decreasing score, padded with :data:`NO_ITEM`
    where fewer than ``k`` items are left.
    """
    n_cols = logits.shape[1]
    pos = concat_ranges(batch.starts(), batch.lengths)
    rows = np.repeat(np.arange(len(batch), dtype=np.int64), batch.lengths)
    flat = torch.from_numpy(rows * n_cols + batch.items[pos]).to(logits.device)
    logits.view(-1)[flat] = -torch.inf
    values, idx = grouped_topk(logits, k, groups)
    idx = idx.to(torch.int32)
    idx[values == -torch.inf] = NO_ITEM
    return idx


@dataclass(frozen=True)
class PrefixBatch:
    """Which prefixes to embed.

    ``items``/``offsets`` hold the users' time-ordered item sequences (vocabulary indices, user
    ``u``'s sequence is ``items[offsets[u]:offsets[u + 1]]``). Row ``r`` asks for the prefix of
    length ``lengths[r]`` of user ``owner[r]``. Rows of one user must be consecutive with strictly
    increasing lengths (the order :func:`~recvae.trace.schedule.schedule_many` produces).
    """

    items: np.ndarray  # (total interactions,) int64
    offsets: np.ndarray  # (n_users + 1,) int64
    owner: np.ndarray  # (m,) int64, user of each row
    lengths: np.ndarray  # (m,) int64, prefix length of each row, >= 1

    def __post_init__(self) -> None:
        owner, lengths = self.owner, self.lengths
        if owner.shape != lengths.shape:
            raise ValueError("owner and lengths must have the same shape")
        if lengths.size == 0:
            return
        if lengths.min() < 1:
            raise ValueError("prefix lengths must be >= 1")
        counts = np.diff(self.offsets)
        if (lengths > counts[owner]).any():
            raise ValueError("a prefix is longer than its user's history")
        same = owner[1:] == owner[:-1]
        if (same & (lengths[1:] <= lengths[:-1])).any():
            raise ValueError("rows of one user must have strictly increasing lengths")
        starts_group = np.r_[True, ~same]
        if np.unique(owner[starts_group]).size != int(starts_group.sum()):
            raise ValueError("rows of one user must be consecutive")

    def __len__(self) -> int:
        return int(self.owner.size)

    def starts(self) -> np.ndarray:
        """Position in ``items`` where each row's user sequence starts."""
        return self.offsets[self.owner]

    def previous_lengths(self) -> np.ndarray:
        """Length of the previous row of the same user (0 for a user's first row)."""
        prev = np.zeros_like(self.lengths)
        if self.lengths.size > 1:
            same = self.owner[1:] == self.owner[:-1]
            prev[1:] = np.where(same, self.lengths[:-1], 0)
        return prev

    def slice(self, lo: int, hi: int) -> "PrefixBatch":
        """Rows ``lo:hi`` (callers cut at user boundaries, see :func:`user_aligned_chunks`)."""
        return PrefixBatch(self.items, self.offsets, self.owner[lo:hi], self.lengths[lo:hi])


def user_aligned_chunks(owner: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """Cut rows into consecutive ``(lo, hi)`` ranges of at most ``max_rows`` rows, never splitting a
    user (a single user with more rows gets a chunk of its own)."""
    m = owner.size
    if m == 0:
        return []
    group_starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    bounds = np.r_[group_starts, m]
    chunks: list[tuple[int, int]] = []
    lo = 0
    while lo < m:
        # the furthest group boundary within lo + max_rows, at least one group ahead
        j = int(np.searchsorted(bounds, lo + max_rows, side="right")) - 1
        hi = int(bounds[j])
        if hi <= lo:
            hi = int(bounds[np.searchsorted(bounds, lo, side="right")])
        chunks.append((lo, hi))
        lo = hi
    return chunks


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class PrefixEmbedder:
    """Computes encoder means and top-k lists for a :class:`PrefixBatch`, chunk by chunk.

    ``topk``: number of recommended items per row (None or 0: none). ``chunk_rows`` bounds the rows
    whose first layer is built at once; ``batch_rows`` is the batch of the encoder and top-k steps
    (``batch_rows x n_items`` float32 logits in memory); defaults 4096 / 512 with the numpy
    backend, 16384 / 4096 with torch. The top-k step is exact and uses
    :func:`grouped_topk`. ``backend``:

    * ``"numpy"`` (CPU only, the CPU default): first layer with scipy, dense products with numpy's
      BLAS, element-wise work and top-k in torch. Chunks run in ``workers`` threads (default: the
      cores available), each single-threaded: two multi-threaded pools (BLAS, torch's OpenMP)
      busy-waiting on the same cores slow each other down several-fold, and independent chunks
      keep every core busy without any synchronisation;
    * ``"torch"`` (any device, the CUDA default): everything in torch on ``device``, one chunk at
      a time (``workers=1``).

    Results are identical between runs with the same backend and batch sizes on one machine,
    whatever the number of workers.
    """

    BACKENDS = ("numpy", "torch")

    def __init__(
        self,
        model: RecVAE,
        *,
        topk: int | None = 100,
        device: str | torch.device = "cpu",
        backend: str | None = None,
        chunk_rows: int | None = None,
        batch_rows: int | None = None,
        workers: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.backend = backend or ("numpy" if self.device.type == "cpu" else "torch")
        if self.backend not in self.BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {self.BACKENDS}")
        if self.backend == "numpy" and self.device.type != "cpu":
            raise ValueError("the numpy backend runs on the CPU only")
        self.topk = int(topk or 0)
        cpu_defaults = self.backend == "numpy"
        self.chunk_rows = int(chunk_rows or (4096 if cpu_defaults else 16384))
        self.batch_rows = int(batch_rows or (512 if cpu_defaults else 4096))
        self.workers = int(workers) if workers is not None else (available_cores() if self.backend == "numpy" else 1)
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        self.encoder = model.encoder
        self.n_items = int(self.encoder.fc1.weight.shape[1])
        self.latent_dim = int(self.encoder.fc_mu.weight.shape[0])
        if self.topk > self.n_items:
            raise ValueError(f"topk={self.topk} exceeds the number of items ({self.n_items})")
        self.cpu = self.backend == "numpy"
        enc = self.encoder
        with torch.no_grad():
            # W1^T as (n_items, hidden) float64: row i = item i's column of W1
            w1t = enc.fc1.weight.detach().T.to(torch.float64).contiguous()
            b1 = enc.fc1.bias.detach().to(torch.float64)
            if self.cpu:
                self.w1t_np = w1t.cpu().numpy()
                self.b1_np = b1.cpu().numpy()
                # (in, out) float32 numpy weights for BLAS: y = x @ wt + b
                self._np_linear = {
                    name: (getattr(enc, name).weight.detach().float().T.contiguous().cpu().numpy(),
                           getattr(enc, name).bias.detach().float().cpu())
                    for name in ("fc2", "fc3", "fc4", "fc5", "fc_mu")
                }
            # decoder as (latent, n_pad) and (n_pad,): padding columns score -inf (see grouped_topk)
            self.groups = topk_groups(self.n_items, self.topk)
            n_pad = -(-self.n_items // self.groups) * self.groups
            wt = torch.zeros(self.latent_dim, n_pad, dtype=torch.float32, device=self.device)
            wt[:, : self.n_items] = model.decoder.weight.detach().float().T
            b = torch.full((n_pad,), -torch.inf, dtype=torch.float32, device=self.device)
            b[: self.n_items] = model.decoder.bias.detach().float()
            self.dec_wt_pad = wt.numpy() if self.cpu else wt
            self.dec_b_pad = b
            if not self.cpu:
                if enc.fc1.weight.device != self.device:
                    raise ValueError(f"move the model to {self.device} first (it is on {enc.fc1.weight.device})")
                self.w1t = w1t.to(self.device)
                self.b1 = b1.to(self.device)

    # -- first layer ---------------------------------------------------------------------------
    def first_layer(self, batch: PrefixBatch) -> torch.Tensor:
        """Pre-activations ``W1 x / ||x|| + b1`` of every row, (m, hidden) float32 on the device."""
        m = len(batch)
        prev = batch.previous_lengths()
        seg_len = batch.lengths - prev
        pos = concat_ranges(batch.starts() + prev, seg_len)
        indptr = np.r_[0, np.cumsum(seg_len)].astype(np.int64)
        cols = batch.items[pos]
        # first row of each row's user inside this batch, for the per-user cumulative sum
        new_group = np.r_[True, batch.owner[1:] != batch.owner[:-1]] if m else np.zeros(0, bool)
        group_first = np.maximum.accumulate(np.where(new_group, np.arange(m), 0)) if m else new_group
        inv_sqrt = 1.0 / np.sqrt(batch.lengths.astype(np.float64))
        if self.cpu:
            seg = sp.csr_matrix((np.ones(cols.size), cols, indptr), shape=(m, self.n_items))
            sums = np.cumsum(np.asarray(seg @ self.w1t_np), axis=0)
            base = np.where((group_first > 0)[:, None], sums[np.maximum(group_first - 1, 0)], 0.0)
            a1 = (sums - base) * inv_sqrt[:, None] + self.b1_np
            return torch.from_numpy(a1.astype(np.float32))
        dev = self.device
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            seg = torch.sparse_csr_tensor(
                torch.from_numpy(indptr).to(dev),
                torch.from_numpy(cols).to(dev),
                torch.ones(cols.size, dtype=torch.float64, device=dev),
                size=(m, self.n_items),
                check_invariants=False,
            )
        sums = torch.cumsum(seg @ self.w1t, dim=0)
        gf = torch.from_numpy(group_first).to(dev)
        base = torch.where((gf > 0)[:, None], sums[(gf - 1).clamp_min(0)], torch.zeros((), dtype=sums.dtype, device=dev))
        a1 = (sums - base) * torch.from_numpy(inv_sqrt).to(dev)[:, None] + self.b1
        return a1.float()

    # -- remaining layers ------------------------------------------------------------------------
    def _linear(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        if not self.cpu:
            return getattr(self.encoder, name)
        wt, b = self._np_linear[name]
        return lambda x: torch.from_numpy(x.numpy() @ wt).add_(b)

    @torch.no_grad()
    def encode(self, a1: torch.Tensor) -> torch.Tensor:
        """Encoder mean from first-layer pre-activations: :meth:`Encoder.hidden`, then the mean head."""
        return self._linear("fc_mu")(self.encoder.hidden(a1, self._linear))

    # -- top-k -----------------------------------------------------------------------------------
    @torch.no_grad()
    def top_items(self, mu: torch.Tensor, batch: PrefixBatch) -> torch.Tensor:
        """(m, k) int32 top-k vocabulary indices per row, prefix items excluded, -1 padded."""
        if self.cpu:
            logits = torch.from_numpy(mu.numpy() @ self.dec_wt_pad).add_(self.dec_b_pad)
        else:
            logits = torch.addmm(self.dec_b_pad, mu, self.dec_wt_pad)
        return topk_outside_prefix(logits, batch, self.topk, self.groups)

    # -- all together --------------------------------------------------------------------------
    @torch.no_grad()
    def compute(self, part: PrefixBatch) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings and top-k lists of one chunk of rows, in ``batch_rows`` batches."""
        a1 = self.first_layer(part)
        m = len(part)
        mu_out = np.empty((m, self.latent_dim), dtype=np.float32)
        top_out = np.empty((m, self.topk), dtype=np.int32) if self.topk else None
        for lo in range(0, m, self.batch_rows):
            hi = min(lo + self.batch_rows, m)
            mu = self.encode(a1[lo:hi])
            mu_out[lo:hi] = mu.cpu().numpy()
            if top_out is not None:
                top_out[lo:hi] = self.top_items(mu, part.slice(lo, hi)).cpu().numpy()
        return mu_out, top_out

    def iter_chunks(self, batch: PrefixBatch) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
        """Yield ``(lo, hi, mu, topk)`` for consecutive user-aligned row ranges of ``batch``, in order.

        With ``workers > 1`` the chunks are computed by that many threads, each single-threaded
        (one BLAS thread, one torch thread), at most ``2 * workers`` chunks ahead of the consumer.
        A chunk's result does not depend on which thread computed it.
        """
        self.encoder.eval()
        chunks = user_aligned_chunks(batch.owner, self.chunk_rows)
        with self._threads():
            if self.workers <= 1:
                for lo, hi in chunks:
                    yield (lo, hi, *self.compute(batch.slice(lo, hi)))
                return
            pool = ThreadPoolExecutor(self.workers, thread_name_prefix="prefix-embedder")
            try:
                todo = iter(chunks)
                pending: deque = deque()
                for lo, hi in itertools.islice(todo, 2 * self.workers):
                    pending.append((lo, hi, pool.submit(self.compute, batch.slice(lo, hi))))
                while pending:
                    lo, hi, future = pending.popleft()
                    result = future.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append((*nxt, pool.submit(self.compute, batch.slice(*nxt))))
                    yield (lo, hi, *result)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """numpy backend: torch single-threaded; BLAS single-threaded too when chunks run in parallel."""
        if not self.cpu:
            yield
            return
        from threadpoolctl import threadpool_limits

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if self.workers > 1:
                with threadpool_limits(limits=1, user_api="blas"):
                    yield
            else:
                yield
        finally:
            torch.set_num_threads(before)

    def __call__(self, batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings ``(m, latent) float32`` and top-k ``(m, k) int32`` (None without top-k)."""
        mus, tops = [], []
        for _, _, mu, top in self.iter_chunks(batch):
            mus.append(mu)
            tops.append(top)
        mu_all = np.concatenate(mus) if mus else np.zeros((0, self.latent_dim), np.float32)
        if not self.topk:
            return mu_all, None
        return mu_all, (np.concatenate(tops) if tops else np.zeros((0, self.topk), np.int32))


@torch.no_grad()
def direct_prefix_embeddings(
    model: RecVAE, batch: PrefixBatch, topk: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The plain reference: build each prefix's dense binary row and call ``model.embed``.

    Slow (one dense row of n_items per prefix); used by tests and spot checks.
    """
    n_items = model.cfg.n_items
    device = next(model.parameters()).device
    mus, tops = [], []
    for u, length in zip(batch.owner.tolist(), batch.lengths.tolist()):
        x = torch.zeros(1, n_items, device=device)
        seq = torch.from_numpy(batch.items[batch.offsets[u] : batch.offsets[u] + length]).to(device)
        x[0, seq] = 1.0
        mu = model.embed(x)
        mus.append(mu.cpu().numpy()[0])
        if topk:
            scores = model.decoder(mu)[0]
            scores[seq] = -torch.inf
            vals, idx = torch.topk(scores, topk)
            idx = idx.to(torch.int32)
            idx[vals == -torch.inf] = NO_ITEM
            tops.append(idx.cpu().numpy())
    mu_arr = np.asarray(mus, dtype=np.float32).reshape(len(batch), model.cfg.latent_dim)
    return mu_arr, (np.asarray(tops, dtype=np.int32).reshape(len(batch), topk) if topk else None)
