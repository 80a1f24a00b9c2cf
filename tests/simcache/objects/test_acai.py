"""AÇAI: the engine equals the whole-catalogue reference; the lazy mirror step equals the full
one; the projection equals a bisection; the state stays in the capped simplex; the rounding has
exactly C objects and marginals y."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from simcache.objects import ObjectReplayConfig, replay_objects
from simcache.objects.policies.acai import (acai_threshold, capped_projection, fractional_state, full_step,
                                            lazy_step, new_fstate, systematic_round, tree_build,
                                            tree_round)  # fmt: skip
from tests.simcache.objects.conftest import make_instance
from tests.simcache.objects.test_engine_reference import assert_same, run_both


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
@pytest.mark.parametrize("k,capacity,c_f", [(1, 5, 0.5), (3, 12, 2.0), (5, 3, 1.0)])
def test_acai_equals_reference(metric, k, capacity, c_f):
    log, ref = run_both("acai", metric, k, capacity, c_f, params={"candidates": 20, "eta": 1.0})
    assert_same(log, ref)
    assert log.local.any() and (~log.local).any()


@pytest.mark.parametrize("params", [{"period": 5, "rounding": "independent"}, {"projection": "full", "period": 3},
                                    {"candidates": 60, "eta": 0.2}])  # fmt: skip
def test_acai_variants_equal_reference(params):
    log, ref = run_both("acai", "l2", 3, 10, 1.0, params=params, seed=2)
    assert_same(log, ref)


def test_lazy_and_full_projection_give_the_same_replay():
    x, cat, _ = make_instance(6, n_obj=200, n_req=300)
    logs = [replay_objects(x, cat, ObjectReplayConfig(policy="acai", capacity=15, k=3, c_f=1.0, seed=1,
                                                      params={"projection": p, "eta": 2.0}))
            for p in ("lazy", "full")]  # fmt: skip
    for f in ("served", "local", "origin", "cost", "inserted", "evicted"):
        np.testing.assert_array_equal(getattr(logs[0], f), getattr(logs[1], f))
    y_lazy = fractional_state(logs[0].fstate, 200, lazy=True)
    y_full = fractional_state(logs[1].fstate, 200, lazy=False)
    np.testing.assert_allclose(y_lazy, y_full, rtol=1e-9, atol=1e-12)
    assert abs(y_lazy.sum() - 15) < 1e-9 and y_lazy.max() > 0.5  # it has learnt something


def bisection_projection(z: np.ndarray, capacity: int) -> np.ndarray:
    """Slow reference: bisection on the threshold s of min(1, s z) (sum increasing in s)."""
    lo, hi = 0.0, 1.0 / z.min()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(1.0, mid * z).sum() < capacity:
            lo = mid
        else:
            hi = mid
    return np.minimum(1.0, 0.5 * (lo + hi) * z)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.data())
def test_projection_equals_bisection(n, data):
    capacity = data.draw(st.integers(1, n - 1))
    z = np.array(data.draw(st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n)))
    order = np.argsort(-z, kind="mergesort")
    j, s = capped_projection(z[order], 0.0, capacity)
    y = np.empty(n)
    y[order] = np.where(np.arange(n) < j, 1.0, s * z[order])
    np.testing.assert_allclose(y, bisection_projection(z, capacity), rtol=1e-9, atol=1e-12)
    assert abs(y.sum() - capacity) < 1e-9


def new_state(n, capacity):
    return new_fstate(n, capacity)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(3, 50), st.floats(0.05, 5.0))
@example(23968912, 3, 4.0)  # capped mass reaches the capacity within rounding (step 288): the
@example(47937824, 3, 5.0)  # two forms used to decide differently there and then drift apart
def test_lazy_step_stays_in_the_capped_simplex_and_equals_full(seed, n, eta):
    """Random candidate sets and gradients for 300 steps (past the 256-step refresh): after every
    step y is in the capped simplex and equals the straightforward full step."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(1, n))
    lazy, full = new_state(n, capacity), new_state(n, capacity)
    for _ in range(300):
        m = int(rng.integers(1, n + 1))
        cand = rng.choice(n, m, replace=False).astype(np.int64)
        g = np.where(rng.random(m) < 0.7, rng.random(m), 0.0)
        lazy_step(cand, g, m, eta, lazy, n, capacity)
        full_step(cand, g, m, eta, full, n, capacity)
        y = fractional_state(lazy, n)
        assert abs(y.sum() - capacity) < 1e-9
        assert y.min() >= 0.0 and y.max() <= 1.0
        np.testing.assert_allclose(y, fractional_state(full, n, lazy=False), rtol=1e-8, atol=1e-12)


