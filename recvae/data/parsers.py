"""Streaming parsers: one per raw format, each turning raw files into Arrow tables of bounded size.

Every parser reads its input in blocks of whole lines (``BLOCK_BYTES``), converts each block with
``pyarrow.csv`` (C speed, no Python object per rating) and yields tables of at most about
``BATCH_ROWS`` rows with the canonical columns

* ``user``: int64 raw id (string for MSD)
* ``item``: int64 raw id (string for MSD)
* ``value``: float32, the rating or play count
* ``timestamp``: int64 Unix seconds UTC (absent for MSD; Netflix dates at 00:00 UTC)

in raw file order. Memory stays bounded by the block and batch sizes whatever the file size.

Any problem with the input (missing or empty file, wrong column layout, a non-numeric value, a
truncated archive, a negative id, a timestamp outside :data:`TIME_RANGE_START` .. now + 1 day)
raises :class:`~recvae.errors.UserError` with one line naming the file (and the line, when the
problem is in one line). What can be repaired without guessing (a UTF-8 byte-order mark, blank
lines, a last line cut short with no newline) is repaired and recorded in a :class:`ParseReport`,
which the ingest writes into the manifest and the CLI prints; a strict report refuses instead.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recvae.errors import UserError

BLOCK_BYTES = 16 << 20  # bytes of text converted at once
BATCH_ROWS = 4_000_000  # rows per yielded table (about 100 MB)

INT_SCHEMA = pa.schema(
    [("user", pa.int64()), ("item", pa.int64()), ("value", pa.float32()), ("timestamp", pa.int64())]
)
STR_SCHEMA = pa.schema([("user", pa.string()), ("item", pa.string()), ("value", pa.float32())])

ML_CSV_HEADER = "userId,movieId,rating,timestamp"

#: Earliest plausible rating time (1990-01-01 UTC); the latest is now + 1 day.
TIME_RANGE_START = 631_152_000
_INT64_MAX = 2**63 - 1
_BOM = b"\xef\xbb\xbf"


def time_range_end() -> int:
    """Latest plausible rating time: now + 1 day (Unix seconds)."""
    return int(dt.datetime.now(dt.timezone.utc).timestamp()) + 86_400


def time_range_text() -> str:
    end = dt.datetime.fromtimestamp(time_range_end(), dt.timezone.utc)
    return f"1990-01-01 .. {end:%Y-%m-%d} UTC (now + 1 day)"


#: Repairs that ``--strict`` refuses; other entries are notes (reported, never refused).
STRICT_REFUSES = ("bom", "blank", "truncated", "duplicates")


@dataclass
class Repair:
    """One kind of repair (or note) in one file: where it first happened and how often."""

    file: str
    kind: str  # "bom", "blank", "truncated", "unterminated" or "duplicates"
    line: int | None
    count: int = 1
    detail: str = ""

    def message(self) -> str:
        where = f"{self.file}: " + (f"line {self.line}: " if self.line is not None else "")
        n = self.count
        text = {
            "bom": "UTF-8 byte-order mark at the start removed",
            "blank": f"{n} blank line{'s' if n != 1 else ''} skipped" + (" (the first here)" if n > 1 else ""),
            "truncated": f"last line cut short (no newline, {self.detail}) skipped",
            "unterminated": "no newline at the end of the file (last line kept: check the file is complete)",
            "duplicates": f"{n:,} duplicate (user, item) row{'s' if n != 1 else ''} kept "
                          "(each pair counts once in the prepared data)",
        }[self.kind]
        return where + text

    def as_dict(self) -> dict:
        return {"file": self.file, "kind": self.kind, "line": self.line, "count": self.count, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict) -> "Repair":
        return cls(d["file"], d["kind"], d.get("line"), int(d.get("count", 1)), d.get("detail", ""))


@dataclass
class ParseReport:
    """What the parsers repaired or noticed; ``strict`` makes every repair an error instead."""

    strict: bool = False
    repairs: list[Repair] = field(default_factory=list)

    def add(self, file: str, kind: str, line: int | None, count: int = 1, detail: str = "") -> None:
        rep = Repair(file, kind, line, count, detail)
        if self.strict and kind in STRICT_REFUSES:
            raise UserError(f"{rep.message()}; --strict refuses repaired input (without it: repaired and reported)")
        for r in self.repairs:
            if r.file == file and r.kind == kind:
                r.count += count
                return
        self.repairs.append(rep)

    def messages(self) -> list[str]:
        return [r.message() for r in self.repairs]


@dataclass(frozen=True)
class Source:
    """One raw input file: a plain file, or a member of a zip archive."""

    path: Path
    member: str | None = None

    @property
    def display(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def open(self) -> BinaryIO:
        try:
            if self.member is None:
                return open(self.path, "rb")
            zf = zipfile.ZipFile(self.path)
            try:
                return _ZipMember(zf, zf.open(self.member))
            except KeyError:
                zf.close()
                raise UserError(f"{self.path}: archive has no member {self.member!r}") from None
        except zipfile.BadZipFile as exc:
            raise UserError(f"{self.path}: truncated or corrupt zip archive ({exc})") from None
        except FileNotFoundError:
            raise UserError(f"{self.display}: file not found") from None
        except IsADirectoryError:
            raise UserError(f"{self.display}: is a directory, expected a file") from None
        except OSError as exc:
            raise UserError(f"{self.display}: cannot read ({exc.strerror or exc})") from None


class _ZipMember(io.RawIOBase):
    """A zip member stream that closes its archive too."""

    def __init__(self, zf: zipfile.ZipFile, fh: BinaryIO) -> None:
        self._zf, self._fh = zf, fh

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def close(self) -> None:
        self._fh.close()
        self._zf.close()
        super().close()


Progress = Callable[[int], object] | None  # called with the number of bytes just read


def iter_line_blocks(src: Source, block_bytes: int | None = None, progress: Progress = None) -> Iterator[tuple[bytes, int]]:
    """Yield ``(block, first_line_number)``: chunks of whole lines (1-based line numbers)."""
    for block, first, _ in _line_blocks(src, block_bytes, progress, None):
        yield block, first


def _line_blocks(src: Source, block_bytes: int | None, progress: Progress,
                 report: ParseReport | None) -> Iterator[tuple[bytes, int, bool]]:
    """Yield ``(block, first_line, unterminated)``; a UTF-8 BOM is removed (and reported).

    ``unterminated`` marks the last block when the file does not end with a newline: it then
    holds exactly that last line (a newline appended).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    line_no = 1
    rest = b""
    start = True
    with src.open() as fh:
        while True:
            try:
                chunk = fh.read(block_bytes)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise UserError(f"{src.display}: truncated or corrupt archive ({exc})") from None
            except OSError as exc:
                raise UserError(f"{src.display}: cannot read ({exc.strerror or exc})") from None
            if not chunk:
                break
            if progress is not None:
                progress(len(chunk))
            data = rest + chunk
            if start:
                if len(data) < len(_BOM) and _BOM.startswith(data):
                    rest = data
                    continue
                start = False
                if data.startswith(_BOM):
                    data = data[len(_BOM):]
                    if report is not None:
                        report.add(src.display, "bom", 1)
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            yield block, line_no, False
            line_no += block.count(b"\n")
    if start and rest.startswith(_BOM):
        rest = rest[len(_BOM):]
        if report is not None:
            report.add(src.display, "bom", 1)
    if rest:
        yield rest + b"\n", line_no, True


