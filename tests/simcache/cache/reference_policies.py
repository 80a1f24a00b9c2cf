"""Plain, obviously correct reference of every policy: pure Python, brute force, one request at a time.

Independent of the package's code on purpose (it shares only the written rules): distances are
recomputed here in float64 in the documented order (component k added to partial sum k % 32,
neighbouring partial sums then added in pairs until one is left), the nearest entry is the minimum of
(squared distance, request index) over all cached entries, the hit rule is ``d <= r``, and the
random draws re-implement the documented splitmix64 scheme. Slow; use small traces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MASK = (1 << 64) - 1


def splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def uniform(seed: int, t: int, k: int) -> float:
    """Draw k of request t: splitmix64(splitmix64(seed) ^ (4t + k)) >> 11, times 2**-53."""
    z = splitmix64(splitmix64(seed & MASK) ^ ((4 * t + k) & MASK))
    return (z >> 11) * 2.0**-53


def normalise(x: np.ndarray) -> list[float]:
    """Unit vector as float32 values (squared norm summed as ``squared`` sums it, from the origin)."""
    values = [float(v) for v in x]
    n = math.sqrt(squared(values, [0.0] * len(values)))
    return [float(np.float32(v / n)) for v in values]


def squared(x: list[float], y: list[float]) -> float:
    lanes = [0.0] * 32
    for k, (a, b) in enumerate(zip(x, y)):
        diff = a - b
        lanes[k % 32] += diff * diff
    while len(lanes) > 1:
        lanes = [lanes[j] + lanes[j + 1] for j in range(0, len(lanes), 2)]
    return lanes[0]


@dataclass
class Entry:
    req: int
    vec: list[float]
    freq: int = 1
    last: int = 0
    score: float = 1.0  # float state of orders that keep one (a new entry starts at 1)
    owner: int = -1  # user of the inserting request (exclude_self)
    members: int = 1  # requests the entry has served, its inserting request included (CLS-LRU)


@dataclass
class RefLog:
    outcome: list[int] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)
    inserted: list[bool] = field(default_factory=list)
    evicted: list[int] = field(default_factory=list)
    #: the cache at the end: entry id (inserting request) -> key (float32 values)
    keys: dict[int, list[float]] = field(default_factory=dict)


def approx_cost(d: float, kind: str, scale: float, exponent: float) -> float:
    if kind == "zero":
        return 0.0
    if kind == "linear":
        return scale * d
    return scale * d**exponent


@dataclass
class Request:
    """What a decision rule sees: distances to the two nearest entries (inf when absent), the
    number of cached entries, the request's draws, the radius, parameters and cost model."""

    d1: float
    d2: float
    n_cached: int
    u0: float
    u1: float
    radius: float
    params: dict
    cost: dict


def radius_rule(r: Request) -> tuple[bool, bool, bool]:
    """(hit, refresh, insert) of the SIM-* family: hit iff d1 <= r; refresh on hit; insert on miss."""
    hit = r.n_cached >= 1 and r.d1 <= r.radius
    return hit, hit, not hit


def rnd_lru_rule(r: Request) -> tuple[bool, bool, bool]:
    kind = r.params.get("acceptance", "linear")  # defaults: the linear ramp with the step's reach
    s = r.params.get("scale")
    if s is None:
        s = 2 * r.radius if kind == "linear" else r.radius
    if kind == "step" or s <= 0:
        p = 1.0 if r.d1 <= s else 0.0
    elif kind == "linear":
        p = max(0.0, 1.0 - r.d1 / s)
    else:
        p = math.exp(-r.d1 / s)
    hit = r.n_cached >= 1 and r.u0 < p
    return hit, hit, not hit


def qlru_dc_rule(r: Request) -> tuple[bool, bool, bool]:
    q = r.params.get("q", 0.5)
    c_r = r.cost["retrieval_cost"]

    def service(d: float, present: bool) -> float:
        if present and d <= r.radius:
            return min(c_r, approx_cost(d, r.cost["kind"], r.cost["scale"], r.cost["exponent"]))
        return c_r

    c1 = service(r.d1, r.n_cached >= 1)
    c2 = service(r.d2, r.n_cached >= 2)
    hit = c1 < c_r
    return hit, hit and r.u0 < (c2 - c1) / c_r, r.u1 < q * c1 / c_r


class Order:
    """An eviction order over slot positions: ``recency`` lists positions, oldest first."""

    def refresh(self, slots: list[Entry], recency: list[int], pos: int, t: int) -> None:
        recency.remove(pos)
        recency.append(pos)

    def victim(self, slots: list[Entry], recency: list[int], u2: float) -> int:
        return recency[0]

    def move(self, entry: Entry, x: list[float], params: dict, metric: str) -> None:
        """After a hit that left ``entry`` cached (and after the insertion, if any): keys stay."""


