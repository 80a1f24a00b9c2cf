"""Catalogue files and ``simcache catalogue info``."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recvae.errors import UserError
from simcache.cli.app import app
from recvae.trace.catalogue import Catalogue, write_catalogue
from simcache.objects.catalogue import load_catalogue

runner = CliRunner()


@pytest.fixture
def vectors():
    return np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)


def test_simcache_catalogue_roundtrip(tmp_path, vectors):
    bias = np.arange(50, dtype=np.float32) / 10
    path = write_catalogue(tmp_path / "c.arrow", Catalogue([f"i{j}" for j in range(50)], vectors, bias, {"model": {"x": 1}}))
    cat = load_catalogue(path)
    np.testing.assert_array_equal(cat.vectors, vectors)
    np.testing.assert_array_equal(cat.bias, bias)
    assert cat.ids[3] == "i3" and cat.metadata["kind"] == "catalogue" and cat.metadata["model"] == {"x": 1}


def test_npy_and_generic_parquet(tmp_path, vectors):
    np.save(tmp_path / "c.npy", vectors)
    cat = load_catalogue(tmp_path / "c.npy")
    np.testing.assert_array_equal(cat.vectors, vectors)
    assert cat.bias is None and cat.ids[0] == "0"
    table = pa.table({"movie": [str(100 + j) for j in range(50)], "emb": [list(map(float, r)) for r in vectors]})
    pq.write_table(table, tmp_path / "c.parquet")
    cat = load_catalogue(tmp_path / "c.parquet", id_column="movie")
    np.testing.assert_allclose(cat.vectors, vectors)
    assert cat.ids[0] == "100"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p, v: p.with_suffix(".txt").write_text("x") and p.with_suffix(".txt"), "unknown catalogue format"),
        (lambda p, v: p.with_suffix(".npy"), "no such catalogue file"),
        (lambda p, v: (np.save(p.with_suffix(".npy"), np.where(np.arange(50)[:, None] == 7, np.nan, v)),
                       p.with_suffix(".npy"))[1], "catalogue object 7"),
        (lambda p, v: (pq.write_table(pa.table({"a": [[1.0, 2.0]], "b": [[1.0]]}), p.with_suffix(".parquet")),
                       p.with_suffix(".parquet"))[1], "several"),
        (lambda p, v: (pq.write_table(pa.table({"vector": [[1.0, 2.0], [1.0]]}), p.with_suffix(".parquet")),
                       p.with_suffix(".parquet"))[1], "different lengths"),
        (lambda p, v: (pq.write_table(pa.table({"id": ["a", "a"], "vector": [[1.0], [2.0]]}), p.with_suffix(".parquet")),
                       p.with_suffix(".parquet"))[1], "duplicate ids"),
    ],
)
def test_bad_catalogue_files(tmp_path, vectors, make, message):
    with pytest.raises(UserError, match=message):
        load_catalogue(make(tmp_path / "c", vectors))


def test_cli_info_text_and_json(tmp_path, vectors):
    path = write_catalogue(tmp_path / "c.arrow", Catalogue([str(j) for j in range(50)], vectors, np.zeros(50, np.float32)))
    res = runner.invoke(app, ["catalogue", "info", str(path)])
    assert res.exit_code == 0, res.output
    assert "objects" in res.output and "50" in res.output and "dimension" in res.output
    np.save(tmp_path / "req.npy", vectors[:20] + 0.1)
    res = runner.invoke(app, ["catalogue", "info", str(path), "--requests", str(tmp_path / "req.npy"), "--json",
                              "--k", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["objects"] == 50 and data["scales"]["k"] == 3
    assert data["scales"]["metrics"]["ip"]["1st"]["q0"] == 0.0  # score gap to the best object
    near = np.sort(np.linalg.norm(vectors[:20, None] + 0.1 - vectors[None], axis=2), axis=1)
    assert data["scales"]["metrics"]["l2"]["3th"]["q50"] == pytest.approx(np.median(near[:, 2]), rel=1e-5)


def test_cli_errors_are_one_line(tmp_path, vectors):
    np.save(tmp_path / "c.npy", vectors)
    np.save(tmp_path / "req.npy", vectors[:, :3])
    res = runner.invoke(app, ["catalogue", "info", str(tmp_path / "c.npy"), "--requests", str(tmp_path / "req.npy")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and res.output.startswith("error:")
