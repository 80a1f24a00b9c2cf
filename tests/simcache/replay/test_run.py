"""run_replay end to end: inputs, engine wiring, summary consistency, outputs, bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recvae.errors import UserError
from simcache.cache import replay as engine_replay
from simcache.cache.costs import CostModel
from simcache.replay import run_replay
from simcache.trace.io import load_requests, write_requests


def sim_lru_reference(x: np.ndarray, capacity: int, radius: float) -> tuple[list[int], list[int]]:
    """Obviously correct SIM-LRU: (outcome, served) per request (ties: oldest entry)."""
    cache: list[int] = []  # request indices, least recently used first
    outcome, served = [], []
    xd = x.astype(np.float64)
    for t in range(len(x)):
        best = None
        for e in cache:
            d = float(np.sqrt(((xd[e] - xd[t]) ** 2).sum()))
            if best is None or d < best[0] or (d == best[0] and e < best[1]):
                best = (d, e)
        if best is not None and best[0] <= radius:
            outcome.append(1 if best[0] == 0 else 2)
            served.append(best[1])
            cache.remove(best[1])
            cache.append(best[1])
            continue
        outcome.append(0)
        served.append(-1)
        if len(cache) >= capacity:
            cache.pop(0)
        cache.append(t)
    return outcome, served


def test_lru_end_to_end_matches_reference(trace_file, trace_columns):
    res = run_replay(trace_file, policy="lru", capacity=12, radius=0.15)
    outcome, served = sim_lru_reference(trace_columns["vectors"], 12, 0.15)
    assert res.log.outcome.tolist() == outcome
    assert res.log.served.tolist() == served
    c = res.summary.counts
    assert c["requests"] == len(outcome)
    assert c["exact_hits"] == outcome.count(1) and c["approx_hits"] == outcome.count(2)
    assert c["misses"] == outcome.count(0)
    assert 0 < c["exact_hits"] and 0 < c["approx_hits"] and 0 < c["misses"]


def test_summary_uses_every_trace_column(trace_file, trace_columns):
    res = run_replay(trace_file, policy="lru", capacity=20, radius=0.2, window=50, overlap_k=5)
    s = res.summary
    assert set(s.splits) == {"train", "validation", "test"}
    assert s.users["users"] == len(set(trace_columns["user_id"]))
    assert s.overlap["k"] == 5
    assert s.windows["window"] == 50 and len(s.windows["hit_ratio"]) == 8
    assert s.windows["first_timestamp"][0] == trace_columns["timestamp"][0]
    # the per-request arrays kept on the result agree with the log
    o = res.log.outcome
    assert np.isnan(res.overlap[o == 0]).all() and not np.isnan(res.overlap[o > 0]).any()
    np.testing.assert_array_equal(res.costs, np.where(o == 0, 1.0, 0.0))


def test_same_log_as_engine_called_directly(trace_file, trace_columns):
    params = {"acceptance": "linear", "scale": 0.3}
    res = run_replay(trace_file, policy="rnd-lru", capacity=15, radius=0.2, params=params, seed=7)
    direct = engine_replay(trace_columns["vectors"], policy="rnd-lru", capacity=15, radius=0.2,
                           params=params, seed=7)
    for name in ("outcome", "served", "distance", "inserted", "evicted"):
        np.testing.assert_array_equal(getattr(res.log, name), getattr(direct, name))
    assert res.parameters["params"]["acceptance"] == "linear"
    assert res.parameters["seed"] == 7


def test_inputs_in_other_formats_give_the_same_replay(tmp_path, trace_file, trace_columns):
    v = trace_columns["vectors"]
    base = run_replay(trace_file, policy="fifo", capacity=10, radius=0.2)
    np.save(tmp_path / "v.npy", v)
    pq.write_table(pa.table({"vec": pa.array(list(v))}), tmp_path / "v.parquet")
    batched = write_requests(tmp_path / "b.arrow", v, batch_rows=37)
    assert load_requests(batched).n_chunks > 1  # replayed as a stream of record batches
    for path in (tmp_path / "v.npy", tmp_path / "v.parquet", batched):
        res = run_replay(path, policy="fifo", capacity=10, radius=0.2)
        np.testing.assert_array_equal(res.log.outcome, base.log.outcome)
        np.testing.assert_array_equal(res.log.served, base.log.served)
        assert res.summary.splits is None and res.summary.overlap is None and res.summary.users is None


def test_limit_replays_a_prefix(trace_file):
    full = run_replay(trace_file, policy="lru", capacity=10, radius=0.2)
    head = run_replay(trace_file, policy="lru", capacity=10, radius=0.2, limit=123)
    assert head.summary.counts["requests"] == 123
    np.testing.assert_array_equal(head.log.outcome, full.log.outcome[:123])
    assert head.summary.users["users"] <= full.summary.users["users"]


def test_unsorted_trace_refused_then_sorted(tmp_path, trace_columns):
    c = trace_columns
    ts = c["timestamp"].copy()
    ts[[3, 4]] = ts[[4, 3]] if ts[3] != ts[4] else (ts[4] + 1, ts[3])
    path = write_requests(tmp_path / "u.arrow", c["vectors"], timestamp=ts)
    if (np.diff(ts) >= 0).all():
        pytest.skip("swap produced a sorted sequence")
    with pytest.raises(UserError, match="timestamps decrease"):
        run_replay(path, capacity=5)
    res = run_replay(path, capacity=5, sort=True)
    order = np.argsort(ts, kind="stable")
    direct = engine_replay(c["vectors"][order], capacity=5)
    np.testing.assert_array_equal(res.log.outcome, direct.outcome)
    assert res.parameters["sort"] is True


def test_costs_and_cosine(trace_file, trace_columns):
    cm = CostModel("power", retrieval_cost=2.0, scale=3.0, exponent=2.0)
    res = run_replay(trace_file, policy="qlru-dc", capacity=10, radius=0.05, metric="cosine", cost=cm,
                     params={"q": 0.5})
    d = res.log.distance.astype(np.float64)
    o = res.log.outcome
    expected = np.where(o == 0, 2.0, np.minimum(2.0, 3.0 * d**2))
    np.testing.assert_allclose(res.costs, expected)
    assert res.summary.cost["mean_service_cost"] == pytest.approx(expected.mean())
    assert res.parameters["cost"] == {"kind": "power", "retrieval_cost": 2.0, "scale": 3.0, "exponent": 2.0}
    assert res.parameters["metric"] == "cosine"


def test_save_writes_json_per_user_and_request_log(tmp_path, trace_file, trace_columns):
    res = run_replay(trace_file, policy="lru", capacity=20, radius=0.2)
    written = res.save(tmp_path / "out", request_log=True)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["simcache_version"]
    assert summary["parameters"]["capacity"] == 20 and summary["parameters"]["radius"] == 0.2
    assert summary["parameters"]["policy"] == "lru"
    assert summary["input"]["path"] == str(trace_file)
    assert summary["input"]["requests"] == 400 and summary["input"]["dim"] == 6
    assert summary["input"]["metadata"]["dataset"] == "synthetic"
    assert summary["input"]["metadata"]["items"] == "<list of 300 values omitted>"
    assert summary["counts"] == res.summary.counts
    assert set(summary) >= {"counts", "cost", "distance", "windows", "splits", "users", "overlap", "timing"}

    per_user = pq.read_table(written["per_user"]).to_pandas()
    assert per_user["requests"].sum() == 400

    log = pq.read_table(written["requests"]).to_pandas()
    assert len(log) == 400
    np.testing.assert_array_equal(log["outcome"], res.log.outcome)
    np.testing.assert_array_equal(log["served"], res.log.served)
    np.testing.assert_array_equal(log["evicted"], res.log.evicted)
    np.testing.assert_array_equal(log["inserted"], res.log.inserted)
    np.testing.assert_array_equal(log["timestamp"], trace_columns["timestamp"])
    assert list(log["user_id"]) == list(trace_columns["user_id"])
    hits = res.log.outcome > 0
    np.testing.assert_allclose(log["overlap"][hits], res.overlap[hits])
    assert log["overlap"][~hits].isna().all()
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temporary files left behind


def test_out_argument_saves(tmp_path, trace_file):
    run_replay(trace_file, capacity=5, out=tmp_path / "o")
    assert (tmp_path / "o" / "summary.json").is_file()
    assert not (tmp_path / "o" / "requests.parquet").exists()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"capacity": 0}, "capacity must be a positive integer"),
        ({"capacity": -3}, "capacity must be a positive integer"),
        ({"capacity": 2.5}, "capacity must be a positive integer"),
        ({"capacity": 5, "radius": -0.1}, "radius must be a finite number >= 0"),
        ({"capacity": 5, "radius": float("nan")}, "radius must be a finite number >= 0"),
        ({"capacity": 5, "policy": "belady"}, "unknown policy 'belady'; choose one of lru, fifo"),
        ({"capacity": 5, "metric": "manhattan"}, "unknown metric"),
        ({"capacity": 5, "index": "lsh"}, "unknown index"),
        ({"capacity": 5, "engine": "turbo"}, "unknown engine"),
        ({"capacity": 5, "window": 0}, "window must be a positive integer"),
        ({"capacity": 5, "policy": "lru", "params": {"q": 0.5}}, "has no parameter q"),
        ({"capacity": 5, "policy": "rnd-lru", "params": {"acceptance": "cubic"}}, "acceptance must be one of"),
        ({"capacity": 5, "overlap_k": 11}, "overlap k 11 exceeds the trace's top-k length 10"),
    ],
)
def test_bad_arguments(trace_file, kwargs, message):
    with pytest.raises(UserError, match=message):
        run_replay(trace_file, **kwargs)


def test_bad_arguments_are_refused_before_loading(tmp_path):
    # the file does not exist, but the argument error comes first
    with pytest.raises(UserError, match="capacity"):
        run_replay(tmp_path / "missing.arrow", capacity=0)


def test_hit_provenance_equals_a_direct_count(trace_file):
    """Same-user and other-user hits, from the per-request log and the trace's user column."""
    res = run_replay(trace_file, policy="lru", capacity=30, radius=0.3)
    users = load_requests(trace_file).user_id
    hits = np.flatnonzero(res.log.outcome > 0)
    same = int(sum(users[res.log.served[t]] == users[t] for t in hits))
    pv = res.summary.provenance
    assert 0 < same < hits.size
    assert (pv["same_user_hits"], pv["other_user_hits"]) == (same, hits.size - same)
    assert pv["same_user_hit_ratio"] == pytest.approx(same / len(users))
    assert pv["same_user_distance"]["count"] == same
    assert np.array_equal(res.provenance[hits] == 1, users[res.log.served[hits]] == users[hits])
    assert "same-user hits" in res.table() and "other-user hits" in res.table()


def test_exclude_self_leaves_only_cross_user_hits(trace_file):
    res = run_replay(trace_file, policy="lru", capacity=30, radius=0.3, exclude_self=True)
    assert res.summary.provenance["same_user_hits"] == 0 and res.summary.provenance["other_user_hits"] > 0
    assert res.parameters["exclude_self"] is True


def test_exclude_self_needs_users(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32))
    with pytest.raises(UserError, match="needs user ids"):
        run_replay(tmp_path / "x.npy", capacity=5, exclude_self=True)
