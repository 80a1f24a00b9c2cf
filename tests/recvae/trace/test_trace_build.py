"""Building traces end to end: order, schedule, embeddings, schema, metadata, determinism, atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from recvae.data import load_interactions, prepare
from recvae.errors import UserError
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace import format as S
from recvae.trace import format as trace_writer
from recvae.trace.build import build_trace, build_trace_stats, write_trace_for
from recvae.trace.format import read_metadata
from recvae.trace.history import build_histories
from recvae.trace.prefix import PrefixBatch, direct_prefix_embeddings
from recvae.trace.recvae_encoder import RecVAEEncoder
from recvae.trace.schedule import Schedule

SYNTH = dict(n_users=300, n_items=250, seed=5)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def synth(synthetic_data):
    """Prepared synthetic data, its raw interactions and a small random model (own cache folder)."""
    prepared, df = synthetic_data(**SYNTH)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=32, latent_dim=8)).eval()
    return prepared, df, model


def read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as src:
        return pa.ipc.open_file(src).read_all()


def build(synth, path: Path, **kw):
    prepared, df, model = synth
    kw.setdefault("topk", 15)
    return write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model, checkpoint_sha256="f" * 64),
                           out=path, progress=False, **kw)


def test_rows_follow_the_schedule_and_time(synth, tmp_path: Path) -> None:
    prepared, df, model = synth
    stats = build(synth, tmp_path / "t.arrow")
    t = read_table(stats.path).to_pandas()
    assert len(t) == stats.rows > stats.users
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users, threshold=3.5)
    # globally sorted by (timestamp, user rank, seq)
    rank = pd.Index(hist.users.astype(str)).get_indexer(t["user_id"])
    order = np.lexsort((t["seq"].to_numpy(), rank, t["timestamp"].to_numpy()))
    assert (order == np.arange(len(t))).all()
    split_of = dict(zip(map(str, prepared.train_users), ["train"] * len(prepared.train_users)))
    split_of.update({str(u): "validation" for u in prepared.val_users})
    split_of.update({str(u): "test" for u in prepared.test_users})
    sched = Schedule()
    n_checked = 0
    for u, rows in t.groupby("user_id", sort=False):
        code = int(np.flatnonzero(hist.users.astype(str) == u)[0])
        n = int(hist.counts[code])
        times = hist.times[hist.offsets[code] : hist.offsets[code + 1]]
        assert rows["seq"].tolist() == list(range(len(rows)))  # in row order
        assert rows["n_items"].tolist() == sched.prefix_lengths(n).tolist()
        assert (np.diff(rows["timestamp"].to_numpy()) >= 0).all()
        assert rows["timestamp"].tolist() == times[rows["n_items"].to_numpy() - 1].tolist()
        assert set(rows["split"]) == {split_of[u]}
        n_checked += 1
    assert n_checked == stats.users == hist.n_users
    assert t["n_items"].max() >= 50  # the schedule had something to do


def test_embeddings_and_topk_equal_the_direct_computation(synth, tmp_path: Path) -> None:
    prepared, df, model = synth
    stats = build(synth, tmp_path / "t.arrow", topk=15)
    t = read_table(stats.path)
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users, threshold=3.5)
    users = np.asarray(t.column("user_id").to_pylist())
    code = pd.Index(hist.users.astype(str)).get_indexer(users)
    # rows in (user, n_items) order make a valid PrefixBatch for the reference
    n_items = t.column("n_items").to_numpy()
    order = np.lexsort((n_items, code))
    batch = PrefixBatch(hist.items, hist.offsets, code[order].astype(np.int64), n_items[order].astype(np.int64))
    mu_ref, top_ref = direct_prefix_embeddings(model, batch, topk=15)
    emb = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))[order]
    top = np.stack(t.column("topk").to_numpy(zero_copy_only=False))[order]
    np.testing.assert_allclose(emb, mu_ref, atol=1e-5, rtol=0)
    scores = model.decoder(torch.from_numpy(mu_ref)).detach().numpy()
    rows = np.arange(len(batch))[:, None]
    np.testing.assert_allclose(scores[rows, top], scores[rows, top_ref], atol=2e-5, rtol=0)


def test_schema_and_metadata_round_trip(synth, tmp_path: Path) -> None:
    prepared, _, model = synth
    stats = build(synth, tmp_path / "t.arrow", topk=7, seed=11)
    with pa.memory_map(str(stats.path), "r") as src:
        reader = pa.ipc.open_file(src)
        schema = reader.schema
        assert reader.num_record_batches >= 1
    assert schema.remove_metadata().equals(S.trace_schema(8, 7))
    meta = read_metadata(stats.path)
    assert meta["format"] == "simcache-trace" and meta["format_version"] == 2
    assert meta["dataset"] == "synthetic"
    assert meta["preprocessing"] == prepared.manifest["params"]
    assert meta["model"]["checkpoint_sha256"] == "f" * 64
    assert meta["model"]["config"]["latent_dim"] == 8
    assert meta["schedule"]["min_history"] == 50 and meta["schedule"]["step"] == 10
    assert meta["schedule"]["initial_fraction"] == 0.8
    assert meta["topk"] == 7 and meta["dim"] == 8 and meta["seed"] == 11
    assert meta["rows"] == stats.rows and meta["users"]["count"] == stats.users
    assert meta["vocabulary_fingerprint"] == prepared.vocabulary_fingerprint()
    assert meta["items"] == prepared.items.tolist()
    assert meta["package_version"]
    assert meta["clock"] == "time"


def test_identical_inputs_give_identical_bytes(synth, tmp_path: Path) -> None:
    a = build(synth, tmp_path / "a.arrow", seed=1, users=50).path
    b = build(synth, tmp_path / "b.arrow", seed=1, users=50).path
    c = build(synth, tmp_path / "c.arrow", seed=2, users=50).path
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_without_topk_and_user_selection(synth, tmp_path: Path) -> None:
    prepared = synth[0]
    t = read_table(build(synth, tmp_path / "a.arrow", topk=0, users="validation,test").path)
    assert S.TOPK not in t.column_names
    assert set(t.column("split").to_pylist()) == {"validation", "test"}
    assert len(set(t.column("user_id").to_pylist())) == len(prepared.val_users) + len(prepared.test_users)
    some = [str(u) for u in prepared.train_users[:3]]
    t = read_table(build(synth, tmp_path / "b.arrow", users=some).path)
    assert sorted(set(t.column("user_id").to_pylist())) == sorted(some)
    with pytest.raises(UserError, match="not in the prepared data"):
        build(synth, tmp_path / "c.arrow", users=["no-such-user"])
    with pytest.raises(UserError, match="topk"):
        build(synth, tmp_path / "d.arrow", topk=prepared.n_items + 1)


def test_default_path_is_descriptive(synth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stats = build(synth, None, users="train")
    assert stats.path == Path("traces") / "synthetic_ffffffff_d8_k15_train.arrow"
    assert (tmp_path / stats.path).is_file()


def test_model_of_another_vocabulary_is_refused(synth, tmp_path: Path) -> None:
    prepared, df, _ = synth
    other = RecVAE(RecVAEConfig(prepared.n_items + 1, hidden_dim=8, latent_dim=4))
    with pytest.raises(UserError, match="input items"):
        write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(other), out=tmp_path / "x.arrow", progress=False)


def test_data_without_timestamps_needs_the_file_order_clock(synth, tmp_path: Path) -> None:
    prepared, df, model = synth
    no_time = df.drop(columns=["timestamp"])
    prepared.manifest = {**prepared.manifest, "has_timestamps": False}
    try:
        with pytest.raises(UserError, match="--clock file-order"):
            write_trace_for(prepared=prepared, interactions=no_time, encoder=RecVAEEncoder(model), out=tmp_path / "x.arrow",
                            progress=False)
        stats = write_trace_for(prepared=prepared, interactions=no_time, encoder=RecVAEEncoder(model), out=tmp_path / "y.arrow",
                                progress=False, clock="file-order", topk=0)
    finally:
        prepared.manifest = {**prepared.manifest, "has_timestamps": True}
    t = read_table(stats.path)
    ts = t.column("timestamp").to_numpy()
    assert (np.diff(ts) >= 0).all() and ts.max() < len(df)
    assert read_metadata(stats.path)["clock"] == "file-order"


def test_failed_build_leaves_no_file(synth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = trace_writer._fixed_list

    def failing(values, pa_type):
        calls["n"] += 1
        if calls["n"] == 3:  # inside the second record batch
            raise KeyboardInterrupt("interrupted while writing")
        return real(values, pa_type)

    monkeypatch.setattr(trace_writer, "_fixed_list", failing)
    monkeypatch.setattr(trace_writer, "BATCH_ROWS", 16)
    out = tmp_path / "trace.arrow"
    with pytest.raises(KeyboardInterrupt):
        prepared, df, model = synth
        write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model), out=out, progress=False,
                        topk=0)
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []


_KILLED_BUILD = """
import sys, time
import torch
from recvae.data import load_interactions, prepare
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace import format as writer
from recvae.trace.build import write_trace_for
from recvae.trace.recvae_encoder import RecVAEEncoder
real = writer._fixed_list
def slow(values, pa_type):
    time.sleep(0.2)
    return real(values, pa_type)