_BLANK_RE = re.compile(rb"(?:\A|\n)(?=\r?\n)")
_CONTENT_RE = re.compile(rb"[^\r\n]")


def _has_content(block: bytes) -> bool:
    """Whether ``block`` holds anything but line ends (without copying it)."""
    return _CONTENT_RE.search(block) is not None


def _count_blank(block: bytes, first_line: int, src: Source, report: ParseReport) -> None:
    """Report the empty lines of ``block`` (pyarrow skips them; a line of spaces is an error)."""
    if (b"\n\n" not in block and (b"\r" not in block or b"\n\r\n" not in block)
            and not block.startswith((b"\n", b"\r\n"))):
        return  # the common case: one fast scan
    found = _BLANK_RE.search(block)
    if found is None:
        return
    n = len(_BLANK_RE.findall(block))
    report.add(src.display, "blank", _blank_line_no(block, first_line, found.start()), n)


def _blank_line_no(block: bytes, first_line: int, pos: int) -> int:
    """Line number of the blank line matched at ``pos`` (at the block start, or after a newline)."""
    if pos == 0 and block[:1] in (b"\n", b"\r"):
        return first_line
    return first_line + block.count(b"\n", 0, pos + 1)


def _fields(line: bytes, sep: bytes) -> int:
    return len(line.rstrip(b"\r\n").split(sep))