def test_projection_never_caps_the_whole_capacity_on_rounding():
    """z = (1, 1e-17, 1e-17), C = 1: the sum rounds to 1, so z_0 s reaches 1 only by rounding;
    the exact projection keeps the others positive, and so does the shared boundary rule."""
    j, s = capped_projection(np.array([1.0, 1e-17, 1e-17]), 0.0, 1)
    assert (j, s) == (0, 1.0)
    j, s = capped_projection(np.array([1.0]), 2e-17, 1)  # the lazy form's call: the rest as a sum
    assert (j, s) == (0, 1.0)


def test_lazy_and_full_agree_where_the_capped_mass_reaches_the_capacity():
    """A step whose capped mass equals C within rounding (y_0 = 1/3 times 1e18, C = 1): both forms
    give y_0 = 1 and the same tiny positive y elsewhere (capping there gave the full form 0 and
    the lazy form 1/3), so a later gradient toward object 1 moves both the same way (y = 0 would
    stay 0 for good)."""
    n, capacity = 3, 1
    lazy, full = new_state(n, capacity), new_state(n, capacity)
    for cand, g in (([0], [math.log(1e18)]), ([1], [math.log(1e20)])):
        cand_a, g_a = np.array(cand, np.int64), np.array(g)
        lazy_step(cand_a, g_a, 1, 1.0, lazy, n, capacity)
        full_step(cand_a, g_a, 1, 1.0, full, n, capacity)
        y_lazy, y_full = fractional_state(lazy, n), fractional_state(full, n, lazy=False)
        np.testing.assert_allclose(y_lazy, y_full, rtol=1e-9, atol=0.0)
        assert abs(y_full.sum() - capacity) < 1e-12 and y_full.max() <= 1.0 and y_full.min() > 0.0
        if cand == [0]:
            assert abs(y_full[0] - 1.0) < 1e-15 and 0.0 < y_full[1] < 1e-17
    assert y_full[1] > 0.9


def test_rounding_has_c_objects_and_marginals_y():
    """20,000 seeded roundings of a fixed y: exactly C objects each time, and every object's
    inclusion frequency within 5 standard errors sqrt(y (1 - y) / R) of y (+1e-3 for y near 0/1)."""
    rng = np.random.default_rng(0)
    n, capacity, rounds = 40, 9, 20000
    z = rng.pareto(1.0, n) + 0.01
    order = np.argsort(-z, kind="mergesort")
    j, s = capped_projection(z[order], 0.0, capacity)
    y = np.empty(n)
    y[order] = np.where(np.arange(n) < j, 1.0, s * z[order])
    assert j >= 1 and (y < 1).sum() > capacity  # some capped, many fractional
    sel = np.empty(n, bool)
    counts = np.zeros(n)
    for u in np.random.default_rng(1).random(rounds):
        systematic_round(y, capacity, u, sel)
        assert sel.sum() == capacity
        counts += sel
    freq = counts / rounds
    bound = 5 * np.sqrt(y * (1 - y) / rounds) + 1e-3
    assert np.all(np.abs(freq - y) <= bound)


