"""Small planted-structure datasets built directly as :class:`PreparedData` (tests, benchmarks).

Unlike the ``synthetic`` dataset of :mod:`recvae.data` (raw interactions that go through the whole
preprocessing protocol), this builds the protocol's *output* directly, with an exact item count:
handy for checking the learner (a model must beat popularity by a wide margin here) and for
timing it at a given width (e.g. ML-20M's 20,108 items).

Story: items have Zipf popularity and one of ``n_clusters`` home clusters; each user belongs to a
cluster and picks ``|x_u|`` distinct items (log-normal, at least 5) with probability proportional
to ``popularity * (1 + strength * [home == user's cluster])``. Users are split into training,
validation and test users; each validation/test user holds out ``floor(0.2 * n)`` random items
when ``n >= 5`` (the rest is fold-in), as in the protocol.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recvae.data.prepared import PreparedData


def _rows_to_csr(rows: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([r.size for r in rows])
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(indices.size, np.float32), indices, indptr), shape=(len(rows), n_items))
    m.sort_indices()
    return m


def make_planted(
    n_users: int = 1000,
    n_items: int = 300,
    *,
    n_clusters: int = 8,
    mean_items: float = 30.0,
    strength: float = 30.0,
    heldout_fraction: float = 0.1,
    seed: int = 0,
) -> PreparedData:
    """A PreparedData with ``n_items`` columns and ``n_users`` users (train / validation / test)."""
    rng = np.random.default_rng(seed)
    pop = (np.arange(1, n_items + 1, dtype=np.float64) ** -0.8)[rng.permutation(n_items)]
    home = rng.integers(0, n_clusters, size=n_items)
    cluster = rng.integers(0, n_clusters, size=n_users)
    sigma = 0.8
    sizes = rng.lognormal(np.log(mean_items) - sigma**2 / 2, sigma, size=n_users)
    sizes = np.clip(np.rint(sizes), 5, max(5, n_items // 2)).astype(np.int64)
    probs = [pop * (1.0 + strength * (home == k)) for k in range(n_clusters)]
    probs = [p / p.sum() for p in probs]
    rows = []
    for u in range(n_users):
        p = probs[cluster[u]]
        # Gumbel top-k: |x_u| distinct items drawn proportionally to p, without replacement.
        keys = np.log(p) - np.log(-np.log(rng.random(n_items)))
        rows.append(np.sort(np.argpartition(-keys, sizes[u] - 1)[: sizes[u]]))

    h = max(1, int(heldout_fraction * n_users))
    perm = rng.permutation(n_users)
    tr_u, va_u, te_u = perm[: n_users - 2 * h], perm[n_users - 2 * h : n_users - h], perm[n_users - h :]

    def split(users: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        fold, held = [], []
        for u in users:
            r = rows[u]
            mask = np.zeros(r.size, dtype=bool)
            if r.size >= 5:
                mask[rng.choice(r.size, size=int(0.2 * r.size), replace=False)] = True
            fold.append(r[~mask])
            held.append(r[mask])
        return _rows_to_csr(fold, n_items), _rows_to_csr(held, n_items)

    val_tr, val_te = split(va_u)
    test_tr, test_te = split(te_u)
    params = dict(
        n_users=n_users, n_items=n_items, n_clusters=n_clusters, mean_items=mean_items,
        strength=strength, heldout_fraction=heldout_fraction, seed=seed,
    )
    return PreparedData(
        train=_rows_to_csr([rows[u] for u in tr_u], n_items),
        val_tr=val_tr,
        val_te=val_te,
        test_tr=test_tr,
        test_te=test_te,
        items=np.arange(1, n_items + 1, dtype=np.int64),
        train_users=tr_u + 1,
        val_users=va_u + 1,
        test_users=te_u + 1,
        manifest={"dataset": "planted", "params": params, "has_timestamps": False},
    )