def _check_last_line(block: bytes, first_line: int, src: Source, report: ParseReport, sep: bytes,
                     names: Sequence[str]) -> bool:
    """For an unterminated last line: True to keep it (reported as a note), False if cut short."""
    got = _fields(block, sep)
    if got < len(names):
        report.add(src.display, "truncated", first_line, detail=f"{got} of {len(names)} fields")
        return False
    report.add(src.display, "unterminated", first_line)
    return True


# ---------------------------------------------------------------------------------------------
# Delimited blocks -> Arrow, with a slow exact diagnosis when pyarrow refuses a block.

_KIND_TYPES = {"id": pa.int64(), "ts": pa.int64(), "float": pa.float32(), "str": pa.string(), "date": pa.date32()}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^-?\d+$")  # as pyarrow reads integers (no "+")


def _field_problem(kind: str, name: str, text: str) -> str | None:
    """Why ``text`` is not a valid value of column ``name`` of ``kind`` (None: it is).

    Spaces and tabs around a number are allowed, as pyarrow reads numbers.
    """
    text = text.strip(" \t")
    if kind == "str":
        return None if text else f"column {name} is not a non-empty id: {text[:40]!r}"
    if kind in ("id", "ts"):
        if not _INT_RE.match(text):
            return f"column {name} is not an integer: {text[:40]!r}"
        v = int(text)
        if kind == "id" and v < 0:
            return f"column {name} is negative: {text[:40]!r} (ids must be >= 0)"
        if kind == "id" and v > _INT64_MAX:
            return f"column {name} is too large for a 64-bit id: {text[:40]!r}"
        if kind == "ts" and not TIME_RANGE_START <= v <= time_range_end():
            return f"column {name} {text[:40]!r} is outside the plausible range {time_range_text()}"
        return None
    if kind == "float":
        try:
            ok = bool(np.isfinite(float(text)))
        except ValueError:
            ok = False
        return None if ok else f"column {name} is not a number: {text[:40]!r}"
    # date
    try:
        if not _DATE_RE.match(text):
            raise ValueError
        day = int(np.datetime64(text, "D").astype(np.int64)) * 86_400
    except ValueError:
        return f"column {name} is not a date YYYY-MM-DD: {text[:40]!r}"
    if not TIME_RANGE_START <= day <= time_range_end():
        return f"column {name} {text!r} is outside the plausible range {time_range_text()}"
    return None


def _diagnose(block: bytes, first_line: int, sep: str, names: Sequence[str], kinds: Sequence[str],
              sep_label: str | None = None) -> str | None:
    """Find the first bad line of ``block``: ``'line N: ...'`` or None when every line is fine."""
    label = sep_label or repr(sep)
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for k, raw in enumerate(lines):
        where = f"line {first_line + k}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"{where}: not UTF-8 text: {raw[:40]!r}"
        line = line[:-1] if line.endswith("\r") else line
        if not line:
            continue
        parts = line.split(sep)
        if "\r" in line:
            return f"{where}: carriage return inside the line"
        if len(parts) != len(names):
            return (f"{where}: expected {len(names)} {label}-separated columns "
                    f"({', '.join(names)}), got {len(parts)}: {line[:80]!r}")
        for name, kind, text in zip(names, kinds, parts):
            why = _field_problem(kind, name, text)
            if why:
                return f"{where}: {why}"
    return None


