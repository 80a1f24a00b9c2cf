"""`simcache trace info` and `simcache build-trace`: summary numbers against brute force, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recvae.data import load_interactions, prepare
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace.build import write_trace_for
from recvae.trace.recvae_encoder import RecVAEEncoder
from simcache.cli.app import app
from simcache.trace.info import (
    PER_USER_BINS,
    consecutive_distances,
    nearest_other_distances,
    per_user_histogram,
    quantiles,
    summarize,
    trace_info,
)
from simcache.trace.io import load_requests

runner = CliRunner()


def random_trace(seed: int = 0, n: int = 300, d: int = 6):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 25, n)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    seq = np.zeros(n, dtype=np.int64)
    for u in np.unique(users):
        seq[users == u] = np.arange((users == u).sum())
    return vectors, np.array([f"u{u}" for u in users]), seq


def test_nearest_other_user_distance_equals_brute_force() -> None:
    vectors, users, _ = random_trace()
    codes = np.unique(users, return_inverse=True)[1]
    got = nearest_other_distances(vectors, vectors, codes, codes)
    v = vectors.astype(np.float64)
    d = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1))
    d[codes[:, None] == codes[None, :]] = np.inf
    np.testing.assert_allclose(got, d.min(axis=1), rtol=1e-12)
    # excluding only the row itself
    ids = np.arange(len(v))
    d2 = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d2, np.inf)
    np.testing.assert_allclose(nearest_other_distances(vectors, vectors, ids, ids), d2.min(axis=1), rtol=1e-12)


def test_consecutive_distances_follow_seq() -> None:
    vectors, users, seq = random_trace(1)
    codes = np.unique(users, return_inverse=True)[1]
    shuffled = np.random.default_rng(0).permutation(len(users))
    got = np.sort(consecutive_distances(vectors[shuffled], codes[shuffled], seq[shuffled]))
    expected = []
    for u in np.unique(codes):
        rows = np.flatnonzero(codes == u)  # already in seq order
        for a, b in zip(rows[:-1], rows[1:]):
            expected.append(np.linalg.norm(vectors[a].astype(np.float64) - vectors[b]))
    np.testing.assert_allclose(got, np.sort(expected), rtol=1e-12)


def test_summary_numbers() -> None:
    vectors, users, seq = random_trace(2)
    ts = np.arange(len(users)) * 10 + 1_000_000_000
    info = summarize(vectors, timestamp=ts, user_id=users, seq=seq, split=np.array(["train"] * len(users)),
                     sample=10_000, metadata={"clock": "time", "items": [1, 2, 3]})
    assert info.rows == 300 and info.dim == 6 and info.users == len(set(users))
    assert info.time_min == ts[0] and info.time_max == ts[-1]
    assert info.splits == {"train": 300}
    assert "items" not in info.metadata
    counts = np.unique(users, return_counts=True)[1]
    assert sum(info.per_user["histogram"].values()) == info.users
    assert info.per_user["max"] == counts.max() and info.per_user["mean"] == pytest.approx(counts.mean())
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    assert info.norms["q0.5"] == pytest.approx(np.median(norms))
    assert info.norms["q0"] == pytest.approx(norms.min()) and info.norms["q1"] == pytest.approx(norms.max())
    assert info.sample["queries"] == 300 and not info.sample["reference_sampled"]
    assert info.sample["pairs"] == 300 - info.users
    text = info.format()
    for word in ("rows", "users", "time span", "NN distance, other user", "step distance, same user"):
        assert word in text
    json.dumps(info.to_dict())


def test_sampling_is_seeded_and_bounded() -> None:
    vectors, users, seq = random_trace(3, n=500)
    a = summarize(vectors, user_id=users, seq=seq, sample=50, reference=200, seed=4)
    b = summarize(vectors, user_id=users, seq=seq, sample=50, reference=200, seed=4)
    assert a.nn_other_user == b.nn_other_user
    assert a.sample == {"queries": 50, "reference": 200, "reference_sampled": True, "seed": 4, "pairs": 500 - a.users}


def test_histogram_bins_and_quantiles() -> None:
    h = per_user_histogram(np.repeat(np.arange(4), [1, 3, 7, 150]))
    assert h["histogram"]["1"] == 1 and h["histogram"]["3"] == 1 and h["histogram"]["6-10"] == 1
    assert h["histogram"]["101+"] == 1 and len(h["histogram"]) == len(PER_USER_BINS)
    assert quantiles(np.array([])) == {}


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    params = dict(n_users=200, n_items=150, seed=1)
    prepared = prepare("synthetic", progress=False, **params)
    df = load_interactions("synthetic", **params)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=8))
    return write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model),
                           out=tmp_path / "small.arrow", topk=5, progress=False).path


def test_trace_is_readable_by_the_replay_reader(small_trace: Path) -> None:
    req = load_requests(small_trace)
    assert req.dim == 8 and req.topk.shape == (len(req), 5)
    assert (np.diff(req.timestamp) >= 0).all()
    assert req.metadata["format"] == "simcache-trace"
    info = trace_info(small_trace, sample=100)
    assert info.rows == len(req) and info.metadata["dataset"] == "synthetic"


def test_cli_trace_info(small_trace: Path) -> None:
    res = runner.invoke(app, ["trace", "info", str(small_trace), "--sample", "50"])
    assert res.exit_code == 0, res.output
    assert "rows" in res.output and "NN distance, other user" in res.output
    res = runner.invoke(app, ["trace", "info", str(small_trace), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["dim"] == 8 and d["rows"] > 0 and "q0.5" in d["norms"]
    res = runner.invoke(app, ["trace", "info", str(small_trace.parent / "missing.arrow")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_cli_build_trace_then_info(tmp_path: Path) -> None:
    out = tmp_path / "cli.arrow"
    res = runner.invoke(app, ["build-trace", "synthetic", "--n-users", "150", "--n-items", "100", "--epochs", "1",
                              "--device", "cpu", "--topk", "3", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "embeddings of" in res.output
    res = runner.invoke(app, ["trace", "info", str(out)])
    assert res.exit_code == 0, res.output


def test_cli_build_trace_user_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["build-trace", "msd", "--out", str(tmp_path / "m.arrow")])
    assert res.exit_code == 2 and "no timestamps" in res.output and "--clock file-order" in res.output
    res = runner.invoke(app, ["build-trace", "synthetic", "--step", "0"])
    assert res.exit_code == 2 and "--step" in res.output
    res = runner.invoke(app, ["build-trace", "synthetic", "--users", "@" + str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_suggested_radii_per_regime():
    from simcache.trace.info import suggest_radii

    other = {"q0.05": 2.0, "q0.25": 3.0, "q0.5": 4.0}
    steps = {"q0.25": 0.1, "q0.5": 0.2, "q0.75": 0.4}
    s = suggest_radii(other, steps)
    assert s == {"same_user": [0.1, 0.2, 0.4], "cross_user": [2.0, 3.0, 4.0], "separation": 20.0}
    assert suggest_radii(other, {}) == {"cross_user": [2.0, 3.0, 4.0]}


def test_a_non_finite_reference_row_is_nobodys_nearest() -> None:
    """A NaN row (or one whose squared norm overflows float32) must not hide every other row."""
    vectors, _, _ = random_trace()
    ref = vectors.astype(np.float32).copy()
    ref[3] = np.nan
    ref[5] = 3e19
    ids = np.arange(len(ref))
    got = nearest_other_distances(vectors, ref, ids + len(ref), ids)  # no row is excluded
    finite = np.ones(len(ref), bool)
    finite[[3, 5]] = False
    v, r = vectors.astype(np.float64), ref[finite].astype(np.float64)
    want = np.sqrt(((v[:, None, :] - r[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
