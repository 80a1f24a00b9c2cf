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
truncated archive) raises :class:`~recvae.errors.UserError` with one line naming the file (and
the line, when the problem is in one line).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    block_bytes = block_bytes or BLOCK_BYTES
    line_no = 1
    rest = b""
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
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            yield block, line_no
            line_no += block.count(b"\n")
    if rest:
        yield rest + b"\n", line_no


# ---------------------------------------------------------------------------------------------
# Delimited blocks -> Arrow, with a slow exact diagnosis when pyarrow refuses a block.

_KIND_TYPES = {"int": pa.int64(), "float": pa.float32(), "str": pa.string(), "date": pa.date32()}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _field_ok(kind: str, text: str) -> bool:
    text = text.strip()
    if kind == "str":
        return bool(text)
    try:
        if kind == "int":
            int(text)
        elif kind == "float":
            return np.isfinite(float(text))
        elif kind == "date":
            if not _DATE_RE.match(text):
                return False
            np.datetime64(text, "D")
    except ValueError:
        return False
    return True


def _diagnose(block: bytes, first_line: int, sep: str, names: Sequence[str], kinds: Sequence[str],
              sep_label: str | None = None) -> str | None:
    """Find the first bad line of ``block``: ``'line N: ...'`` or None when every line is fine."""
    label = sep_label or repr(sep)
    for k, raw in enumerate(block.split(b"\n")):
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        parts = line.split(sep)
        where = f"line {first_line + k}"
        if len(parts) != len(names):
            return (f"{where}: expected {len(names)} {label}-separated columns "
                    f"({', '.join(names)}), got {len(parts)}: {line[:80]!r}")
        for name, kind, text in zip(names, kinds, parts):
            if not _field_ok(kind, text):
                what = {"int": "an integer", "float": "a number", "str": "a non-empty id",
                        "date": "a date YYYY-MM-DD"}[kind]
                return f"{where}: column {name} is not {what}: {text[:40]!r}"
    return None


def _read_block(block: bytes, first_line: int, src: Source, sep: str, names: Sequence[str],
                kinds: Sequence[str], sep_label: str | None = None) -> pa.Table:
    """Parse one block of delimited lines (no header) into a table with the given column kinds."""
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
    bad = any(table.column(n).null_count for n in names)
    if not bad:
        for n, k in zip(names, kinds):
            if k == "float":
                col = table.column(n)
                if not pc.all(pc.is_finite(col)).as_py():
                    bad = True
    if bad:
        why = _diagnose(block, first_line, sep, names, kinds, sep_label) or "empty or non-finite value"
        raise UserError(f"{src.display}: {why}")
    return table


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


def _empty_file(src: Source) -> UserError:
    return UserError(f"{src.display}: empty file (no ratings)")


# ---------------------------------------------------------------------------------------------
# The formats.

_ML_NAMES = ("user", "item", "value", "timestamp")
_ML_KINDS = ("int", "int", "float", "int")


def _movielens(src: Source, sep: str, header: str | None, transform: Callable[[bytes], bytes] | None,
               sep_label: str | None, progress: Progress) -> Iterator[pa.Table]:
    rows = 0
    batcher = _Batcher()
    for block, first in iter_line_blocks(src, progress=progress):
        if header is not None and first == 1:
            nl = block.find(b"\n")
            got = block[:nl].decode("utf-8", errors="replace").strip().lstrip("\ufeff")
            if got != header:
                raise UserError(f"{src.display}: line 1: unexpected header {got[:80]!r}; expected {header!r}")
            block, first = block[nl + 1 :], 2
        if transform is not None:
            block = transform(block)
        if not block.strip():
            continue
        table = _read_block(block, first, src, sep, _ML_NAMES, _ML_KINDS, sep_label)
        rows += table.num_rows
        yield from batcher.add(table)
    if rows == 0:
        raise _empty_file(src)
    yield from batcher.flush()


def parse_movielens_csv(src: Source, progress: Progress = None) -> Iterator[pa.Table]:
    """ML-20M / ML-25M / ml-latest ``ratings.csv``: header ``userId,movieId,rating,timestamp``."""
    return _movielens(src, ",", ML_CSV_HEADER, None, None, progress)


