"""GREEDY, the static reference: choose C objects by lazy greedy marginal gain over a request set.

The objective ``F(S) = sum_t [cost_t(empty) - cost_t(S)]`` is monotone submodular in S, so the
greedy set is within (1 - 1/e) of the best static set of C objects, and lazy evaluation (a
re-evaluated marginal gain that is still the largest upper bound is the true maximum) picks the
same set as plain greedy: the largest marginal gain, ties to the smaller object index.

Request t's gain depends only on its *relevant* objects, ``R_t = {o : c_d(x_t, o) < c_d(x_t, o_k)
+ c_f}`` (o_k its k-th nearest object): no other object can enter an answer. The fit lists the
``candidates`` nearest objects of every request, cut to R_t; when R_t is longer the objects
beyond are ignored for that request (counted in ``truncated``; the fit is then an approximation
of the objective, the replay that follows is exact anyway).

State per request: its current optimal answer as k effective costs with their objects. Adding
object o (c_d = h for request t): if o is in t's answer (fetched, at cost h + c_f) its cost
becomes h; otherwise, if h is below the answer's largest cost M, o replaces that entry. The
marginal gain is ``stored cost - h`` resp. ``max(0, M - h)``, summed over t in increasing order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np


@dataclass(frozen=True)
class GreedyFit:
    """The chosen objects in selection order, each one's marginal gain, and the fit's extent."""

    objects: np.ndarray  # int64 (C,)
    gains: np.ndarray  # float64 (C,), marginal gain of each selection (sum = objective)
    requests: int  # requests fitted on
    truncated: int  # requests whose relevant set was longer than the candidate list

    @property
    def objective(self) -> float:
        return float(self.gains.sum())


@nb.njit(cache=True)
def _marginal(o, inv_ptr, inv_req, inv_h, ans_obj, ans_cost):
    """Marginal gain of adding ``o`` to the current set."""
    total = 0.0
    k = ans_obj.shape[1]
    for p in range(inv_ptr[o], inv_ptr[o + 1]):
        t = inv_req[p]
        h = inv_h[p]
        g = -1.0
        big = ans_cost[t, 0]
        for a in range(k):
            if ans_obj[t, a] == o:
                g = ans_cost[t, a] - h
            if ans_cost[t, a] > big:
                big = ans_cost[t, a]
        if g < 0.0:
            g = big - h if big > h else 0.0
        total += g
    return total


@nb.njit(cache=True)
def _add(o, inv_ptr, inv_req, inv_h, ans_obj, ans_cost):
    """Make ``o`` local for every request it is relevant to."""
    k = ans_obj.shape[1]
    for p in range(inv_ptr[o], inv_ptr[o + 1]):
        t = inv_req[p]
        h = inv_h[p]
        where = -1
        worst = 0
        for a in range(k):
            if ans_obj[t, a] == o:
                where = a
            if ans_cost[t, a] >= ans_cost[t, worst]:
                worst = a
        if where >= 0:
            ans_cost[t, where] = h
        elif h < ans_cost[t, worst]:
            ans_obj[t, worst] = o
            ans_cost[t, worst] = h


@nb.njit(cache=True, inline="always")
def _before(g1, o1, g2, o2):
    return g1 > g2 or (g1 == g2 and o1 < o2)


@nb.njit(cache=True)
def _heap_down(hg, ho, hf, pos, size):
    while True:
        c = 2 * pos + 1
        if c >= size:
            return
        if c + 1 < size and _before(hg[c + 1], ho[c + 1], hg[c], ho[c]):
            c += 1
        if not _before(hg[c], ho[c], hg[pos], ho[pos]):
            return
        hg[c], hg[pos] = hg[pos], hg[c]
        ho[c], ho[pos] = ho[pos], ho[c]
        hf[c], hf[pos] = hf[pos], hf[c]
        pos = c


@nb.njit(cache=True)
def lazy_greedy(n_obj, capacity, inv_ptr, inv_req, inv_h, ans_obj, ans_cost, out_obj, out_gain):
    """Select ``capacity`` objects (see module doc); ``ans_obj``/``ans_cost`` hold the empty-cache
    answers and are updated in place."""
    hg = np.empty(n_obj, np.float64)
    ho = np.empty(n_obj, np.int64)
    hf = np.zeros(n_obj, np.int64)  # round in which the bound was computed (fresh if == round)
    for o in range(n_obj):
        hg[o] = _marginal(o, inv_ptr, inv_req, inv_h, ans_obj, ans_cost)
        ho[o] = o
    size = n_obj
    for pos in range(size // 2 - 1, -1, -1):
        _heap_down(hg, ho, hf, pos, size)
    for r in range(capacity):
        while hf[0] != r:
            hg[0] = _marginal(ho[0], inv_ptr, inv_req, inv_h, ans_obj, ans_cost)
            hf[0] = r
            _heap_down(hg, ho, hf, 0, size)
        o = ho[0]
        out_obj[r] = o
        out_gain[r] = hg[0]
        _add(o, inv_ptr, inv_req, inv_h, ans_obj, ans_cost)
        size -= 1
        hg[0], ho[0], hf[0] = hg[size], ho[size], hf[size]
        _heap_down(hg, ho, hf, 0, size)


@nb.njit(cache=True)
def relevant_lists(cand_obj, cand_h, k, c_f, ans_obj, ans_cost, counts):
    """Cut each request's candidate list to its relevant objects (c_d < c_d of the k-th + c_f);
    fill the empty-cache answers; ``counts[t]`` the kept length. Returns the number truncated."""
    truncated = 0
    m = cand_obj.shape[1]
    for t in range(cand_obj.shape[0]):
        limit = cand_h[t, k - 1] + c_f
        n = 0
        while n < m and cand_h[t, n] < limit:
            n += 1
        counts[t] = n
        if n == m:
            truncated += 1
        for a in range(k):
            ans_obj[t, a] = cand_obj[t, a]
            ans_cost[t, a] = cand_h[t, a] + c_f
    return truncated


def fit_greedy(cand_obj: np.ndarray, cand_h: np.ndarray, k: int, c_f: float, capacity: int, n_obj: int,
               complete: bool) -> GreedyFit:  # fmt: skip
    """Greedy set for requests whose ``m`` nearest objects (by the exact order) and their ``c_d``
    are ``cand_obj``, ``cand_h`` (n, m). ``complete``: the lists hold the whole catalogue (never
    truncated)."""
    n, m = cand_obj.shape
    ans_obj = np.empty((n, k), np.int64)
    ans_cost = np.empty((n, k), np.float64)
    counts = np.empty(n, np.int64)
    truncated = relevant_lists(cand_obj, cand_h, k, float(c_f), ans_obj, ans_cost, counts)
    if complete:
        truncated = 0
    # inverted lists: object -> (request, c_d), requests in increasing order
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    keep = np.arange(m)[None, :] < counts[:, None]
    objs = cand_obj[keep].astype(np.int64)
    hs = cand_h[keep]
    order = np.argsort(objs, kind="stable")
    inv_req = rows[order]
    inv_h = np.ascontiguousarray(hs[order])
    inv_ptr = np.zeros(n_obj + 1, np.int64)
    np.cumsum(np.bincount(objs, minlength=n_obj), out=inv_ptr[1:])
    out_obj = np.empty(capacity, np.int64)
    out_gain = np.empty(capacity, np.float64)
    lazy_greedy(n_obj, capacity, inv_ptr, inv_req, inv_h, ans_obj, ans_cost, out_obj, out_gain)
    return GreedyFit(out_obj, out_gain, int(n), int(truncated))