class FifoOrder(Order):
    def refresh(self, slots, recency, pos, t):
        pass


class LfuOrder(Order):
    def refresh(self, slots, recency, pos, t):
        slots[pos].freq += 1
        slots[pos].last = t

    def victim(self, slots, recency, u2):
        return min(range(len(slots)), key=lambda p: (slots[p].freq, slots[p].last))


class RandomOrder(FifoOrder):
    def victim(self, slots, recency, u2):
        return min(int(u2 * len(slots)), len(slots) - 1)


class ClusterOrder(Order):
    """CLS-LRU: LRU order; the served key moves toward the request, ``y + (x - y) / m`` per
    component in float64 rounded to float32, m = members (running mean, ``update=mean``) or
    1 / rate (``update=step``); for cosine the moved key is unit-normalised (unless zero)."""

    def move(self, entry, x, params, metric):
        entry.members += 1
        update = params.get("update", "mean")
        if update == "none":
            return
        m = float(entry.members) if update == "mean" else 1.0 / float(params.get("rate", 0.5))
        key = [float(np.float32(y + (a - y) / m)) for y, a in zip(entry.vec, x)]
        if metric == "cosine":
            s = squared(key, [0.0] * len(key))
            if s > 0.0:
                key = [float(np.float32(v / math.sqrt(s))) for v in key]
        entry.vec = key


#: policy name -> (decision rule, eviction order); the lookup the engine-equality tests use
#: (a test module that registers a policy adds its reference here too)
REFERENCES: dict[str, tuple] = {
    "lru": (radius_rule, Order()),
    "fifo": (radius_rule, FifoOrder()),
    "lfu": (radius_rule, LfuOrder()),
    "random": (radius_rule, RandomOrder()),
    "rnd-lru": (rnd_lru_rule, Order()),
    "qlru-dc": (qlru_dc_rule, Order()),
    "cls-lru": (radius_rule, ClusterOrder()),
}


def reference_replay(
    vectors: np.ndarray,
    policy: str,
    capacity: int,
    radius: float,
    metric: str = "l2",
    params: dict | None = None,
    cost: dict | None = None,
    seed: int = 0,
    owners: np.ndarray | None = None,
) -> RefLog:
    """Replay ``vectors`` request by request. ``cost``: dict(kind, retrieval_cost, scale, exponent).
    ``owners``: each request's user; when given, a request ignores the entries its user inserted."""
    params = params or {}
    cost = {"kind": "zero", "retrieval_cost": 1.0, "scale": 1.0, "exponent": 2.0, **(cost or {})}
    rule, order = REFERENCES[policy]
    slots: list[Entry] = []  # position = slot; a new entry takes its victim's position
    recency: list[int] = []  # slot positions, least recent first (LRU) / oldest first (FIFO)
    log = RefLog()
    for t, raw in enumerate(np.asarray(vectors, dtype=np.float32)):
        x = normalise(raw) if metric == "cosine" else [float(v) for v in raw]

        def dist(sq: float) -> float:
            return math.sqrt(sq) if metric == "l2" else 0.5 * sq

        me = -1 if owners is None else int(owners[t])
        visible = [(pos, e) for pos, e in enumerate(slots) if owners is None or e.owner != me]
        ranked = sorted((squared(x, e.vec), e.req, pos) for pos, e in visible)
        d1 = dist(ranked[0][0]) if ranked else math.inf
        d2 = dist(ranked[1][0]) if len(ranked) > 1 else math.inf
        u0, u1, u2 = uniform(seed, t, 0), uniform(seed, t, 1), uniform(seed, t, 2)
        hit, refresh, insert = rule(Request(d1, d2, len(ranked), u0, u1, radius, params, cost))

        log.distance.append(float(np.float32(d1)))
        if hit:
            log.outcome.append(1 if d1 == 0.0 else 2)
            log.served.append(ranked[0][1])
            if refresh:
                order.refresh(slots, recency, ranked[0][2], t)
        else:
            log.outcome.append(0)
            log.served.append(-1)
        evicted = -1
        served = ranked[0][2] if hit else -1
        if insert:
            entry = Entry(req=t, vec=x, freq=1, last=t, owner=me)
            if len(slots) < capacity:
                slots.append(entry)
                recency.append(len(slots) - 1)
            else:
                pos = order.victim(slots, recency, u2)
                evicted = slots[pos].req
                slots[pos] = entry
                if pos in recency:
                    recency.remove(pos)
                recency.append(pos)
                if pos == served:
                    served = -1  # the entry that served the request left the cache
        if served >= 0:
            order.move(slots[served], x, params, metric)
        log.inserted.append(insert)
        log.evicted.append(evicted)
    log.keys = {e.req: list(e.vec) for e in slots}
    return log
