"""Rating files: repaired and reported, or refused in one line naming the file and the line.

Explicit cases for each promise (repairs: byte-order mark, blank lines, a last line cut short,
duplicate rows; refusals: negative ids, implausible times, non-numeric fields, header only, no
rows), then hypothesis-generated damage (truncation, byte flips, junk lines) of small files of
every format, checked against a plain reference parser written here: an accepted file yields
exactly the reference's rows and reports every repair the reference finds; a refused file is one
``error:`` line that names the file and a line that really is bad.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from simcache.cli.app import app
from tests.faults.conftest import fails_cleanly

GOOD = {
    "ml100k": ("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t302\t4\t881251000\n"),
    "ml1m": ("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n"),
    "ml20m": ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n2,3,4.0,974820889\n"),
    "netflix": ("training_set/mv_0000001.txt", "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n1488844,4,2005-10-11\n"),
    "msd": ("train_triplets.txt", "b80344d063\tSOAKIMP12A8C130995\t1\nb80344d063\tSOAPDEY12A81C210A9\t12\n85c1f87fea\tSOAKIMP12A8C130995\t2\n"),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """A private cache whose folders exist (a refusal must leave nothing in them)."""
    for sub in ("interactions", "prepared"):
        (tmp_path / "cache" / sub).mkdir(parents=True)
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(tmp_path / "cache"))


def _put(root: Path, name: str, data: bytes) -> Path:
    rel = GOOD[name][0]
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return root / rel


def _fetch(name: str, root: Path, *extra: str):
    return CliRunner().invoke(app, ["data", "fetch", name, "--data-dir", str(root), *extra])


def _reported(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("repaired: ", "note: "))]


# ---------------------------------------------------------------------------------------------
# Explicit cases.

@pytest.mark.parametrize("name, data, needles", [
    ("ml100k", GOOD["ml100k"][1] + "22\t37", ["line 5", "last line cut short", "2 of 4 fields"]),
    ("ml1m", GOOD["ml1m"][1] + "3::12", ["line 4", "last line cut short"]),
    ("ml100k", "\ufeff" + GOOD["ml100k"][1], ["line 1", "byte-order mark"]),
    ("ml20m", "\ufeff" + GOOD["ml20m"][1], ["line 1", "byte-order mark"]),
    ("ml100k", GOOD["ml100k"][1].replace("\n", "\n\n", 2), ["line 2", "2 blank lines skipped"]),
    ("netflix", GOOD["netflix"][1] + "\n", ["line 6", "1 blank line skipped"]),
    ("msd", GOOD["msd"][1] + GOOD["msd"][1].splitlines(keepends=True)[0], ["1 duplicate (user, item) row"]),
    ("msd", GOOD["msd"][1].rstrip("\n"), ["line 3", "no newline at the end"]),
])
def test_repairs_are_reported_and_strict_refuses_them(name, data, needles, tmp_path):
    root = tmp_path / "raw"
    path = _put(root, name, data.encode())
    res = _fetch(name, root)
    assert res.exit_code == 0, res.output
    (line,) = _reported(res.stdout)
    assert str(path) in line and all(n in line for n in needles), line
    if "no newline" not in line:  # a note, not a repair: strict accepts it
        fails_cleanly(["data", "fetch", name, "--data-dir", root, "--strict"], str(path), "--strict refuses",
                      untouched=tmp_path / "cache")


def test_clean_files_report_nothing(tmp_path):
    for name, (rel, text) in GOOD.items():
        root = tmp_path / name
        _put(root, name, text.encode())
        res = _fetch(name, root, "--strict")
        assert res.exit_code == 0 and _reported(res.stdout) == [], (name, res.output)


def test_strict_refuses_a_cached_repaired_ingest(tmp_path):
    root = tmp_path / "raw"
    _put(root, "ml100k", ("\n" + GOOD["ml100k"][1]).encode())
    assert _fetch("ml100k", root).exit_code == 0
    fails_cleanly(["data", "prepare", "ml100k", "--data-dir", root, "--strict", "--heldout-users", "1"],
                  "u.data", "line 1", "blank line", "--strict")


NOW_PLUS = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).strftime("%Y-%m-%d")


@pytest.mark.parametrize("name, bad_line, needles", [
    ("ml100k", "-3\t242\t3\t881250949", ["line 5", "column user is negative"]),
    ("ml100k", "3\t-242\t3\t881250949", ["line 5", "column item is negative"]),
    ("ml100k", "3\t242\t3\t-5", ["line 5", "timestamp", "outside the plausible range 1990-01-01 .."]),
    ("ml100k", "3\t242\t3\t99999999999999", ["line 5", "'99999999999999'", "1990-01-01"]),
    ("ml100k", "3\t242\t3\t600000000", ["line 5", "1990-01-01"]),
    ("ml100k", "3\t242\t3\t+881250949", ["line 5", "not an integer"]),
    ("ml100k", "3\t242\t3\t99999999999999999999999", ["line 5", "timestamp"]),
    ("ml100k", "99999999999999999999999\t242\t3\t881250949", ["line 5", "too large"]),
    ("ml100k", "3\t242\tinf\t881250949", ["line 5", "not a number"]),
    ("ml100k", "   ", ["line 5", "expected 4 tab-separated columns"]),
    ("ml1m", "5::12::x::978300760", ["line 4", "column value is not a number"]),
    ("ml1m", "5::-12::3::978300760", ["line 4", "negative"]),
    ("ml20m", "5,12,3.5,1", ["line 5", "outside the plausible range"]),
    ("netflix", "bob:,3,2005-01-01", ["line 6", "column user is not an integer"]),
    ("netflix", "12:,3,2005-01-01", ["line 6", "column user is not an integer"]),
    ("netflix", "x:", ["line 6", "column"]),
    ("netflix", "-5,3,2005-01-01", ["line 6", "negative"]),
    ("netflix", "5,3,1989-12-31", ["line 6", "outside the plausible range"]),
    ("netflix", f"5,3,{NOW_PLUS}", ["line 6", "outside the plausible range"]),
    ("netflix", "99999999999999999999:", ["line 6", "too large"]),
    ("msd", "u9\t\t3", ["line 4", "column item is not a non-empty id"]),
])
def test_refused_with_file_and_line(name, bad_line, needles, tmp_path):
    root = tmp_path / "raw"
    path = _put(root, name, (GOOD[name][1] + bad_line + "\n").encode())
    for command in ("fetch", "prepare", "info"):
        fails_cleanly(["data", command, name, "--data-dir", root], str(path), *needles, untouched=tmp_path / "cache")


@pytest.mark.parametrize("name, data, needles", [
    ("ml20m", "userId,movieId,rating,timestamp\n", ["empty file", "after the header"]),
    ("ml20m", "userId,movieId,rating,timestamp", ["empty file", "after the header"]),
    ("ml20m", "\ufeffuserId,movieId,rating,timestamp\n\n", ["empty file"]),
    ("ml100k", "\n\n\n", ["empty file"]),
    ("ml100k", "\ufeff", ["empty file"]),
    ("netflix", "1:\n2:\n", ["empty file"]),
    ("msd", "", ["empty file"]),
])
def test_no_rows_refused(name, data, needles, tmp_path):
    root = tmp_path / "raw"
    path = _put(root, name, data.encode())
    fails_cleanly(["data", "fetch", name, "--data-dir", root], str(path), *needles, untouched=tmp_path / "cache")


def test_info_of_a_file_with_an_absurd_timestamp_is_one_line(tmp_path):
    root = tmp_path / "raw"
    _put(root, "ml100k", (GOOD["ml100k"][1] + "1\t2\t3\t99999999999999\n").encode())
    fails_cleanly(["data", "info", "ml100k", "--data-dir", root], "u.data", "line 5", "99999999999999")


# ---------------------------------------------------------------------------------------------
# Hypothesis: damaged files against a reference parser.

TS_MIN = 631_152_000
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Bad(Exception):
    """The reference's refusal: the (1-based) line at fault, or None for the whole file."""

    def __init__(self, line: int | None) -> None:
        self.line = line


