"""Streaming parsers on hand-written fixtures of every format and on the real samples in ../shared/data."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recvae.data import interactions, load_interactions, parsers
from recvae.data.interactions import ingest
from recvae.data.parsers import Source


def _rows(df: pd.DataFrame) -> list[tuple]:
    cols = [c for c in ("user", "item", "value", "timestamp") if c in df.columns]
    return [tuple(r) for r in df[cols].astype(object).itertuples(index=False)]


@pytest.mark.parametrize(
    "name, key",
    [("ml20m", "ml20m"), ("ml25m", "ml20m"), ("ml-latest-small", "ml20m"), ("ml1m", "ml1m"), ("ml10m", "ml1m"),
     ("ml100k", "ml100k"), ("msd", "msd")],
)
def test_fixture_formats(name, key, raw_dirs, expected_rows):
    df = load_interactions(name, raw_dirs[key])
    assert _rows(df) == expected_rows[key]
    if name == "msd":
        assert list(df.columns) == ["user", "item", "value"]  # no timestamps
    else:
        assert list(df.columns) == ["user", "item", "value", "timestamp"]
        assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
        assert df["timestamp"].dtype == np.int64
    assert df["value"].dtype == np.float32


@pytest.mark.parametrize("layout", ["netflix_mv", "netflix_combined"])
def test_netflix_both_layouts(layout, raw_dirs, expected_rows):
    df = load_interactions("netflix", raw_dirs[layout])
    assert _rows(df) == expected_rows["netflix"]


def test_netflix_single_file_and_training_set_folder(raw_dirs, expected_rows):
    df = load_interactions("netflix", raw_dirs["netflix_mv"] / "training_set")
    assert _rows(df) == expected_rows["netflix"]
    df = load_interactions("netflix", raw_dirs["netflix_combined"] / "combined_data_2.txt")
    assert _rows(df) == expected_rows["netflix"][-1:]


def test_data_dir_variants(raw_dirs, expected_rows, tmp_path):
    # the ratings file itself, and the parent of the unpacked folder
    assert _rows(load_interactions("ml100k", raw_dirs["ml100k"] / "u.data")) == expected_rows["ml100k"]
    assert _rows(load_interactions("ml100k", raw_dirs["ml100k"].parent)) == expected_rows["ml100k"]
    # a zip under another name than the official one is read (and not checksum-verified)
    z = tmp_path / "mine.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(raw_dirs["ml20m"] / "ratings.csv", "ml-20m/ratings.csv")
    assert _rows(load_interactions("ml20m", z)) == expected_rows["ml20m"]


def test_msd_folder_of_triplet_files(tmp_path, expected_rows):
    d = tmp_path / "m"
    d.mkdir()
    (d / "b_triplets.txt").write_text("u2\tS2\t5\n")
    (d / "a_triplets.txt").write_text("u1\tS1\t1\nu1\tS2\t2\n")
    df = load_interactions("msd", d)
    assert _rows(df) == [("u1", "S1", 1.0), ("u1", "S2", 2.0), ("u2", "S2", 5.0)]  # files in name order


@pytest.mark.parametrize("block", [7, 64, 1000])
def test_block_boundaries_do_not_matter(block, raw_dirs, expected_rows, monkeypatch):
    """Tiny read blocks and batches: lines and Netflix movie headers split across reads."""
    monkeypatch.setattr(parsers, "BLOCK_BYTES", block)
    monkeypatch.setattr(parsers, "BATCH_ROWS", 2)
    srcs = [Source(p) for p in sorted((raw_dirs["netflix_combined"]).glob("*.txt"))]
    out = []
    for t in parsers.parse_netflix(srcs):
        assert t.num_rows >= 1
        out.extend(zip(*[t.column(c).to_pylist() for c in ("user", "item", "value", "timestamp")]))
    assert out == expected_rows["netflix"]
    for name, key in (("ml20m", "ml20m"), ("ml1m", "ml1m"), ("ml100k", "ml100k")):
        fmt = interactions.get_dataset(name).format
        (src,) = interactions.resolve_sources(interactions.get_dataset(name), raw_dirs[key])[0]
        got = []
        for t in parsers.parse(fmt, [src]):
            got.extend(zip(*[t.column(c).to_pylist() for c in ("user", "item", "value", "timestamp")]))
        assert got == expected_rows[key]


def test_iter_line_blocks_reassembles_lines(tmp_path):
    text = b"".join(b"%d,line\n" % i for i in range(500)) + b"last-no-newline"
    p = tmp_path / "f.txt"
    p.write_bytes(text)
    blocks = list(parsers.iter_line_blocks(Source(p), block_bytes=37))
    assert b"".join(b for b, _ in blocks) == text + b"\n"
    line = 1
    for b, first in blocks:
        assert first == line and b.endswith(b"\n")
        line += b.count(b"\n")


def test_manifest_and_parquet(raw_dirs):
    d = ingest("ml100k", raw_dirs["ml100k"])
    m = json.loads((d / "manifest.json").read_text())
    assert m["dataset"] == "ml100k" and m["has_timestamps"] is True
    assert m["counts"] == {"rows": 3, "users": 3, "items": 3}
    (f,) = m["source"]["files"]
    assert f["sha256"] == hashlib.sha256((raw_dirs["ml100k"] / "u.data").read_bytes()).hexdigest()
    assert m["time"] == {"min": 878887116, "max": 891717742}
    assert m["value"]["histogram"] == {"1": 1, "3": 2}
    assert pq.read_schema(d / "interactions.parquet").names == ["user", "item", "value", "timestamp"]


# ---------------------------------------------------------------------------------------------
# The real files (skipped on a fresh clone without ../shared/data).


def test_real_ml100k(shared_data):
    df = load_interactions("ml100k", shared_data / "ml-100k")
    assert len(df) == 100_000 and df.user.nunique() == 943 and df.item.nunique() == 1682
    assert df.value.value_counts().sort_index().tolist() == [6110, 11370, 27145, 34174, 21201]
    assert _rows(df.head(2)) == [(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742)]
    assert pd.Timestamp(df.timestamp.min(), unit="s").date().isoformat() == "1997-09-20"
    assert pd.Timestamp(df.timestamp.max(), unit="s").date().isoformat() == "1998-04-22"
    # the same rows as a plain pandas read of the file
    ref = pd.read_csv(shared_data / "ml-100k" / "u.data", sep="\t", header=None, names=["user", "item", "value", "timestamp"])
    assert (df.user.to_numpy() == ref.user.to_numpy()).all()
    assert (df.item.to_numpy() == ref.item.to_numpy()).all()
    assert (df.value.to_numpy() == ref.value.to_numpy()).all()
    assert (df.timestamp.to_numpy() == ref.timestamp.to_numpy()).all()


def test_real_netflix_sample(shared_data, tmp_path):
    df = load_interactions("netflix", shared_data / "netflix-sample")
    assert len(df) == 20_352 and df.user.nunique() == 19_519
    assert df.groupby("item").size().to_dict() == {1: 547, 2: 145, 3: 2012, 4: 142, 5: 1140, 6: 1019, 7: 93,
                                                   8: 14910, 9: 95, 10: 249}
    assert df.value.value_counts().sort_index().tolist() == [2605, 3010, 5108, 5402, 4227]
    assert pd.Timestamp(df.timestamp.min(), unit="s").isoformat() == "2000-09-09T00:00:00"
    assert pd.Timestamp(df.timestamp.max(), unit="s").isoformat() == "2005-12-31T00:00:00"
    assert (df.timestamp % 86_400 == 0).all()
    # the combined_data layout of the same movies gives the same table
    files = sorted((shared_data / "netflix-sample" / "training_set").glob("mv_*.txt"))
    combined = tmp_path / "combined_data_1.txt"
    combined.write_bytes(b"".join(f.read_bytes() for f in files))
    df2 = load_interactions("netflix", combined)
    pd.testing.assert_frame_equal(df, df2)


def test_real_msd_sample(shared_data):
    df = load_interactions("msd", shared_data / "msd-sample")
    assert len(df) == 7_093 + 7_345
    assert "timestamp" not in df.columns
    hidden, visible = sorted((shared_data / "msd-sample").glob("*triplets*.txt"))
    ref = pd.concat([pd.read_csv(f, sep="\t", header=None, names=["user", "item", "value"]) for f in (hidden, visible)])
    assert (df.user.astype(str).to_numpy() == ref.user.to_numpy()).all()
    assert (df.item.astype(str).to_numpy() == ref.item.to_numpy()).all()
    assert (df.value.to_numpy() == ref.value.to_numpy()).all()
    assert df.user.nunique() == 526
    one = load_interactions("msd", visible)
    assert len(one) == 7_093 and one.item.nunique() == 5_531 and one.value.sum() == 21_944


def test_ingest_streams_in_bounded_batches(tmp_path, monkeypatch):
    """A Netflix file far larger than one block is written as many row groups of bounded size."""
    monkeypatch.setattr(parsers, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(parsers, "BATCH_ROWS", 1000)
    rng = np.random.default_rng(0)
    with open(tmp_path / "combined_data_1.txt", "w") as f:
        for movie in range(1, 41):
            f.write(f"{movie}:\n")
            for u in rng.choice(10**6, size=500, replace=False):
                f.write(f"{u},{rng.integers(1, 6)},2004-0{rng.integers(1, 10)}-1{rng.integers(0, 10)}\n")
    d = ingest("netflix", tmp_path / "combined_data_1.txt")
    meta = pq.ParquetFile(d / "interactions.parquet").metadata
    assert meta.num_rows == 20_000
    sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    assert len(sizes) >= 10 and max(sizes) <= 1000 + 4096 // 10
    df = load_interactions("netflix", tmp_path / "combined_data_1.txt")
    assert (df.groupby("item").size() == 500).all() and list(df.item.unique()) == list(range(1, 41))