def _read_block(block: bytes, first_line: int, src: Source, sep: str, names: Sequence[str],
                kinds: Sequence[str], sep_label: str | None = None) -> pa.Table:
    """Parse one block of delimited lines (no header) into a table with the given column kinds."""
    if block.startswith(_BOM):  # pyarrow would drop it silently: here it is inside the file
        raise UserError(f"{src.display}: {_diagnose(block, first_line, sep, names, kinds, sep_label)}")
    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=list(names), block_size=max(1 << 20, len(block) + 1)),
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _KIND_TYPES[k] for n, k in zip(names, kinds)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        why = _diagnose(block, first_line, sep, names, kinds, sep_label) or str(exc).splitlines()[0]
        raise UserError(f"{src.display}: {why}") from None
    if _out_of_range(table, names, kinds):
        why = _diagnose(block, first_line, sep, names, kinds, sep_label) or "empty or non-finite value"
        raise UserError(f"{src.display}: {why}")
    _check_cr(block, first_line, src)
    return table


_LONE_CR = re.compile(rb"\r(?!\n)")


def _check_cr(block: bytes, first_line: int, src: Source) -> None:
    """Refuse a carriage return inside a line (pyarrow would take it for a line end)."""
    if b"\r" in block:
        m = _LONE_CR.search(block)
        if m is not None:
            line = first_line + block.count(b"\n", 0, m.start())
            raise UserError(f"{src.display}: line {line}: carriage return inside the line")


def _out_of_range(table: pa.Table, names: Sequence[str], kinds: Sequence[str]) -> bool:
    """Whether any value of ``table`` is null, non-finite, a negative id or an implausible time."""
    if any(table.column(n).null_count for n in names) or not table.num_rows:
        return any(table.column(n).null_count for n in names)
    for n, k in zip(names, kinds):
        col = table.column(n)
        if k == "float" and not pc.all(pc.is_finite(col)).as_py():
            return True
        if k == "str" and pc.min(pc.utf8_length(pc.utf8_trim(col, " "))).as_py() == 0:
            return True
        if k in ("id", "ts"):
            mm = pc.min_max(col).as_py()
            if k == "id" and mm["min"] < 0:
                return True
            if k == "ts" and not (TIME_RANGE_START <= mm["min"] and mm["max"] <= time_range_end()):
                return True
    return False


class _Batcher:
    """Collect small tables and hand them on in tables of about ``rows`` rows."""

    def __init__(self, rows: int | None = None) -> None:
        self.rows = rows or BATCH_ROWS
        self.parts: list[pa.Table] = []
        self.n = 0

    def add(self, table: pa.Table) -> Iterator[pa.Table]:
        if table.num_rows:
            self.parts.append(table)
            self.n += table.num_rows
        if self.n >= self.rows:
            yield from self.flush()

    def flush(self) -> Iterator[pa.Table]:
        if self.parts:
            out = pa.concat_tables(self.parts).combine_chunks()
            self.parts, self.n = [], 0
            yield out


def _empty_file(src: Source, header: bool = False) -> UserError:
    return UserError(f"{src.display}: empty file (no ratings{' after the header' if header else ''})")


# ---------------------------------------------------------------------------------------------
# The formats.

_ML_NAMES = ("user", "item", "value", "timestamp")
_ML_KINDS = ("id", "id", "float", "ts")


def _delimited(src: Source, sep: str, header: str | None, transform: Callable[[bytes], bytes] | None,
               sep_label: str | None, names: Sequence[str], kinds: Sequence[str], progress: Progress,
               report: ParseReport | None) -> Iterator[pa.Table]:
    """One delimited file (optional header line), block by block, repairs reported."""
    report = report if report is not None else ParseReport()
    rows = 0
    batcher = _Batcher()
    for block, first, unterminated in _line_blocks(src, None, progress, report):
        if header is not None and first == 1:
            nl = block.find(b"\n")
            got = block[:nl].decode("utf-8", errors="replace").strip()
            if got != header:
                raise UserError(f"{src.display}: line 1: unexpected header {got[:80]!r}; expected {header!r}")
            block, first = block[nl + 1 :], 2
            if not block:
                continue
        if transform is not None:
            block = transform(block)
        if unterminated and not _check_last_line(block, first, src, report, sep.encode(), names):
            continue
        if not _has_content(block):
            _count_blank(block, first, src, report)
            continue
        table = _read_block(block, first, src, sep, names, kinds, sep_label)
        if table.num_rows != block.count(b"\n"):  # pyarrow skipped empty lines
            _count_blank(block, first, src, report)
        rows += table.num_rows
        yield from batcher.add(table)
    if rows == 0:
        raise _empty_file(src, header is not None)
    yield from batcher.flush()


