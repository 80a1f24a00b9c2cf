"""A synthetic ratings dataset with a realistic shape and planted structure (no download).

Generative story (all draws from ``numpy.random.default_rng(seed)``, so the output is a pure
function of the config):

* Items have Zipf popularity ``w_i = rank_i ** -popularity_exponent`` (ranks shuffled) and one
  home taste cluster each (uniform over ``n_clusters``).
* Each user belongs to one taste cluster (uniform). A user of cluster ``k`` picks items with
  probability proportional to ``w_i * (1 + cluster_strength * [home(i) == k])``: popular items
  everywhere, plus a strong preference for the cluster's own items. This is the structure a
  collaborative model can learn and a popularity ranking cannot.
* Activity (distinct items per user) is log-normal with the given mean and ``activity_sigma``,
  clipped to ``[min_items, max_items_fraction * n_items]``: most users have a few dozen items,
  a heavy tail has hundreds.
* Ratings 1..5: items of the user's own cluster are mostly liked (4 or 5), others are spread
  around 3, so binarising at > 3.5 keeps mainly the planted signal.
* Timestamps: each user starts at a random time in the first 80% of ``[start, start + span]``
  and then interacts in sessions, with strictly increasing times: a gap ends the session with
  probability ``1 / session_items``; gaps within a session are log-normal around 5 minutes,
  gaps between sessions log-normal around ``session_gap_days`` (at least one second each). Users
  thus come back over weeks to months and many are active at once, as on rating sites.

Rows come out grouped by user (ids 1..n_users ascending), each user's rows in time order, like
MovieLens' ``ratings.csv``. Item ids are 1..n_items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pyarrow as pa

from recvae.errors import UserError

try:  # numba is a dependency; the fallback only keeps the module importable without it
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):  # type: ignore[no-redef]
        return (lambda f: f) if not (len(args) == 1 and callable(args[0])) else args[0]

# Rating probabilities for 1..5: items of the user's cluster vs other items.
_LIKED = np.array([0.01, 0.04, 0.10, 0.40, 0.45])
_OTHER = np.array([0.10, 0.20, 0.35, 0.25, 0.10])


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class SyntheticConfig:
    """Options of the generator; every field can be passed to ``load_interactions("synthetic", ...)``."""

    n_users: int = 2_000
    n_items: int = 1_000
    n_clusters: int = 10  # latent taste clusters
    mean_items: float = 50.0  # mean distinct items per user (before the heavy tail is clipped)
    activity_sigma: float = 1.0  # log-normal sigma of user activity: larger = heavier tail
    min_items: int = 5  # fewest items a user has
    max_items_fraction: float = 0.5  # most items a user has, as a fraction of n_items
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity
    cluster_strength: float = 20.0  # weight multiplier of a user's own-cluster items
    start: int = 946_684_800  # first possible timestamp (2000-01-01 UTC)
    span_days: float = 730.0  # time window of the whole dataset
    session_items: float = 8.0  # mean interactions per session
    session_gap_days: float = 7.0  # median gap between a user's sessions
    seed: int = 0

    @classmethod
    def from_params(cls, **params: object) -> "SyntheticConfig":
        """Build from keyword options, rejecting unknown names with the list of valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise UserError(
                f"unknown synthetic option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        cfg = cls(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise UserError(f"synthetic: {f.name} must be a number, got {v!r}")
            if not np.isfinite(v):
                raise UserError(f"synthetic: {f.name} must be a finite number, got {v!r}")
        if self.n_users < 1 or self.n_items < 2:
            raise UserError(f"synthetic: need n_users >= 1 and n_items >= 2 (got {self.n_users}, {self.n_items})")
        if self.n_clusters < 1:
            raise UserError(f"synthetic: n_clusters must be >= 1 (got {self.n_clusters})")
        if self.mean_items <= 0 or self.min_items < 1:
            raise UserError("synthetic: mean_items and min_items must be positive")
        if not (self.session_items >= 1 and self.session_gap_days > 0 and self.span_days > 0):
            raise UserError("synthetic: need session_items >= 1, session_gap_days > 0 and span_days > 0")
        if self.min_items > self.max_items_fraction * self.n_items:
            raise UserError(
                f"synthetic: min_items={self.min_items} exceeds max_items_fraction * n_items "
                f"= {self.max_items_fraction * self.n_items:g}"
            )
        if not 0 < self.max_items_fraction <= 1:
            raise UserError(f"synthetic: max_items_fraction must be in (0, 1], got {self.max_items_fraction}")
        need, have = self.memory_bytes(), _available_memory()
        if need > have:
            raise UserError(
                f"synthetic: n_users={self.n_users:,} x about {self.expected_items():,.0f} items each needs about "
                f"{need / 2**30:.3g} GiB of memory to generate, {have / 2**30:.3g} GiB available; lower --n-users or --mean-items"
            )

    def expected_items(self) -> float:
        """Expected distinct items per user (the mean activity, within its clipping bounds)."""
        return float(min(max(self.mean_items, self.min_items), self.max_items_fraction * self.n_items))

    def memory_bytes(self) -> int:
        """An estimate of the peak memory of :func:`generate`: about 64 bytes a row plus the items."""
        return int(64 * self.n_users * self.expected_items() + 64 * self.n_items + 64 * self.n_users)

    def as_dict(self) -> dict:
        return asdict(self)


def generate(config: SyntheticConfig | None = None, **params: object) -> pa.Table:
    """Generate the interactions table (user, item, value, timestamp) for ``config``/``params``."""
    cfg = config if config is not None else SyntheticConfig.from_params(**params)
    rng = np.random.default_rng(cfg.seed)
    n_u, n_i, n_k = cfg.n_users, cfg.n_items, cfg.n_clusters

    # Items: shuffled Zipf popularity and a home cluster each.
    pop = np.arange(1, n_i + 1, dtype=np.float64) ** -cfg.popularity_exponent
    pop = pop[rng.permutation(n_i)]
    home = rng.integers(0, n_k, size=n_i)

    # Users: a cluster and a heavy-tailed activity level.
    ucl = rng.integers(0, n_k, size=n_u)
    sigma = cfg.activity_sigma
    mu = np.log(cfg.mean_items) - 0.5 * sigma**2  # mean of the log-normal = mean_items
    hi = max(cfg.min_items, int(cfg.max_items_fraction * n_i))
    hi = min(hi, (_POOL // 2 - 1000) // _MAX_DRAWS_FACTOR)
    want = np.clip(np.rint(rng.lognormal(mu, sigma, size=n_u)), cfg.min_items, hi).astype(np.int64)

    users, items = _sample_items(rng, ucl, want, pop, home, cfg.cluster_strength)
    n = users.size

    # Ratings: liked (own-cluster) items mostly 4-5.
    liked = home[items] == ucl[users]
    u = rng.random(n)
    ratings = np.where(
        liked,
        np.searchsorted(np.cumsum(_LIKED), u, side="right"),
        np.searchsorted(np.cumsum(_OTHER), u, side="right"),
    )
    ratings = (np.minimum(ratings, 4) + 1).astype(np.float32)

    # Timestamps: strictly increasing within each user.
    span = int(cfg.span_days * 86_400)
    t0 = cfg.start + rng.integers(0, max(1, int(0.8 * span)), size=n_u)
    new_session = rng.random(n) < 1.0 / cfg.session_items
    gaps = np.where(
        new_session,
        rng.lognormal(np.log(cfg.session_gap_days * 86_400.0), 1.0, size=n),
        rng.lognormal(np.log(300.0), 1.0, size=n),
    )
    gaps = np.maximum(1, gaps).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if n else np.zeros(0, np.int64)
    csum = np.cumsum(gaps)
    base = np.repeat(csum[starts] - gaps[starts], np.diff(np.r_[starts, n]))
    ts = t0[users] + (csum - base)

    return pa.table(
        {
            "user": pa.array(users + 1, pa.int64()),
            "item": pa.array(items + 1, pa.int64()),
            "value": pa.array(ratings, pa.float32()),
            "timestamp": pa.array(ts, pa.int64()),
        }
    )


# ---------------------------------------------------------------------------------------------
# Sampling each user's distinct items: sequential sampling without replacement, proportional to
# the user's cluster weights, done as draws with replacement (alias method) skipping repeats.
# The uniforms come from numpy's generator in pools; a user whose draws would run past the end
# of the pool is redrawn from the start of a fresh pool, so the result depends only on the seed.

_POOL = 8_000_000  # uniforms per pool (two per draw)
_MAX_DRAWS_FACTOR = 50  # at most 50 * want + 1000 draws per user (bounds a pathological user)


@njit(cache=True)
def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - jitted
    """Walker/Vose alias table of the distribution ``p``: (acceptance probability, alias)."""
    n = p.size
    prob = np.empty(n, np.float64)
    alias = np.zeros(n, np.int64)
    scaled = p * n
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        nl -= 1
        g = large[nl]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        if scaled[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    for k in range(nl):
        prob[large[k]] = 1.0
    for k in range(ns):
        prob[small[k]] = 1.0
    return prob, alias


@njit(cache=True)
def _draw_distinct(u0: int, ucl: np.ndarray, want: np.ndarray, prob: np.ndarray, alias: np.ndarray,
                   pool: np.ndarray, offsets: np.ndarray, out: np.ndarray, got: np.ndarray,
                   mark: np.ndarray, stamp: int) -> tuple[int, int]:  # pragma: no cover - jitted
    """Fill users u0.. until the pool runs out; return (next user to do, next stamp)."""
    n_i = prob.shape[1]
    p = 0
    for u in range(u0, want.size):
        stamp += 1
        c = ucl[u]
        w = want[u]
        limit = _MAX_DRAWS_FACTOR * w + 1000
        g = 0
        d = 0
        base = offsets[u]
        while g < w and d < limit:
            if p + 2 > pool.size:
                return u, stamp  # redo this user with a fresh pool
            j = int(pool[p] * n_i)
            if j >= n_i:
                j = n_i - 1
            it = j if pool[p + 1] < prob[c, j] else alias[c, j]
            p += 2
            d += 1
            if mark[it] != stamp:
                mark[it] = stamp
                out[base + g] = it
                g += 1
        got[u] = g
    return want.size, stamp


def _sample_items(rng: np.random.Generator, ucl: np.ndarray, want: np.ndarray, pop: np.ndarray,
                  home: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows (user, item) grouped by user in id order, items in sampling order within a user."""
    n_u, n_i = ucl.size, pop.size
    n_k = int(max(home.max(), ucl.max())) + 1
    weights = np.stack([pop * (1.0 + strength * (home == k)) for k in range(n_k)])  # (K, n_items)
    weights /= weights.sum(axis=1, keepdims=True)
    prob = np.empty_like(weights)
    alias = np.empty(weights.shape, np.int64)
    for k in range(n_k):
        prob[k], alias[k] = _alias_table(weights[k])
    offsets = np.r_[0, np.cumsum(want)].astype(np.int64)
    out = np.empty(int(offsets[-1]), np.int64)
    got = np.zeros(n_u, np.int64)
    mark = np.zeros(n_i, np.int64)
    u, stamp = 0, 0
    while u < n_u:
        pool = rng.random(_POOL)
        u_next, stamp = _draw_distinct(u, ucl, want, prob, alias, pool, offsets, out, got, mark, stamp)
        if u_next == u:  # cannot happen with _POOL >> 2 * (_MAX_DRAWS_FACTOR * max want + 1000)
            raise RuntimeError("synthetic: sampling pool too small")
        u = u_next
    keep = np.arange(out.size) - np.repeat(offsets[:-1], want) < np.repeat(got, want)
    return np.repeat(np.arange(n_u, dtype=np.int64), want)[keep], out[keep]
