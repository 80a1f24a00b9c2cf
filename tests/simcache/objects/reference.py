"""Plain reference of the object cache: numpy over the whole catalogue, one request at a time.

Independent of the package's code (it shares only the written rules): exact keys summed here in
the documented order (component i into partial sum i % 32, partial sums added pairwise), objects
ranked by (key, index), distance and c_d from the key, the optimal answer by sorting every object
of the catalogue by (effective cost, key, index), policies as plain Python structures, and the
documented splitmix64 draws. Slow; use small catalogues.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

MASK = (1 << 64) - 1
FETCHED, PRELOADED = -1, -2


def splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def uniform(seed: int, t: int, j: int) -> float:
    key = splitmix64(seed & MASK)
    z = splitmix64(splitmix64(key ^ t) ^ j)
    return (z >> 11) * 2.0**-53


def lane_sum(terms: np.ndarray) -> np.ndarray:
    """Row sums of (n, d) float64 terms in the documented order."""
    n, d = terms.shape
    pad = (-d) % 32
    t = np.concatenate([terms, np.zeros((n, pad))], axis=1)
    lanes = np.zeros((n, 32))
    for r in range(t.shape[1] // 32):
        lanes = lanes + t[:, r * 32 : (r + 1) * 32]
    while lanes.shape[1] > 1:
        lanes = lanes[:, 0::2] + lanes[:, 1::2]
    return lanes[:, 0]


def normalise(x: np.ndarray) -> np.ndarray:
    x64 = np.asarray(x, np.float32).astype(np.float64)
    n = np.sqrt(lane_sum(x64 * x64))
    return (x64 / n[:, None]).astype(np.float32)


@dataclass
class Model:
    """The catalogue and the cost model of one reference replay."""

    items: np.ndarray  # prepared float32 (N, d)
    bias: np.ndarray  # float64 (N,)
    metric: str
    k: int
    c_f: float
    dissimilarity: str = "distance"
    radius: float = 0.0

    @classmethod
    def make(cls, vectors, bias, metric, k, c_f, dissimilarity="distance", radius=0.0):
        v = np.asarray(vectors, np.float32)
        if metric == "cosine":
            v = normalise(v)
        b = np.zeros(len(v)) if (bias is None or metric != "ip") else np.asarray(bias, np.float32).astype(np.float64)
        return cls(v, b, metric, k, c_f, dissimilarity, radius)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)[None, :]
        return normalise(x)[0] if self.metric == "cosine" else x[0]

    def keys(self, q: np.ndarray) -> np.ndarray:
        """Exact key of every object for prepared request ``q``."""
        q64 = q.astype(np.float64)[None, :]
        v64 = self.items.astype(np.float64)
        if self.metric == "ip":
            return -(lane_sum(q64 * v64) + self.bias)
        diff = q64 - v64
        return lane_sum(diff * diff)

    def costs(self, e: np.ndarray) -> np.ndarray:
        """c_d of every object from its key."""
        if self.metric == "l2":
            d = np.sqrt(e)
        elif self.metric == "cosine":
            d = 0.5 * e
        else:
            d = e - e.min()
        if self.dissimilarity == "distance":
            return d
        if self.dissimilarity == "squared":
            return d * d
        return np.where(d <= self.radius, 0.0, self.c_f)

    def distances(self, e: np.ndarray) -> np.ndarray:
        if self.metric == "l2":
            return np.sqrt(e)
        if self.metric == "cosine":
            return 0.5 * e
        return e - e.min()


@dataclass
class Request:
    """Everything about one request a policy may look at."""

    t: int
    e: np.ndarray  # key of every object
    h: np.ndarray  # c_d of every object
    order: np.ndarray  # objects by (e, j)
    answer: list[int]
    local: list[bool]


@dataclass
class RefLog:
    server: list = field(default_factory=list)
    served: list = field(default_factory=list)
    local: list = field(default_factory=list)
    origin: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    cost_empty: list = field(default_factory=list)
    cost_opt: list = field(default_factory=list)
    inserted: list = field(default_factory=list)
    evicted: list = field(default_factory=list)


def optimal_answer(model: Model, e: np.ndarray, h: np.ndarray, cached: set[int], allowed=None) -> list[int]:
    """The k objects smallest in (h + c_f [not cached], e, j); ``allowed``: the uncached objects
    that may be fetched (all when None)."""
    n = len(e)
    eff = np.array([h[j] if j in cached else h[j] + model.c_f for j in range(n)])
    ok = np.array([j in cached or allowed is None or j in allowed for j in range(n)])
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((idx, e[idx], eff[idx]))]
    return [int(j) for j in order[: model.k]]


class RefPolicy:
    """Cache content with insertion origin; subclasses implement ``update``."""

    def __init__(self, capacity: int, seed: int = 0, **params) -> None:
        self.capacity = capacity
        self.seed = seed
        self.params = params
        self.origin: dict[int, int] = {}  # object -> request that inserted it
        self.ins = 0
        self.ev = 0

    @property
    def cached(self) -> set[int]:
        return set(self.origin)

    def insert(self, o: int, t: int) -> None:
        self.origin[o] = t
        self.ins += 1

    def evict(self, o: int) -> None:
        del self.origin[o]
        self.ev += 1

    def update(self, req: Request, model: Model) -> None:
        raise NotImplementedError


class RefLRU(RefPolicy):
    def __init__(self, capacity, seed=0, **params):
        super().__init__(capacity, seed, **params)
        self.order: OrderedDict[int, None] = OrderedDict()  # last = most recent

    def use(self, o: int, t: int) -> None:
        if o in self.origin:
            self.order.move_to_end(o)
            return
        if len(self.origin) >= self.capacity:
            victim, _ = self.order.popitem(last=False)
            self.evict(victim)
        self.insert(o, t)
        self.order[o] = None

    def update(self, req, model):
        for o in req.answer:
            self.use(o, req.t)


class RefSimLRU(RefLRU):
    def update(self, req, model):
        radius = self.params.get("radius")
        rho = self.params.get("rho", 1.0)
        hit = False
        if self.origin:
            cached = np.array(sorted(self.origin))
            best = cached[np.lexsort((cached, req.e[cached]))][0]
            d = model.distances(req.e)
            limit = radius if radius is not None else rho * d[req.order[model.k - 1]]
            hit = d[best] <= limit
        if hit:
            for o in req.answer:
                if o in self.origin:
                    self.order.move_to_end(o)
        else:
            super().update(req, model)


class RefLFU(RefPolicy):
    def __init__(self, capacity, seed=0, **params):
        super().__init__(capacity, seed, **params)
        self.freq: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.clock = 0

    def update(self, req, model):
        for o in req.answer:
            self.clock += 1
            if o in self.origin:
                self.freq[o] += 1
                self.last[o] = self.clock
                continue
            if len(self.origin) >= self.capacity:
                victim = min(self.origin, key=lambda j: (self.freq[j], self.last[j]))
                self.evict(victim)
                del self.freq[victim], self.last[victim]
            self.insert(o, req.t)
            self.freq[o] = 1
            self.last[o] = self.clock


class RefQLRUDC(RefLRU):
    """k = 1; costs computed by brute force over the catalogue."""

    def cost(self, req, model, cached):
        return optimal_cost(model, req.e, req.h, cached)

    def update(self, req, model):
        q = self.params.get("q", 0.2)
        cached = self.cached
        c_s = self.cost(req, model, cached)
        y = req.answer[0]
        if req.local[0]:
            c_without = self.cost(req, model, cached - {y})
            if uniform(self.seed, req.t, 0) < (c_without - c_s) / model.c_f:
                self.order.move_to_end(y)
        best = int(req.order[0])
        if best not in cached:
            gain = c_s - self.cost(req, model, cached | {best})
            if uniform(self.seed, req.t, 1) < q * gain / model.c_f:
                self.use(best, req.t)


def ref_capped_projection(z: list[float], capacity: int) -> list[float]:
    """KL projection of positive ``z`` onto the capped simplex by sorting: ``min(1, s z)``, at
    most ``capacity - 1`` values capped (the ``C``-th reaches 1 only by rounding)."""
    order = sorted(range(len(z)), key=lambda i: -z[i])
    zs = [z[i] for i in order]
    tail = [0.0] * (len(zs) + 1)
    for i in range(len(zs) - 1, -1, -1):
        tail[i] = tail[i + 1] + zs[i]
    for j in range(min(len(zs), capacity - 1) + 1):
        s = (capacity - j) / tail[j]
        if j == capacity - 1 or zs[j] * s < 1.0:
            break
    y = [0.0] * len(z)
    for r, i in enumerate(order):
        y[i] = 1.0 if r < j else min(1.0, s * zs[r])
    return y


def ref_systematic(y: list[float], capacity: int, u: float) -> set[int]:
    """Systematic sampling with marginals y (the documented rule, fill-up included)."""
    total = sum(y)
    step = total / capacity
    chosen: list[int] = []
    p = u * step
    cum = 0.0
    for o, yo in enumerate(y):
        cum += yo
        if len(chosen) < capacity and p < cum:
            chosen.append(o)
            p = (u + len(chosen)) * step
    o = len(y) - 1
    while len(chosen) < capacity:
        if o not in chosen:
            chosen.append(o)
        o -= 1
    return set(chosen)


class RefAcai(RefPolicy):
    """AÇAI over the whole catalogue: threshold, subgradient, multiplicative update of every
    coordinate, projection by a full sort, systematic rounding."""

    def __init__(self, capacity, seed=0, **params):
        super().__init__(capacity, seed, **params)
        self.y: list[float] | None = None

    def update(self, req, model):
        p = {"eta": 0.5, "candidates": 50, "period": 1, "rounding": "coupled", **self.params}
        n = len(req.h)
        if self.y is None:
            self.y = [self.capacity / n] * n
        cand = [int(o) for o in req.order[: min(p["candidates"], n)]]
        elements = []
        for o in cand:
            elements.append((float(req.h[o]), self.y[o]))
            elements.append((float(req.h[o]) + model.c_f, 1.0))
        elements.sort(key=lambda el: el[0])  # stable
        cum = 0.0
        thr = elements[-1][0]
        for cost, mass in elements:
            cum += mass
            if cum >= model.k:
                thr = cost
                break
        grad = [0.0] * n
        for o in cand:
            if req.h[o] < thr:
                grad[o] = thr - float(req.h[o])
        z = [self.y[o] * math.exp(p["eta"] * grad[o]) for o in range(n)]
        self.y = ref_capped_projection(z, self.capacity)
        if req.t % p["period"]:
            return
        u = uniform(self.seed, 0 if p["rounding"] == "coupled" else req.t, 0)
        chosen = ref_systematic(self.y, self.capacity, u)
        for o in sorted(self.origin):
            if o not in chosen:
                self.evict(o)
        for o in sorted(chosen):
            if o not in self.origin:
                self.insert(o, req.t)


class RefDuel(RefPolicy):
    """DUEL by brute force: every cost is the optimal answer's over the whole catalogue."""

    def __init__(self, capacity, seed=0, **params):
        super().__init__(capacity, seed, **params)
        self.p = {"beta": 0.8, "delta": 2.0, "tau": 500, "max_duels": 10, "interference": 0.0, "challenger": "nearest",
                  **params}  # fmt: skip
        self.duels: list[dict | None] = [None] * self.p["max_duels"]
        self.slots: list[int] = []  # object of each slot, in the engine's slot order (slot 0, 1, ...)

    def update(self, req, model):
        cached = self.cached
        if len(cached) < self.capacity:
            for o, loc in zip(req.answer, req.local):
                if not loc and len(self.origin) < self.capacity:
                    self.insert(o, req.t)
                    self.slots.append(o)
            best = int(req.order[0])
            if self.p["challenger"] == "nearest" and len(self.origin) < self.capacity and best not in self.origin:
                self.insert(best, req.t)
                self.slots.append(best)
            return
        cost = lambda s: optimal_cost(model, req.e, req.h, s)  # noqa: E731
        base = cost(cached)
        for duel in self.duels:
            if duel is None or req.t <= duel["start"]:
                continue
            without = cost(cached - {duel["d"]})
            duel["sd"] += without - base
            duel["sc"] += without - cost((cached - {duel["d"]}) | {duel["c"]})
        for i, duel in enumerate(self.duels):
            if duel is None or req.t <= duel["start"]:
                continue
            if duel["sc"] - duel["sd"] >= self.p["delta"]:
                self.evict(duel["d"])
                self.insert(duel["c"], req.t)
                self.slots[self.slots.index(duel["d"])] = duel["c"]
                self.duels[i] = None
            elif req.t - duel["start"] >= self.p["tau"]:
                self.duels[i] = None
        if self.p["challenger"] == "nearest":
            candidates = [int(req.order[0])]
        else:
            candidates = [o for o, loc in zip(req.answer, req.local) if not loc]
        if not candidates or candidates[0] in self.origin:
            return
        c = candidates[0]
        vec = model.items.astype(np.float64)
        for duel in self.duels:
            if duel is None:
                continue
            for o in (duel["c"], duel["d"]):
                if o == c or lane_sum(((vec[c] - vec[o]) ** 2)[None, :])[0] <= self.p["interference"] ** 2:
                    return
        if None not in self.duels:
            return
        if uniform(self.seed, req.t, 0) < self.p["beta"]:
            e = model.keys(model.items[c])
            d = min(self.origin, key=lambda o: (e[o], o))
        else:
            d = self.slots[min(self.capacity - 1, int(uniform(self.seed, req.t, 1) * self.capacity))]
        if any(duel is not None and d in (duel["c"], duel["d"]) for duel in self.duels):
            return
        self.duels[self.duels.index(None)] = {"c": c, "d": d, "start": req.t, "sc": 0.0, "sd": 0.0}