def _movielens(src: Source, sep: str, header: str | None, transform: Callable[[bytes], bytes] | None,
               sep_label: str | None, progress: Progress, report: ParseReport | None) -> Iterator[pa.Table]:
    return _delimited(src, sep, header, transform, sep_label, _ML_NAMES, _ML_KINDS, progress, report)


def parse_movielens_csv(src: Source, progress: Progress = None, report: ParseReport | None = None) -> Iterator[pa.Table]:
    """ML-20M / ML-25M / ml-latest ``ratings.csv``: header ``userId,movieId,rating,timestamp``."""
    return _movielens(src, ",", ML_CSV_HEADER, None, None, progress, report)


def parse_movielens_dat(src: Source, progress: Progress = None, report: ParseReport | None = None) -> Iterator[pa.Table]:
    """ML-1M / ML-10M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``, no header."""
    return _movielens(src, "\t", None, lambda b: b.replace(b"\t", b" ").replace(b"::", b"\t"), "'::'",
                      progress, report)


def parse_movielens_tab(src: Source, progress: Progress = None, report: ParseReport | None = None) -> Iterator[pa.Table]:
    """ML-100K ``u.data``: tab-separated ``user item rating timestamp``, no header."""
    return _movielens(src, "\t", None, None, "tab", progress, report)


_MSD_NAMES = ("user", "item", "value")
_MSD_KINDS = ("str", "str", "float")


def parse_msd_triplets(src: Source, progress: Progress = None, report: ParseReport | None = None) -> Iterator[pa.Table]:
    """MSD ``train_triplets.txt``: tab-separated ``user song play_count``, no header."""
    return _delimited(src, "\t", None, None, "tab", _MSD_NAMES, _MSD_KINDS, progress, report)


_NF_HEADER = re.compile(rb"^[ \t]*(\d+)[ \t]*:[ \t\r]*$", re.M)
_NF_NAMES = ("user", "value", "date")
_NF_KINDS = ("id", "float", "date")


def _netflix_diagnose(block: bytes, first_line: int) -> str | None:
    """The first bad line of a Netflix block, or None."""
    for k, raw in enumerate(block.split(b"\n")):
        if not raw.strip(b"\r"):
            continue
        head = _NF_HEADER.match(raw)
        if head:
            if int(head.group(1)) > _INT64_MAX:
                return f"line {first_line + k}: movie id too large for a 64-bit id: {raw[:40].decode(errors='replace')!r}"
            continue
        why = _diagnose(raw + b"\n", first_line + k, ",", _NF_NAMES, _NF_KINDS, "comma")
        if why:
            return why
    return None


