"""Every summary number against a direct, one-request-at-a-time computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simcache.cache.costs import CostModel
from simcache.replay.accounting import (
    auto_window,
    outcome_counts,
    overlap_counts,
    summarize,
    value_stats,
    window_ratios,
)


def _fake_log(n: int = 997, seed: int = 0, k: int = 8):
    """A ReplayLog-like record with consistent fields, plus trace columns."""
    rng = np.random.default_rng(seed)
    outcome = rng.choice([0, 1, 2], size=n, p=[0.4, 0.15, 0.45]).astype(np.int8)
    outcome[0] = 0
    distance = rng.uniform(0.01, 2.0, n).astype(np.float32)
    distance[outcome == 1] = 0.0
    distance[0] = np.inf
    served = np.full(n, -1, np.int64)
    for t in np.flatnonzero(outcome > 0):
        served[t] = rng.integers(0, t)
    log = SimpleNamespace(outcome=outcome, served=served, distance=distance,
                          inserted=outcome == 0, evicted=np.full(n, -1, np.int64))
    cols = {
        "timestamp": np.sort(rng.integers(0, 10**6, n)).astype(np.int64),
        "split": np.array(["train", "validation", "test"], dtype=object)[rng.integers(0, 3, n)],
        "user_id": np.array([f"user{u}" for u in rng.zipf(1.6, n) % 50], dtype=object),
        "topk": np.stack([rng.choice(20, k, replace=False) for _ in range(n)]).astype(np.int32),
    }
    return log, cols


def _cost_of(o, d, cm):
    if o == 0:
        return cm.retrieval_cost
    if cm.kind == "zero":
        h = 0.0
    elif cm.kind == "linear":
        h = cm.scale * float(d)
    else:
        h = cm.scale * float(d) ** cm.exponent
    return min(cm.retrieval_cost, h)


def test_outcome_counts_direct():
    log, _ = _fake_log()
    c = outcome_counts(log.outcome)
    o = log.outcome.tolist()
    n = len(o)
    assert c["requests"] == n
    assert c["exact_hits"] == sum(1 for x in o if x == 1)
    assert c["approx_hits"] == sum(1 for x in o if x == 2)
    assert c["misses"] == sum(1 for x in o if x == 0)
    assert c["hits"] == c["exact_hits"] + c["approx_hits"]
    assert c["hits"] + c["misses"] == n
    assert c["hit_ratio"] == pytest.approx(c["hits"] / n)
    assert c["miss_ratio"] == pytest.approx(c["misses"] / n)
    assert c["exact_hit_ratio"] + c["approx_hit_ratio"] == pytest.approx(c["hit_ratio"])


def test_outcome_counts_rejects_unknown_codes_and_handles_empty():
    with pytest.raises(ValueError):
        outcome_counts(np.array([0, 3], np.int8))
    assert outcome_counts(np.zeros(0, np.int8))["requests"] == 0


@pytest.mark.parametrize("cm", [CostModel(), CostModel("linear", retrieval_cost=1.5, scale=0.9),
                                CostModel("power", retrieval_cost=2.0, scale=1.3, exponent=3.0)])
def test_costs_direct(cm):
    log, _ = _fake_log(seed=1)
    acc = summarize(log, cost=cm)
    expected = [_cost_of(o, d, cm) for o, d in zip(log.outcome, log.distance, strict=True)]
    np.testing.assert_allclose(acc.costs, expected, rtol=1e-12)
    c = acc.summary.cost
    assert c["mean_service_cost"] == pytest.approx(sum(expected) / len(expected))
    assert c["total_service_cost"] == pytest.approx(sum(expected))
    hits = [i for i, o in enumerate(log.outcome) if o > 0]
    approx = [i for i, o in enumerate(log.outcome) if o == 2]

    def h(d):
        return {"zero": 0.0, "linear": cm.scale * d, "power": cm.scale * d**cm.exponent}[cm.kind]

    assert c["mean_approx_cost_hits"] == pytest.approx(sum(h(float(log.distance[i])) for i in hits) / len(hits))
    assert c["mean_approx_cost_approx_hits"] == pytest.approx(
        sum(h(float(log.distance[i])) for i in approx) / len(approx))
    assert c["mean_service_cost_hits"] == pytest.approx(sum(expected[i] for i in hits) / len(hits))
    assert c["total_retrieval_cost"] == pytest.approx(cm.retrieval_cost * sum(1 for o in log.outcome if o == 0))
    assert c["kind"] == cm.kind and c["retrieval_cost"] == cm.retrieval_cost


def test_distance_distribution_direct():
    log, _ = _fake_log(seed=2)
    acc = summarize(log, radius=2.5)
    dh = [float(d) for d, o in zip(log.distance, log.outcome, strict=True) if o > 0]
    s = acc.summary.distance["hits"]
    assert s["count"] == len(dh)
    assert s["mean"] == pytest.approx(sum(dh) / len(dh))
    srt = sorted(dh)
    assert s["quantiles"]["p0"] == srt[0] and s["quantiles"]["p100"] == srt[-1]
    assert s["quantiles"]["p50"] == pytest.approx(float(np.median(dh)))
    hist = s["histogram"]
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 2.5  # range widened to the radius
    assert sum(hist["counts"]) == len(dh)
    edges = hist["edges"]
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        last = b == len(edges) - 2
        want = sum(1 for d in dh if lo <= d < hi or (last and d == hi))
        assert hist["counts"][b] == want
    da = [float(d) for d, o in zip(log.distance, log.outcome, strict=True) if o == 2]
    assert acc.summary.distance["approx_hits"]["count"] == len(da)
    assert acc.summary.distance["approx_hits"]["quantiles"]["p0"] == min(da)


def test_value_stats_empty():
    s = value_stats(np.zeros(0))
    assert s["count"] == 0 and s["mean"] is None and s["quantiles"]["p50"] is None
    assert sum(s["histogram"]["counts"]) == 0


@pytest.mark.parametrize("window", [1, 7, 100, 997, 5000])
def test_windows_direct(window):
    log, cols = _fake_log(seed=3)
    costs = np.arange(len(log.outcome), dtype=np.float64)
    w = window_ratios(log.outcome, window, costs=costs, timestamp=cols["timestamp"])
    o = log.outcome.tolist()
    n = len(o)
    expect_starts = list(range(0, n, window))
    assert w["start"] == expect_starts
    for i, s in enumerate(expect_starts):
        chunk = o[s : s + window]
        assert w["size"][i] == len(chunk)
        assert w["hit_ratio"][i] == pytest.approx(sum(x > 0 for x in chunk) / len(chunk))
        assert w["exact_hit_ratio"][i] == pytest.approx(sum(x == 1 for x in chunk) / len(chunk))
        assert w["approx_hit_ratio"][i] == pytest.approx(sum(x == 2 for x in chunk) / len(chunk))
        assert w["mean_service_cost"][i] == pytest.approx(float(np.mean(costs[s : s + window])))
        assert w["first_timestamp"][i] == cols["timestamp"][s]
        assert w["last_timestamp"][i] == cols["timestamp"][s + len(chunk) - 1]
    assert sum(w["size"]) == n


def test_auto_window():
    assert auto_window(1) == 1 and auto_window(100) == 1 and auto_window(101) == 2
    assert auto_window(1_000_000) == 10_000


def test_split_breakdown_direct():
    log, cols = _fake_log(seed=4)
    cm = CostModel("linear", scale=0.5)
    acc = summarize(log, cost=cm, split=cols["split"])
    sp = acc.summary.splits
    assert set(sp) == {"train", "validation", "test"}
    for name, v in sp.items():
        idx = [i for i, s in enumerate(cols["split"]) if s == name]
        o = [int(log.outcome[i]) for i in idx]
        assert v["requests"] == len(idx)
        assert v["hits"] == sum(x > 0 for x in o)
        assert v["exact_hits"] == sum(x == 1 for x in o)
        assert v["approx_hits"] == sum(x == 2 for x in o)
        assert v["misses"] == sum(x == 0 for x in o)
        assert v["hit_ratio"] == pytest.approx(v["hits"] / len(idx))
        assert v["mean_service_cost"] == pytest.approx(
            sum(_cost_of(log.outcome[i], log.distance[i], cm) for i in idx) / len(idx))
    assert sum(v["requests"] for v in sp.values()) == len(log.outcome)


def test_user_breakdown_direct():
    log, cols = _fake_log(seed=5)
    acc = summarize(log, user_id=cols["user_id"])
    table = acc.summary.per_user
    users = sorted(set(cols["user_id"]))
    assert list(table["user_id"]) == users
    per = {}
    for u, o in zip(cols["user_id"], log.outcome, strict=True):
        r = per.setdefault(u, [0, 0, 0, 0])
        r[0] += 1
        r[1] += o > 0
        r[2] += o == 1
        r[3] += o == 2
    for row in table.itertuples(index=False):
        r = per[row.user_id]
        assert (row.requests, row.hits, row.exact_hits, row.approx_hits) == tuple(r)
        assert row.misses == r[0] - r[1]
        assert row.hit_ratio == pytest.approx(r[1] / r[0])
    u = acc.summary.users
    assert u["users"] == len(users)
    assert u["users_with_hits"] == sum(1 for r in per.values() if r[1] > 0)
    ratios = [r[1] / r[0] for r in per.values()]
    assert u["hit_ratio"]["mean"] == pytest.approx(sum(ratios) / len(ratios))
    assert u["hit_ratio"]["quantiles"]["p50"] == pytest.approx(float(np.median(ratios)))
    busiest = sorted(per.items(), key=lambda kv: (-kv[1][0], kv[0]))[:10]
    assert [x["user_id"] for x in u["top_users"]] == [k for k, _ in busiest]
    assert [x["requests"] for x in u["top_users"]] == [v[0] for _, v in busiest]


def test_overlap_counts_direct():
    rng = np.random.default_rng(6)
    topk = np.stack([rng.choice(30, 10, replace=False) for _ in range(200)]).astype(np.int32)
    topk[5, 3:] = -1  # padding never matches
    topk[7, 2:] = -1
    a = rng.integers(0, 200, 500)
    b = rng.integers(0, 200, 500)
    a[:3], b[:3] = 5, 7
    for k in (1, 4, 10):
        got = overlap_counts(topk, a, b, k)
        want = [len({x for x in topk[i, :k] if x >= 0} & {x for x in topk[j, :k] if x >= 0})
                for i, j in zip(a, b, strict=True)]
        assert got.tolist() == want


def test_overlap_summary_direct():
    log, cols = _fake_log(seed=7, k=8)
    topk = cols["topk"]
    topk[np.flatnonzero(log.outcome == 1)[:5]] = topk[log.served[np.flatnonzero(log.outcome == 1)[:5]]]
    acc = summarize(log, topk=topk, overlap_k=5)
    o = acc.summary.overlap
    assert o["k"] == 5

    def ov(t):
        return len(set(topk[log.served[t], :5]) & set(topk[t, :5])) / 5

    approx = [t for t in range(len(log.outcome)) if log.outcome[t] == 2]
    exact = [t for t in range(len(log.outcome)) if log.outcome[t] == 1]
    assert o["approx_hits"]["count"] == len(approx)
    assert o["approx_hits"]["mean"] == pytest.approx(sum(ov(t) for t in approx) / len(approx))
    assert o["exact_hits"]["mean"] == pytest.approx(sum(ov(t) for t in exact) / len(exact))
    assert o["hits"]["mean"] == pytest.approx(sum(ov(t) for t in approx + exact) / len(approx + exact))
    per = acc.overlap
    assert np.isnan(per[log.outcome == 0]).all()
    for t in approx[:50] + exact[:50]:
        assert per[t] == pytest.approx(ov(t))
    by = o["by_distance"]
    assert sum(by["count"]) == len(approx)
    edges = by["edges"]
    for b in range(len(edges) - 1):
        members = [t for t in approx if edges[b] <= log.distance[t] < edges[b + 1]
                   or (b == len(edges) - 2 and log.distance[t] == edges[-1])]
        assert by["count"][b] == len(members)
        if members:
            assert by["mean"][b] == pytest.approx(sum(ov(t) for t in members) / len(members))


def test_summary_without_optional_columns_is_json_ready():
    import json

    from simcache.jsonout import to_jsonable

    log, _ = _fake_log(seed=8)
    acc = summarize(log)
    s = acc.summary
    assert s.splits is None and s.users is None and s.overlap is None and s.per_user is None
    json.dumps(to_jsonable(s.to_dict()), allow_nan=False)


def test_all_misses_and_empty_cache_distances():
    n = 10
    log = SimpleNamespace(outcome=np.zeros(n, np.int8), served=np.full(n, -1), distance=np.full(n, np.inf, np.float32))
    acc = summarize(log, cost=CostModel(retrieval_cost=3.0))
    assert acc.summary.counts["hit_ratio"] == 0.0
    assert acc.summary.cost["mean_service_cost"] == 3.0
    assert acc.summary.cost["mean_approx_cost_hits"] is None
    assert acc.summary.distance["hits"]["count"] == 0