class RefGrades(RefPolicy):
    """GRADES with numpy points and a brute-force nearest-object mapping."""

    def __init__(self, capacity, seed=0, **params):
        super().__init__(capacity, seed, **params)
        self.alpha = params.get("alpha", 0.1)
        self.point: dict[int, np.ndarray] = {}  # cached object -> its slot's point

    def update(self, req, model):
        items = model.items.astype(np.float64)
        x = self.x.astype(np.float64)
        for o, loc in zip(req.answer, req.local):
            if not loc:
                if len(self.origin) < self.capacity and o not in self.origin:
                    self.insert(o, req.t)
                    self.point[o] = items[o].copy()
                continue
            p = self.point[o]
            if model.metric == "ip":
                p = p + self.alpha * x
            else:
                e = lane_sum(((p - x) ** 2)[None, :])[0]
                if model.metric == "l2":
                    d = math.sqrt(e)
                    squared = model.dissimilarity == "squared"
                    scale = None if d == 0.0 else (2 * self.alpha if squared else self.alpha / d)
                else:
                    d = 0.5 * e
                    scale = 2 * self.alpha * d if model.dissimilarity == "squared" else self.alpha
                if scale is not None:
                    p = p - scale * (p - x)
            dist = lane_sum((p[None, :] - items) ** 2)
            j = int(np.lexsort((np.arange(len(dist)), dist))[0])
            if j != o and j not in self.origin:
                del self.point[o]
                self.evict(o)
                self.insert(j, req.t)
                self.point[j] = p
            else:
                self.point[o] = p