def test_engine_state_is_in_the_capped_simplex():
    x, cat, _ = make_instance(3, n_obj=120, n_req=200)
    log = replay_objects(x, cat, ObjectReplayConfig(policy="acai", capacity=10, k=2, seed=4))
    y = fractional_state(log.fstate, 120)
    assert abs(y.sum() - 10) < 1e-9 and y.min() >= 0 and y.max() <= 1
    assert math.isclose(float(log.movement_cost.sum()), float(log.inserted.sum()) * log.config.c_f)


def test_acai_with_an_approximate_index():
    """With an IVF index the candidates are the index's list; the state stays in the simplex."""
    x, cat, _ = make_instance(8, n_obj=320, dim=6, n_req=150)
    cfg = ObjectReplayConfig(policy="acai", capacity=10, k=3, index="ivf", index_params={"nlist": 8, "nprobe": 1},
                             index_candidates=12)  # fmt: skip
    log = replay_objects(x, cat, cfg)
    y = fractional_state(log.fstate, 320)
    assert abs(y.sum() - 10) < 1e-9 and y.min() >= 0 and y.max() <= 1
    assert log.local.any()


def random_lazy_state(rng, n, capacity, eta, steps):
    """A lazy state after ``steps`` mirror steps on random candidate sets and gradients."""
    f = new_state(n, capacity)
    for _ in range(steps):
        m = int(rng.integers(1, n + 1))
        cand = rng.choice(n, m, replace=False).astype(np.int64)
        g = np.where(rng.random(m) < 0.7, rng.random(m), 0.0)
        lazy_step(cand, g, m, eta, f, n, capacity)
    return f


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 70), st.floats(0.05, 5.0), st.integers(0, 300))
def test_tree_rounding_equals_systematic_rounding(seed, n, eta, steps):
    """The lazy form's sum-tree rounding selects the same C objects as the systematic rounding of
    y over the whole catalogue (incremental tree updates and refreshes included), for random offsets
    (a structured offset such as u = 0 on the uniform initial state puts points exactly on interval
    boundaries, where the two float groupings of the cumulative sums may decide differently)."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(1, n))
    f = random_lazy_state(rng, n, capacity, eta, steps)
    y = fractional_state(f, n)
    sel = np.empty(n, bool)
    out = np.empty(capacity, np.int64)
    for u in rng.random(10):
        systematic_round(y, capacity, u, sel)
        tree_round(f, n, capacity, u, out)
        np.testing.assert_array_equal(out, np.flatnonzero(sel))


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**31))
def test_tree_rounding_has_marginals_y(seed):
    """8,000 seeded tree roundings of a lazy state: C distinct objects each time, and every
    object's inclusion frequency within 5 standard errors sqrt(y (1 - y) / R) of y (+1e-3)."""
    rng = np.random.default_rng(seed)
    n, capacity, rounds = 40, 9, 8000
    f = random_lazy_state(rng, n, capacity, 3.0, 40)
    y = fractional_state(f, n)
    out = np.empty(capacity, np.int64)
    counts = np.zeros(n)
    for u in rng.random(rounds):
        tree_round(f, n, capacity, u, out)
        assert len(set(out.tolist())) == capacity
        counts[out] += 1
    bound = 5 * np.sqrt(y * (1 - y) / rounds) + 1e-3
    assert np.all(np.abs(counts / rounds - y) <= bound)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=30), st.integers(1, 5), st.integers(0, 3), st.data())
def test_threshold_merge_equals_stable_sort(h_int, k, c_f, data):
    """The threshold's merge of the two sorted cost lists (ties included: integer costs, c_f >= 0)
    equals a stable sort of local_0, remote_0, local_1, ... by cost (the documented order)."""
    h = np.sort(np.array(h_int, np.float64))
    y = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(h), max_size=len(h))))
    elements = sorted([el for i in range(len(h)) for el in ((h[i], y[i]), (h[i] + c_f, 1.0))], key=lambda e: e[0])
    cum, want = 0.0, elements[-1][0]
    for cost, mass in elements:
        cum += mass
        if cum >= k:
            want = cost
            break
    assert acai_threshold(h, y, len(h), k, float(c_f)) == want
    assert acai_threshold(h[::-1].copy(), y[::-1].copy(), len(h), k, float(c_f)) <= h[-1] + c_f  # the sort path


