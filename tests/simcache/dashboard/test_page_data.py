"""The numbers behind the pages, checked against direct computations and the replay's own summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcache.dashboard import models, replays, sweeps, traces
from simcache.trace.io import load_requests


# -- traces ------------------------------------------------------------------------------------
def test_sample_takes_whole_users_up_to_the_cap_and_is_seeded(outputs) -> None:
    req = load_requests(outputs.trace)
    rows = traces.sample_rows(req, 60, seed=3)
    users = set(req.user_id[rows])
    every_row_of_those_users = np.flatnonzero(np.isin(req.user_id, list(users)))
    assert np.array_equal(rows, every_row_of_those_users)
    assert 0 < len(rows) <= 60
    assert np.array_equal(rows, traces.sample_rows(req, 60, seed=3))
    assert not np.array_equal(rows, traces.sample_rows(req, 60, seed=4))
    assert np.array_equal(traces.sample_rows(req, 10**6), np.arange(len(req)))


@given(counts=st.lists(st.integers(1, 9), min_size=1, max_size=12), cap=st.integers(1, 60), seed=st.integers(0, 5))
@settings(max_examples=40, deadline=None)
def test_sample_never_splits_a_user_and_stays_under_the_cap(counts, cap, seed) -> None:
    class Req:  # the two things sample_rows reads
        user_id = np.array([f"u{u}" for u, c in enumerate(counts) for _ in range(c)], dtype=object)

        def __len__(self) -> int:
            return len(self.user_id)

    rows = traces.sample_rows(Req(), cap, seed)
    picked = Req.user_id[rows]
    for u in set(picked):
        assert (picked == u).sum() == (Req.user_id == u).sum()
    assert len(rows) <= max(cap, max(counts))
    assert len(rows) >= 1


def test_pca_matches_the_covariance_eigenvectors(outputs) -> None:
    x = load_requests(outputs.trace).vectors.astype(np.float64)
    y = traces.pca_2d(x)
    xc = x - x.mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov(xc, rowvar=False))
    top = vecs[:, ::-1][:, :2]
    for k in range(2):  # same axis up to sign
        assert abs(np.corrcoef(y[:, k], xc @ top[:, k])[0, 1]) == pytest.approx(1.0, abs=1e-9)
        assert y[:, k].var(ddof=1) == pytest.approx(vals[::-1][k], rel=1e-9)


def test_user_track_orders_by_seq_and_measures_steps(outputs) -> None:
    req = load_requests(outputs.trace)
    rows = np.arange(len(req))
    frame = traces.sample_frame(req, rows)
    vectors = req.vectors.astype(np.float64)
    user = traces.users_by_embeddings(frame)[0]
    track = traces.user_track(frame, traces.pca_2d(vectors), vectors, user)
    own = np.flatnonzero(req.user_id == user)
    own = own[np.argsort(req.seq[own])]
    assert track["row"].tolist() == own.tolist()
    expected = np.linalg.norm(np.diff(req.vectors[own].astype(np.float64), axis=0), axis=1)
    assert np.isnan(track["step"].iloc[0])
    np.testing.assert_allclose(track["step"].to_numpy()[1:], expected, rtol=1e-12)
    counts = pd.Series(req.user_id).value_counts()
    assert len(track) == counts.max() and (frame["per_user"] == frame["user_id"].map(counts)).all()


def test_sample_frame_columns_and_colourings(outputs) -> None:
    req = load_requests(outputs.trace)
    frame = traces.sample_frame(req, np.arange(5))
    np.testing.assert_allclose(frame["norm"], np.linalg.norm(req.vectors[:5].astype(np.float64), axis=1))
    assert list(traces.colourings(frame)) == ["split", "time", "norm", "per_user"]
    assert pd.api.types.is_datetime64_any_dtype(frame["time"])


def test_quantile_table_holds_the_trace_info_numbers(outputs) -> None:
    from simcache.trace.info import trace_info

    info = trace_info(outputs.trace)
    table = traces.quantile_table(info)
    assert table.loc["step distance, same user", "50%"] == info.consecutive_same_user["q0.5"]
    assert table.loc["L2 norm", "max"] == info.norms["q1"]


# -- sweeps ------------------------------------------------------------------------------------
def test_sweep_metrics_axes_and_nag(outputs) -> None:
    df = sweeps.load_results(outputs.sweep)
    assert sweeps.axes(df) == ["capacity", "radius"]
    m = sweeps.metrics(df)
    assert list(m)[:2] == ["hit_ratio", "exact_hit_ratio"] and "nag" not in m
    assert not {"requests", "hits", "replay_s", "capacity"} & set(m)
    nag = sweeps.load_results(outputs.nag_sweep)
    assert sweeps.metrics(nag)["nag"].startswith("NAG")


def test_filter_results_fixes_axes_and_policies(outputs) -> None:
    df = sweeps.load_results(outputs.sweep)
    sub = sweeps.filter_results(df, policies=["lru", "lfu"], fixed={"radius": 0.5})
    direct = df[df["policy"].isin(["lru", "lfu"]) & (df["radius"] == 0.5)]
    assert sub.reset_index(drop=True).equals(direct.reset_index(drop=True)) and len(sub) == 6
    assert not sweeps.varied_params(df)
    two = pd.concat([df, df.assign(params="q=0.5")], ignore_index=True)
    assert sweeps.varied_params(two)
    labels = sweeps.series_label(two, ["params"])
    assert "lru, q=0.5" in set(labels) and "lru" in set(labels)


# -- replays -----------------------------------------------------------------------------------
def test_log_windows_equal_the_replays_own_windows(outputs) -> None:
    summary = replays.load_summary(outputs.run_lru / "summary.json")
    log = replays.load_log(outputs.run_lru / "requests.parquet")
    stored = replays.windows_from_summary(summary)
    again = replays.windows_from_log(log, summary["windows"]["window"])
    pd.testing.assert_frame_equal(stored, again)
    assert log.timestamp is not None and "time" in again.columns


def test_log_histogram_counts_every_hit_and_matches_the_summary(outputs) -> None:
    summary = replays.load_summary(outputs.run_lru / "summary.json")
    log = replays.load_log(outputs.run_lru / "requests.parquet")
    stored = replays.histogram_from_summary(summary)
    edges = np.r_[stored["lo"].to_numpy(), stored["hi"].to_numpy()[-1]]
    again = replays.histogram_from_log(log, len(stored), hi=edges[-1])
    np.testing.assert_array_equal(again["count"], stored["count"])
    assert again["count"].sum() == summary["counts"]["hits"]
    assert again["share"].sum() == pytest.approx(1.0)
    assert replays.describe(summary) == "lru, C=20, r=0.5"


def test_a_bad_log_or_summary_is_a_user_error(tmp_path) -> None:
    from recvae.errors import UserError

    (tmp_path / "requests.parquet").write_text("not parquet")
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(UserError, match="cannot read the request log"):
        replays.load_log(tmp_path / "requests.parquet")
    with pytest.raises(UserError, match="not a replay summary"):
        replays.load_summary(tmp_path / "summary.json")


# -- models ------------------------------------------------------------------------------------
def test_trace_space_histograms_and_their_densities(outputs) -> None:
    req = load_requests(outputs.trace)
    space = models.space_from_trace("a", req, max_rows=10**6)
    norms = np.linalg.norm(req.vectors.astype(np.float64), axis=1)
    assert space.rows == len(req) and space.norm_counts.sum() == len(req)
    assert space.norm_median == pytest.approx(np.median(norms))
    assert space.norm_edges[0] == pytest.approx(norms.min()) and space.norm_edges[-1] == pytest.approx(norms.max())
    for kind in ("norm", "angle"):
        dens = models.density_frame([space], kind)
        x, y = dens["x"].to_numpy(), dens["density"].to_numpy()
        area = np.sum((x[1::2] - x[0::2]) * y[0::2])  # each bin is one pair of rows
        assert area == pytest.approx(1.0)
    scaled = models.density_frame([space], "norm", scale_by_median=True)
    assert scaled["x"].max() == pytest.approx(norms.max() / np.median(norms))
    latest = models.space_from_trace("a", req, latest=True)
    assert latest.rows == len(set(req.user_id))


def test_analysis_space_reads_the_stored_data_histograms(outputs) -> None:
    import json

    space = models.space_from_analysis("b", outputs.analysis)
    norms = json.loads((outputs.analysis / "norms.json").read_text())
    assert space.norm_counts.tolist() == norms["sets"]["data"]["histogram"]["counts"]
    assert space.dim == 8 and space.rows == norms["n"]
    table = models.summary_table([space])
    assert table["median norm"].iloc[0] == norms["sets"]["data"]["summary"]["q50"]
    ref = models.isotropic_angles([8, 8, 3])
    assert sorted(ref["dimension"].unique()) == ["isotropic, d=3", "isotropic, d=8"]