class RefStatic(RefPolicy):
    def update(self, req, model):
        pass


def optimal_cost(model, e, h, cached, allowed=None) -> float:
    ans = optimal_answer(model, e, h, cached, allowed)
    total = 0.0
    for j in ans:
        total += h[j] if j in cached else h[j] + model.c_f
    return total


def replay(requests: np.ndarray, model: Model, policy: RefPolicy, preload=(), ext=None) -> RefLog:
    """Serve each request with the optimal answer, then let the policy update."""
    log = RefLog()
    for o in preload:
        policy.origin[int(o)] = PRELOADED
    for t, x in enumerate(requests):
        q = model.prepare(x)
        e = model.keys(q)
        h = model.costs(e)
        order = np.lexsort((np.arange(len(e)), e))
        server = [int(j) for j in order[: model.k]]
        cached = policy.cached
        allowed = None
        if ext is not None:
            allowed = {int(j) for j in ext[t] if j >= 0}
            for j in server:
                if len(allowed) >= model.k:
                    break
                allowed.add(j)
        ans = optimal_answer(model, e, h, cached, allowed)
        local = [j in cached for j in ans]
        cost = 0.0
        for j, loc in zip(ans, local):
            cost += h[j] if loc else h[j] + model.c_f
        empty = 0.0
        opt = 0.0
        for j in server:
            empty += h[j] + model.c_f
            opt += h[j]
        log.server.append(server)
        log.served.append(ans)
        log.local.append(local)
        log.origin.append([policy.origin[j] if loc else FETCHED for j, loc in zip(ans, local)])
        log.cost.append(cost)
        log.cost_empty.append(empty)
        log.cost_opt.append(opt)
        policy.ins = policy.ev = 0
        policy.x = q
        policy.update(Request(t, e, h, order, ans, local), model)
        log.inserted.append(policy.ins)
        log.evicted.append(policy.ev)
    return log