def _ts_max() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp()) + 86_400


def _field(kind: str, text: str, line: int):
    t = text.strip(" \t")
    if kind == "str":
        if not t:
            raise Bad(line)
        return text
    if kind in ("id", "ts"):
        if not _INT.match(t):
            raise Bad(line)
        v = int(t)
        if kind == "id" and not 0 <= v < 2**63 or kind == "ts" and not TS_MIN <= v <= _ts_max():
            raise Bad(line)
        return v
    if kind == "float":
        if not _FLOAT.match(t):
            raise Bad(line)
        return float(t)
    if not _DATE.match(t):
        raise Bad(line)
    try:
        day = dt.date.fromisoformat(t)
    except ValueError:
        raise Bad(line) from None
    ts = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
    if not TS_MIN <= ts <= _ts_max():
        raise Bad(line)
    return ts


LAYOUT = {  # separator, header, column kinds
    "ml100k": ("\t", None, ("id", "id", "float", "ts")),
    "ml1m": ("::", None, ("id", "id", "float", "ts")),
    "ml20m": (",", "userId,movieId,rating,timestamp", ("id", "id", "float", "ts")),
    "netflix": (",", None, ("id", "float", "date")),
    "msd": ("\t", None, ("str", "str", "float")),
}


def reference(name: str, data: bytes) -> tuple[list[tuple], set[str]]:
    """Rows (user, item, value[, timestamp]) and the kinds of repair, or raise :class:`Bad`."""
    sep, header, kinds = LAYOUT[name]
    repairs: set[str] = set()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        repairs.add("bom")
    lines = data.split(b"\n")
    unterminated = lines[-1] != b""
    if not unterminated:
        lines.pop()
    rows, movie = [], None
    for k, raw_bytes in enumerate(lines, start=1):
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise Bad(k) from None
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise Bad(k)
        last = unterminated and k == len(lines)
        if header is not None and k == 1:
            if line.strip() != header:
                raise Bad(1)
            continue
        if line == "":
            repairs.add("blank")
            continue
        if name == "netflix" and re.fullmatch(r"[ \t]*\d+[ \t]*:[ \t\r]*", line):
            movie = int(line.strip(" \t\r")[:-1])
            if movie >= 2**63:
                raise Bad(k)
            repairs |= {"unterminated"} if last else set()
            continue
        parts = line.split(sep)
        if last and len(parts) < len(kinds):
            repairs.add("truncated")
            continue
        if len(parts) != len(kinds):
            raise Bad(k)
        vals = [_field(kind, p, k) for kind, p in zip(kinds, parts)]
        if name == "netflix":
            if movie is None:
                raise Bad(k)
            vals = [vals[0], movie, vals[1], vals[2]]
        rows.append(tuple(vals))
        if last:
            repairs.add("unterminated")
    if not rows:
        raise Bad(None)
    pairs = [(r[0], r[1]) for r in rows]
    if len(set(pairs)) < len(pairs):
        repairs.add("duplicates")
    return rows, repairs