def parse_movielens_dat(src: Source, progress: Progress = None) -> Iterator[pa.Table]:
    """ML-1M / ML-10M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``, no header."""
    return _movielens(src, "\t", None, lambda b: b.replace(b"\t", b" ").replace(b"::", b"\t"), "'::'", progress)


def parse_movielens_tab(src: Source, progress: Progress = None) -> Iterator[pa.Table]:
    """ML-100K ``u.data``: tab-separated ``user item rating timestamp``, no header."""
    return _movielens(src, "\t", None, None, "tab", progress)


_MSD_NAMES = ("user", "item", "value")
_MSD_KINDS = ("str", "str", "float")


def parse_msd_triplets(src: Source, progress: Progress = None) -> Iterator[pa.Table]:
    """MSD ``train_triplets.txt``: tab-separated ``user song play_count``, no header."""
    rows = 0
    batcher = _Batcher()
    for block, first in iter_line_blocks(src, progress=progress):
        if not block.strip():
            continue
        table = _read_block(block, first, src, "\t", _MSD_NAMES, _MSD_KINDS, "tab")
        rows += table.num_rows
        yield from batcher.add(table)
    if rows == 0:
        raise _empty_file(src)
    yield from batcher.flush()


_NF_HEADER = re.compile(rb"^[ \t]*(\d+)[ \t]*:[ \t\r]*$", re.M)
_NF_NAMES = ("user", "value", "date")
_NF_KINDS = ("int", "float", "date")


def _netflix_diagnose(block: bytes, first_line: int) -> str | None:
    """The first bad line of a Netflix block, or None."""
    for k, raw in enumerate(block.split(b"\n")):
        if not raw.strip() or _NF_HEADER.match(raw):
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
    is_head = pc.ends_with(ucol, ":").to_numpy(zero_copy_only=False)
    n = t.num_rows
    heads = np.flatnonzero(is_head)
    head_movies = np.array([int(x[:-1]) for x in ucol.filter(pa.array(is_head)).to_pylist()], dtype=np.int64)
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
        users = pc.cast(ucol.filter(mask), pa.int64())
    except pa.ArrowInvalid:
        users = None
    if users is None or values.null_count or dates.null_count or (
        len(values) and not pc.all(pc.is_finite(values)).as_py()
    ):
        why = _netflix_diagnose(block, first_line) or "empty or malformed value"
        raise UserError(f"{src.display}: {why}")
    days = dates.cast(pa.int32()).to_numpy().astype(np.int64) if len(dates) else np.zeros(0, np.int64)
    table = pa.table(
        {
            "user": users,
            "item": pa.array(item, pa.int64()),
            "value": values,
            "timestamp": pa.array(days * 86_400, pa.int64()),
        }
    )
    return table, int(head_movies[-1]) if heads.size else movie


def parse_netflix(srcs: Sequence[Source], progress: Progress = None) -> Iterator[pa.Table]:
    """Netflix Prize: ``MovieID:`` lines followed by ``CustomerID,Rating,YYYY-MM-DD`` lines.

    Works for the per-movie ``training_set/mv_*.txt`` files and for ``combined_data_*.txt``
    alike; files are read in the order given.
    """
    batcher = _Batcher()
    for src in srcs:
        rows = 0
        movie: int | None = None
        for block, first in iter_line_blocks(src, progress=progress):
            if not block.strip():
                continue
            table, movie = _netflix_block(block, first, src, movie)
            rows += table.num_rows
            yield from batcher.add(table)
        if rows == 0:
            raise _empty_file(src)
    yield from batcher.flush()


def parse(fmt: str, sources: Sequence[Source], progress: Progress = None) -> Iterator[pa.Table]:
    """Tables of canonical interactions for the raw format ``fmt`` read from ``sources`` in order."""
    if fmt == "netflix":
        yield from parse_netflix(sources, progress)
        return
    one = {
        "movielens-csv": parse_movielens_csv,
        "movielens-dat": parse_movielens_dat,
        "movielens-tab": parse_movielens_tab,
        "msd-triplets": parse_msd_triplets,
    }[fmt]
    for src in sources:
        yield from one(src, progress)


def schema_for(fmt: str) -> pa.Schema:
    return STR_SCHEMA if fmt == "msd-triplets" else INT_SCHEMA
