"""Bad input: one clear error line naming the file and the problem, exit code 2, a clean cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from simcache.cli.app import app


def _fails(runner, leftovers, args: list[str], *needles: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert result.stdout == ""
    assert leftovers() == []  # nothing half written in the cache
    return lines[0]


def _put(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("command", ["fetch", "prepare", "info"])
def test_missing_data_dir(command, runner, leftovers, tmp_path):
    missing = tmp_path / "nowhere"
    _fails(runner, leftovers, ["data", command, "ml100k", "--data-dir", str(missing)], str(missing), "no such file or directory")


def test_folder_without_the_ratings_file(runner, leftovers, tmp_path):
    (tmp_path / "empty").mkdir()
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(tmp_path / "empty")], "empty", "no u.data")
    _fails(runner, leftovers, ["data", "fetch", "ml20m", "--data-dir", str(tmp_path / "empty")], "no ratings.csv")
    _fails(runner, leftovers, ["data", "fetch", "msd", "--data-dir", str(tmp_path / "empty")], "train_triplets.txt")


def test_netflix_without_local_files(runner, leftovers, tmp_path):
    line = _fails(runner, leftovers, ["data", "fetch", "netflix"], "no official download", "training_set/", "combined_data_")
    (tmp_path / "nf").mkdir()
    _fails(runner, leftovers, ["data", "prepare", "netflix", "--data-dir", str(tmp_path / "nf")],
           str(tmp_path / "nf"), "neither a training_set/ folder")
    assert "netflix" in line


def test_unknown_dataset_lists_names(runner, leftovers):
    _fails(runner, leftovers, ["data", "info", "ml30m"], "unknown dataset 'ml30m'", "ml20m", "netflix", "synthetic")


def test_synthetic_options_only_for_synthetic(runner, leftovers, tmp_path):
    _put(tmp_path / "u.data", "1\t2\t3\t881250949\n")
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(tmp_path), "--n-users", "5"], "synthetic only")


@pytest.mark.parametrize(
    "name, rel, content, needles",
    [
        # wrong column layout
        ("ml20m", "ratings.csv", "user,item,rating\n1,2,3\n", ["ratings.csv", "line 1: unexpected header", "userId,movieId,rating,timestamp"]),
        ("ml20m", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,3,4\n", ["ratings.csv", "line 3", "expected 4", "got 3"]),
        ("ml100k", "u.data", "1\t2\t3\t881250949\n1\t2\t3\n", ["u.data", "line 2", "expected 4 tab-separated columns", "got 3"]),
        ("ml100k", "u.data", "1,2,3,4\n", ["u.data", "line 1", "expected 4 tab-separated columns", "got 1"]),
        ("ml1m", "ratings.dat", "1::2::3::978300760\n1,2,3,4\n", ["ratings.dat", "line 2", "'::'-separated", "got 1"]),
        ("msd", "train_triplets.txt", "u1\tS1\t3\nu2\tS2\n", ["train_triplets.txt", "line 2", "expected 3 tab-separated", "got 2"]),
        ("netflix", "training_set/mv_0000001.txt", "1:\n5,3,2005-01-01\n6,3\n", ["mv_0000001.txt", "line 3", "expected 3 comma-separated", "got 2"]),
        ("netflix", "training_set/mv_0000001.txt", "5,3,2005-01-01\n", ["mv_0000001.txt", "line 1", "'MovieID:' line first"]),
        # non-numeric values
        ("ml100k", "u.data", "1\t2\t3\t881250949\n1\t2\tx\t4\n", ["u.data", "line 2", "column value is not a number", "'x'"]),
        ("ml100k", "u.data", "1\t2\t3\t881250949\nabc\t2\t3\t4\n", ["u.data", "line 2", "column user is not an integer", "'abc'"]),
        ("ml20m", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,2,3.5,soon\n", ["line 3", "column timestamp is not an integer"]),
        ("ml100k", "u.data", "1\t2\t3\t881250949\n1\t2\tnan\t4\n", ["u.data", "line 2", "column value is not a number"]),
        ("ml100k", "u.data", "1\t2\t\t4\n", ["u.data", "line 1", "column value is not a number"]),
        ("msd", "train_triplets.txt", "u1\tS1\tmany\n", ["train_triplets.txt", "line 1", "column value is not a number"]),
        ("netflix", "training_set/mv_0000001.txt", "1:\n5,3,2005-01-01\n6,3,2005-13-45\n", ["mv_0000001.txt", "line 3", "column date is not a date"]),
        ("netflix", "training_set/mv_0000001.txt", "1:\n5,3,2005-01-01\nbob,3,2005-01-02\n", ["mv_0000001.txt", "line 3", "column user is not an integer"]),
        # empty files
        ("ml100k", "u.data", "", ["u.data", "empty file"]),
        ("ml100k", "u.data", "\n\n", ["u.data", "empty file"]),
        ("ml20m", "ratings.csv", "userId,movieId,rating,timestamp\n", ["ratings.csv", "empty file"]),
        ("msd", "train_triplets.txt", "", ["train_triplets.txt", "empty file"]),
        ("netflix", "training_set/mv_0000001.txt", "", ["mv_0000001.txt", "empty file"]),
        ("netflix", "training_set/mv_0000001.txt", "1:\n", ["mv_0000001.txt", "empty file"]),
    ],
)
def test_bad_files(name, rel, content, needles, runner, leftovers, tmp_path):
    _put(tmp_path / "d" / rel, content)
    for command in ("fetch", "prepare"):
        _fails(runner, leftovers, ["data", command, name, "--data-dir", str(tmp_path / "d")], *needles)


def test_bad_file_among_good_ones_leaves_nothing(runner, leftovers, tmp_path):
    """The second Netflix file is bad after the first was parsed and written: no partial cache."""
    d = tmp_path / "nf"
    _put(d / "training_set" / "mv_0000001.txt", "1:\n" + "".join(f"{u},4,2005-01-01\n" for u in range(1, 2000)))
    _put(d / "training_set" / "mv_0000002.txt", "2:\n5,4,2005-01-01\n7,x,2005-01-01\n")
    _fails(runner, leftovers, ["data", "fetch", "netflix", "--data-dir", str(d)], "mv_0000002.txt", "line 3")


def test_truncated_zip(runner, leftovers, tmp_path):
    z = tmp_path / "mine.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", "".join(f"{u}\t{i}\t4\t{u * i}\n" for u in range(1, 200) for i in range(1, 30)))
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(z)], str(z), "truncated or corrupt zip")


def test_corrupt_zip_member(runner, leftovers, tmp_path):
    """Central directory intact, member bytes damaged: detected while streaming (CRC)."""
    z = tmp_path / "mine.zip"
    payload = "".join(f"{u}\t{i}\t4\t{u * i}\n" for u in range(1, 200) for i in range(1, 30)).encode()
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("ml-100k/u.data", payload)
    data = bytearray(z.read_bytes())
    at = data.find(payload[:20]) + len(payload) // 2
    data[at : at + 4] = b"9999"
    z.write_bytes(bytes(data))
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(z)], str(z), "corrupt")


def test_zip_without_the_member(runner, leftovers, tmp_path):
    z = tmp_path / "mine.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-100k/README", "hello")
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(z)], str(z), "no u.data")


def test_local_official_zip_checksum_mismatch(runner, leftovers, tmp_path):
    """A file named like the official archive is verified against the published MD5."""
    z = tmp_path / "dl" / "ml-100k.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t2\t3\t881250949\n")
    _fails(runner, leftovers, ["data", "fetch", "ml100k", "--data-dir", str(z.parent)], str(z), "checksum mismatch",
           "0e33842e24a9c977be4e0107933c0723")


def test_library_raises_user_error(tmp_path):
    from recvae.data import load_interactions, prepare
    from recvae.errors import UserError

    _put(tmp_path / "u.data", "1\t2\tx\t4\n")
    with pytest.raises(UserError, match=r"u\.data: line 1: column value is not a number"):
        load_interactions("ml100k", tmp_path)
    with pytest.raises(UserError, match="unknown dataset"):
        prepare("ml2m")
    with pytest.raises(UserError, match="unknown synthetic option"):
        load_interactions("synthetic", n_user=5)