writer._fixed_list = slow
writer.BATCH_ROWS = 8
params = dict(n_users=300, n_items=250, seed=5)
prepared = prepare("synthetic", progress=False, **params)
df = load_interactions("synthetic", **params)
model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=4))
write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model), out=sys.argv[1], progress=False,
                topk=0)
"""


def test_killed_build_leaves_no_trace(tmp_path: Path) -> None:
    out = tmp_path / "traces" / "killed.arrow"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(out)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(out.parent.glob(".killed.arrow.*.tmp")):  # the writer has started
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # only the hidden temporary file is left behind


def test_build_trace_trains_or_reuses_a_model(tmp_path: Path) -> None:
    """The whole pipeline from a dataset name: prepare, train (tiny config), embed, write; then reuse."""
    kw = dict(prepare_params=dict(n_users=200, n_items=150, seed=2), device="cpu", progress=False,
              train_overrides=dict(epochs=1, hidden_dim=16, latent_dim=8), topk=5)
    first = build_trace_stats("synthetic", out=tmp_path / "a.arrow", **kw)
    second = build_trace("synthetic", out=tmp_path / "b.arrow", **kw)
    assert first.path.read_bytes() == second.read_bytes()  # same cached model, same bytes
    meta = read_metadata(second)
    assert len(meta["model"]["checkpoint_sha256"]) == 64
    assert meta["model"]["epoch"] == 1


def test_build_trace_with_a_checkpoint_and_unknown_paths(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such checkpoint"):
        build_trace("synthetic", model=tmp_path / "missing.pt", prepare_params=dict(n_users=100, n_items=80),
                    progress=False, device="cpu")


def test_msd_refuses_without_the_file_order_clock() -> None:
    with pytest.raises(UserError, match="no timestamps.*--clock file-order"):
        build_trace("msd", data_dir="/nonexistent", progress=False)


def test_end_to_end_on_ml100k(shared_data: Path, tmp_path: Path) -> None:
    data_dir = shared_data / "ml-100k"
    if not (data_dir / "u.data").is_file():
        pytest.skip(f"{data_dir}/u.data not found")
    prepared = prepare("ml100k", data_dir=data_dir, progress=False)
    df = load_interactions("ml100k", data_dir)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=32, latent_dim=16)).eval()
    stats = write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model), out=tmp_path / "ml100k.arrow",
                            progress=False, topk=20, dataset="ml100k")
    t = read_table(stats.path)
    assert stats.users == len(prepared.train_users) + len(prepared.val_users) + len(prepared.test_users)
    ts = t.column("timestamp").to_numpy()
    assert (np.diff(ts) >= 0).all()
    assert 874_000_000 < ts.min() and ts.max() < 894_000_000  # 1997-09 .. 1998-04
    assert stats.rows > 2 * stats.users  # many ML-100K users have >= 50 positives
    # a few rows against the direct computation
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users, threshold=3.5)
    users = np.asarray(t.column("user_id").to_pylist()[:200])
    code = pd.Index(hist.users.astype(str)).get_indexer(users)
    n_items = t.column("n_items").to_numpy()[:200]
    order = np.lexsort((n_items, code))
    batch = PrefixBatch(hist.items, hist.offsets, code[order].astype(np.int64), n_items[order].astype(np.int64))
    mu_ref, _ = direct_prefix_embeddings(model, batch)
    emb = np.stack(t.column("embedding").to_numpy(zero_copy_only=False)[:200])[order]
    np.testing.assert_allclose(emb, mu_ref, atol=1e-5, rtol=0)


def test_free_space_is_checked_against_the_trace_estimate_before_embedding(synthetic_data, tmp_path, monkeypatch):
    """The estimate bounds the real files (trace + catalogue), and too little free space for it is
    refused before any prefix is embedded, with nothing written."""
    import shutil
    from collections import namedtuple

    from recvae.trace import build as build_module
    from recvae.trace.build import trace_bytes_estimate
    from recvae.trace.recvae_encoder import RecVAEEncoder

    prepared, df = synthetic_data(n_users=120, n_items=150, mean_items=60, seed=3)
    torch.manual_seed(0)
    enc = RecVAEEncoder(RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=24)).eval())
    stats = write_trace_for(prepared=prepared, interactions=df, encoder=enc, out=tmp_path / "a.arrow", progress=False,
                            topk=7, seed=0)
    written = stats.path.stat().st_size + S.catalogue_path(stats.path).stat().st_size
    estimate = trace_bytes_estimate(stats.rows, stats.dim, 7, prepared.n_items)
    assert written <= estimate <= 3 * written + (1 << 16)

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: Usage(1 << 40, 0, estimate - 1))
    embedded = []
    monkeypatch.setattr(build_module, "_check_chunk", lambda *a, **k: embedded.append(1))
    with pytest.raises(UserError, match="not enough free space"):
        write_trace_for(prepared=prepared, interactions=df, encoder=enc, out=tmp_path / "b" / "b.arrow", progress=False,
                        topk=7, seed=0)
    assert embedded == [] and not (tmp_path / "b").exists()