def total_gain(model: Model, requests: np.ndarray, cached: set[int]) -> float:
    """F(S) = sum_t cost_t(empty) - cost_t(S), brute force."""
    total = 0.0
    for x in requests:
        e = model.keys(model.prepare(x))
        h = model.costs(e)
        total += optimal_cost(model, e, h, set()) - optimal_cost(model, e, h, cached)
    return total


def plain_greedy(model: Model, requests: np.ndarray, capacity: int) -> list[int]:
    """Greedy by brute-force marginal gain (largest gain, ties to the smaller index)."""
    chosen: list[int] = []
    n = len(model.items)
    for _ in range(capacity):
        base = total_gain(model, requests, set(chosen))
        best, best_gain = -1, -math.inf
        for o in range(n):
            if o in chosen:
                continue
            g = total_gain(model, requests, set(chosen) | {o}) - base
            if g > best_gain + 1e-12:
                best, best_gain = o, g
        chosen.append(best)
    return chosen


REF_POLICIES = {"obj-lru": RefLRU, "obj-lfu": RefLFU, "obj-sim-lru": RefSimLRU, "obj-qlru-dc": RefQLRUDC,
                "acai": RefAcai, "duel": RefDuel, "grades": RefGrades, "greedy": RefStatic}  # fmt: skip
