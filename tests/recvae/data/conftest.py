"""Fixtures for the data tests: tiny hand-written raw files of every format, a CLI runner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

ML20M_CSV = """userId,movieId,rating,timestamp
1,2,3.5,1112486027
1,29,3.5,1112484676
2,3,4.0,974820889
3,29,0.5,1112484580
"""
ML20M_ROWS = [(1, 2, 3.5, 1112486027), (1, 29, 3.5, 1112484676), (2, 3, 4.0, 974820889), (3, 29, 0.5, 1112484580)]

ML1M_DAT = "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n"
ML1M_ROWS = [(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109), (2, 1357, 5.0, 978298709)]

ML100K_TAB = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
ML100K_ROWS = [(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742), (22, 377, 1.0, 878887116)]

NF_MV1 = "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n"
NF_MV2 = "2:\r\n2059652,4,2005-09-05\r\n1488844,4,2005-10-11\r\n"  # CRLF line ends are accepted too
NF_MV3 = "3:\n30878,1,1999-12-31\n"


def _day(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp())


NF_ROWS = [
    (1488844, 1, 3.0, _day("2005-09-06")),
    (822109, 1, 5.0, _day("2005-05-13")),
    (2059652, 2, 4.0, _day("2005-09-05")),
    (1488844, 2, 4.0, _day("2005-10-11")),
    (30878, 3, 1.0, _day("1999-12-31")),
]

MSD_TXT = "b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\t1\nb80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAPDEY12A81C210A9\t12\n85c1f87fea955d09b4bec2e36aee110927aedf9a\tSOAKIMP12A8C130995\t2"
MSD_ROWS = [
    ("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAKIMP12A8C130995", 1.0),
    ("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAPDEY12A81C210A9", 12.0),
    ("85c1f87fea955d09b4bec2e36aee110927aedf9a", "SOAKIMP12A8C130995", 2.0),
]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


@pytest.fixture
def raw_dirs(tmp_path: Path) -> dict[str, Path]:
    """One folder per format, laid out as the official distributions are."""
    d = {
        "ml20m": write(tmp_path / "ml-20m" / "ratings.csv", ML20M_CSV).parent,
        "ml1m": write(tmp_path / "ml-1m" / "ratings.dat", ML1M_DAT).parent,
        "ml100k": write(tmp_path / "ml-100k" / "u.data", ML100K_TAB).parent,
        "msd": write(tmp_path / "msd" / "train_triplets.txt", MSD_TXT).parent,
    }
    nf = tmp_path / "netflix-mv"
    write(nf / "training_set" / "mv_0000001.txt", NF_MV1)
    write(nf / "training_set" / "mv_0000002.txt", NF_MV2)
    write(nf / "training_set" / "mv_0000003.txt", NF_MV3)
    d["netflix_mv"] = nf
    nc = tmp_path / "netflix-combined"
    write(nc / "combined_data_1.txt", NF_MV1 + NF_MV2)
    write(nc / "combined_data_2.txt", NF_MV3)
    d["netflix_combined"] = nc
    return d


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cache(_isolated_cache: Path) -> Path:
    """The (isolated) cache folder of this test."""
    return _isolated_cache


@pytest.fixture
def expected_rows() -> dict[str, list[tuple]]:
    """The canonical rows each fixture of ``raw_dirs`` must parse to, in file order."""
    return {"ml20m": ML20M_ROWS, "ml1m": ML1M_ROWS, "ml100k": ML100K_ROWS, "netflix": NF_ROWS, "msd": MSD_ROWS}


@pytest.fixture
def leftovers(cache: Path):
    """A function listing every file (and leftover temporary folder) under the cache."""

    def _list() -> list[Path]:
        return sorted(p for p in cache.rglob("*") if p.is_file() or ".tmp" in p.name)

    return _list