def _netflix_block(block: bytes, first_line: int, src: Source, movie: int | None) -> tuple[pa.Table, int | None]:
    """Parse a block of Netflix lines; ``movie`` is the movie of rating lines before any header.

    Header lines ``N:`` are rewritten to ``N:,,`` so that the whole block is one 3-column CSV;
    header rows are then recognised by the trailing colon and forward-filled onto their ratings.
    """
    if block.startswith(_BOM):  # pyarrow would drop it silently: here it is inside the file
        raise UserError(f"{src.display}: {_netflix_diagnose(block, first_line)}")
    text = _NF_HEADER.sub(rb"\1:,,", block)
    try:
        t = pacsv.read_csv(
            io.BytesIO(text),
            read_options=pacsv.ReadOptions(column_names=list(_NF_NAMES), block_size=max(1 << 20, len(text) + 1),
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=",", quote_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={"user": pa.string(), "value": pa.float32(), "date": pa.date32()},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        why = _netflix_diagnose(block, first_line) or str(exc).splitlines()[0]
        raise UserError(f"{src.display}: {why}") from None
    ucol = t.column("user")
    head_mask = pc.and_(pc.match_substring_regex(ucol, r"^\d+:$"),
                        pc.and_(pc.is_null(t.column("value")), pc.is_null(t.column("date"))))
    is_head = head_mask.to_numpy(zero_copy_only=False)
    n = t.num_rows
    heads = np.flatnonzero(is_head)
    head_ids = [int(x[:-1]) for x in ucol.filter(head_mask).to_pylist()]
    if any(h > _INT64_MAX for h in head_ids):
        raise UserError(f"{src.display}: {_netflix_diagnose(block, first_line) or 'movie id too large'}")
    head_movies = np.array(head_ids, dtype=np.int64)
    last = np.maximum.accumulate(np.where(is_head, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    rating = ~is_head
    if movie is None and np.any(rating & (last < 0)):
        raise UserError(f"{src.display}: line {first_line}: expected a 'MovieID:' line first (not a Netflix Prize file?)")
    movie_at = np.full(n, -1, dtype=np.int64)
    movie_at[heads] = head_movies
    item = np.where(last >= 0, movie_at[np.maximum(last, 0)], -1 if movie is None else movie)[rating]
    mask = pa.array(rating)
    values = t.column("value").filter(mask)
    dates = t.column("date").filter(mask)
    try:
        users = pc.cast(pc.utf8_trim(ucol.filter(mask), " \t"), pa.int64())
    except pa.ArrowInvalid:
        users = None
    _check_cr(block, first_line, src)
    days = dates.cast(pa.int32()).fill_null(0).to_numpy().astype(np.int64) if len(dates) else np.zeros(0, np.int64)
    if users is None or values.null_count or dates.null_count or (
        len(values) and not pc.all(pc.is_finite(values)).as_py()
    ) or (len(users) and (pc.min(users).as_py() < 0 or days.min() * 86_400 < TIME_RANGE_START
                          or days.max() * 86_400 > time_range_end())):
        why = _netflix_diagnose(block, first_line) or "empty or malformed value"
        raise UserError(f"{src.display}: {why}")
    table = pa.table(
        {
            "user": users,
            "item": pa.array(item, pa.int64()),
            "value": values,
            "timestamp": pa.array(days * 86_400, pa.int64()),
        }
    )
    return table, int(head_movies[-1]) if heads.size else movie


def parse_netflix(srcs: Sequence[Source], progress: Progress = None, report: ParseReport | None = None) -> Iterator[pa.Table]:
    """Netflix Prize: ``MovieID:`` lines followed by ``CustomerID,Rating,YYYY-MM-DD`` lines.

    Works for the per-movie ``training_set/mv_*.txt`` files and for ``combined_data_*.txt``
    alike; files are read in the order given.
    """
    report = report if report is not None else ParseReport()
    batcher = _Batcher()
    for src in srcs:
        rows = 0
        movie: int | None = None
        for block, first, unterminated in _line_blocks(src, None, progress, report):
            if unterminated and not _NF_HEADER.match(block.rstrip(b"\n")) and not _check_last_line(
                    block, first, src, report, b",", _NF_NAMES):
                continue
            if unterminated and _NF_HEADER.match(block.rstrip(b"\n")):
                report.add(src.display, "unterminated", first)
            _count_blank(block, first, src, report)
            if not _has_content(block):
                continue
            table, movie = _netflix_block(block, first, src, movie)
            rows += table.num_rows
            yield from batcher.add(table)
        if rows == 0:
            raise _empty_file(src)
    yield from batcher.flush()


def parse(fmt: str, sources: Sequence[Source], progress: Progress = None,
          report: ParseReport | None = None) -> Iterator[pa.Table]:
    """Tables of canonical interactions for the raw format ``fmt`` read from ``sources`` in order.

    ``report`` collects the repairs (pass a strict one to refuse them instead).
    """
    if fmt == "netflix":
        yield from parse_netflix(sources, progress, report)
        return
    one = {
        "movielens-csv": parse_movielens_csv,
        "movielens-dat": parse_movielens_dat,
        "movielens-tab": parse_movielens_tab,
        "msd-triplets": parse_msd_triplets,
    }[fmt]
    for src in sources:
        yield from one(src, progress, report)


def schema_for(fmt: str) -> pa.Schema:
    return STR_SCHEMA if fmt == "msd-triplets" else INT_SCHEMA