def descent_round(f: np.ndarray, n: int, capacity: int, u: float) -> list[int]:
    """Slow reference for the lazy form's rounding: every point descends the sum tree from the
    root on its own (``point < acc + mass(left child)``, masses ``S w_sum + capped``), then the
    collision rule and the fill-up of the module doc."""
    p = 1 << max(0, (n - 1).bit_length())
    tw = 4 + 2 * n + capacity
    mass = lambda node: f[0] * f[tw + 2 * node] + f[tw + 2 * node + 1]  # noqa: E731
    step = mass(1) / capacity
    out: list[int] = []
    for i in range(capacity):
        point = (u + i) * step
        node, acc = 1, 0.0
        while node < p:
            if point < acc + mass(2 * node):
                node = 2 * node
            else:
                acc += mass(2 * node)
                node = 2 * node + 1
        if not point < acc + f[0] * f[tw + 2 * node] + f[tw + 2 * node + 1]:
            break
        o = max(node - p, out[-1] + 1 if out else 0)
        if o >= n:
            break
        out.append(o)
    rest = [o for o in range(n - 1, -1, -1) if o not in out]
    return sorted(out + rest[: capacity - len(out)])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 90), st.floats(0.05, 5.0), st.integers(0, 300))
@example(0, 64, 1.0, 0)  # the uniform initial state: every point on an interval boundary (u = 0)
@example(0, 37, 1.0, 0)
def test_tree_rounding_equals_descents_from_the_root(seed, n, eta, steps):
    """The finger search (each point resumes the previous point's descent) selects exactly what
    independent descents from the root select, bit for bit: random lazy states (tree updates and
    refreshes included), random offsets and the offset 0, which on the initial state puts every
    point on an interval boundary (ties with the thresholds)."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(1, n)) if n > 1 else 1
    f = random_lazy_state(rng, n, capacity, eta, steps) if n > 1 else new_state(n, capacity)
    out = np.empty(capacity, np.int64)
    for u in [0.0, *rng.random(6), 1.0 - 2**-53]:
        tree_round(f, n, capacity, u, out)
        assert out.tolist() == descent_round(f, n, capacity, u)


def test_tree_rounding_where_a_deeper_threshold_rounds_above_a_shallower_one():
    """Hand-made tree (8 objects, C = 2; object 3 empty) where float rounding puts the threshold of
    node 5 (``m(4) + m(10)``) one ulp above the root's (``m(2)``, with node 5 below it) and the
    second point in between: that point turns right at the root, so the finger search must climb
    by the smallest threshold turned left of above a level, not the deepest one (object 3, whose
    leaf the previous point's path leads to, would be taken instead of object 4)."""
    n, capacity = 8, 2
    f = new_fstate(n, capacity)
    f[0] = 2.9482554146958213  # the global scale S
    f[4 : 4 + n] = [0.008289873530975784, 0.01994698877999501, 0.8076925557406269, 0.0] + [0.01] * 4
    tree_build(f, n, capacity)
    tw = 4 + 2 * n + capacity
    mass = lambda node: f[0] * f[tw + 2 * node] + f[tw + 2 * node + 1]  # noqa: E731
    root_thr, deep_thr = mass(2), mass(4) + mass(10)
    assert deep_thr > root_thr  # the rounding this test is about
    step = mass(1) / capacity
    u = root_thr / step - 1.0
    while (u + 1.0) * step < root_thr:
        u = math.nextafter(u, 1.0)
    assert (u + 1.0) * step < deep_thr and 0.0 <= u < 1.0
    out = np.empty(capacity, np.int64)
    tree_round(f, n, capacity, u, out)
    assert out.tolist() == descent_round(f, n, capacity, u) == [2, 4]
