"""The fixed-order lane sums (``simcache.cache.kernels.lanesum``) against the plain loop of their
documented order, bit for bit, and that their masked tail reads nothing past a vector's end."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numba as nb
import numpy as np
from hypothesis import given, settings

from simcache.cache.kernels.distances import lane_dot, sqdist, sqnorm
from simcache.cache.kernels.lanesum import LANES
from tests.simcache.cache.helpers import page_end


def lane_order(terms: list[float]) -> float:
    """Term k into partial sum k % 32 (each from +0.0, in increasing k), then neighbours pairwise."""
    lanes = [0.0] * LANES
    for k, t in enumerate(terms):
        lanes[k % LANES] += t
    while len(lanes) > 1:
        lanes = [lanes[j] + lanes[j + 1] for j in range(0, len(lanes), 2)]
    return lanes[0]


@nb.njit(cache=True)
def sums(x, y):
    """The three sums as a compiled caller uses them (twice each: nothing carried between calls)."""
    a = sqdist(x, y)
    b = lane_dot(x, y)
    c = sqnorm(x)
    return a, b, c, sqdist(x, y), lane_dot(x, y)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))


SPECIAL = st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, math.inf, -math.inf, math.nan, 1.0, -1.0])


def vectors(dtype):
    def element(width):
        return st.one_of(st.floats(-1e3, 1e3, width=width), st.floats(width=width), SPECIAL)

    width = 32 if dtype == np.float32 else 64
    return st.integers(0, 3 * LANES + 5).flatmap(
        lambda n: st.tuples(hnp.arrays(dtype, n, elements=element(width)), hnp.arrays(np.float32, n, elements=element(32)))
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(vectors(np.float32), vectors(np.float64)))
def test_lane_sums_follow_the_documented_order_bit_for_bit(xy):
    x, y = xy
    xs = [float(v) for v in x]
    ys = [float(v) for v in y]
    want_sq = lane_order([(a - b) * (a - b) for a, b in zip(xs, ys)])
    want_dot = lane_order([a * b for a, b in zip(xs, ys)])
    want_norm = lane_order([a * a for a in xs])
    a, b, c, a2, b2 = sums(x, y)
    assert same(a, want_sq) and same(a2, want_sq)
    assert same(b, want_dot) and same(b2, want_dot)
    assert same(c, want_norm)


def test_the_order_is_observable():
    """One running sum, or partial sums folded left to right, give other values on these vectors,
    so the test above can fail."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(203).astype(np.float32)
    y = rng.standard_normal(203).astype(np.float32)
    terms = [float(a) * float(b) for a, b in zip(x, y)]
    running = 0.0
    for t in terms:
        running += t
    lanes = [0.0] * LANES
    for k, t in enumerate(terms):
        lanes[k % LANES] += t
    left_fold = 0.0
    for v in lanes:
        left_fold += v
    got = sums(x, y)[1]
    assert got == lane_order(terms) and got != running and got != left_fold


def test_the_tail_reads_nothing_past_the_end():
    """Vectors ending at a page followed by an inaccessible page: a read past their end faults."""
    with page_end() as ending:
        for n in (1, 7, 8, 9, 31, 33, 40, 63, 64, 65):
            x = ending(n)
            x[:] = np.arange(1, n + 1, dtype=np.float32)
            y = np.zeros(n, np.float32)
            assert sums(x, y)[1] == 0.0 and sums(x, y)[2] == lane_order([float(v) ** 2 for v in x])