_REPAIR_TEXT = {"bom": "byte-order mark", "blank": "blank line", "truncated": "last line cut short",
                "unterminated": "no newline at the end", "duplicates": "duplicate (user, item)"}
_JUNK = st.text(alphabet="0123456789-+.:,\t e\r\ufeffab", max_size=12)


@st.composite
def damaged(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(GOOD)))
    data = GOOD[name][1].encode()
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["truncate", "flip", "junk", "drop"]))
        if how == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif how == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            byte = draw(st.sampled_from(b"0123456789-.:,\t\n\r e+x\xef"))
            data = data[:at] + bytes([byte]) + data[at + 1 :]
        elif how == "junk":
            lines = data.split(b"\n")
            at = draw(st.integers(0, len(lines)))
            lines.insert(at, draw(_JUNK).encode())
            data = b"\n".join(lines)
        elif how == "drop" and data:
            a = draw(st.integers(0, len(data) - 1))
            data = data[:a] + data[a + draw(st.integers(1, 6)) :]
    return name, data


def _parquet_rows(name: str, path: Path) -> list[tuple]:
    t = pq.read_table(path).to_pylist()
    cols = ("user", "item", "value", "timestamp") if name != "msd" else ("user", "item", "value")
    return [tuple(r[c] for c in cols) for r in t]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damaged())
@example(("ml100k", GOOD["ml100k"][1].encode()[:-12]))  # cut short: skipped and reported
@example(("netflix", GOOD["netflix"][1].replace("2:", "\n2:").encode()))  # a blank line
@example(("msd", GOOD["msd"][1].replace("\t1\n", "\t1\r0\n").encode()))  # a CR inside a line
def test_damaged_files_are_repaired_exactly_or_refused_cleanly(case):
    with tempfile.TemporaryDirectory(prefix="ratings-") as tmp:
        _check_damaged(case, Path(tmp))


def _check_damaged(case: tuple[str, bytes], root: Path) -> None:
    name, data = case
    os.environ["SIMCACHE_CACHE_DIR"] = str(root / "cache")
    path = _put(root / "raw", name, data)
    try:
        expected, repairs = reference(name, data)
    except Bad as bad:
        expected, refused_at = None, bad.line
    res = _fetch(name, root / "raw")
    assert "Traceback" not in res.output, res.output
    if expected is None:
        assert res.exit_code == 2, (data, res.output)
        (line,) = [x for x in res.stderr.splitlines() if x.strip()]
        assert line.startswith(f"error: {path}: "), line
        if refused_at is not None:  # the blamed line is the first bad one, as the reference says
            assert f": line {refused_at}: " in line, (data, refused_at, line)
        return
    assert res.exit_code == 0, (data, expected, res.output)
    got = _parquet_rows(name, Path(res.stdout.strip().splitlines()[-1]))
    want = [tuple(float(v) if isinstance(v, float) else v for v in r) for r in expected]
    assert [tuple(round(v, 3) if isinstance(v, float) else v for v in r) for r in got] == \
        [tuple(round(v, 3) if isinstance(v, float) else v for v in r) for r in want], data
    reported = " | ".join(_reported(res.stdout))
    for kind in repairs:
        assert _REPAIR_TEXT[kind] in reported, (kind, data, reported)
    assert len(_reported(res.stdout)) == len(repairs), (data, repairs, reported)
