"""The canonical interactions table of a dataset: raw files -> Parquet + manifest in the cache.

``cache_dir()/interactions/<name>-<key>/`` holds ``interactions.parquet`` (columns ``user``,
``item``, ``value``, ``timestamp``; no ``timestamp`` for MSD; rows in raw file order) and
``manifest.json`` (source checksums, counts, value and time ranges). ``<key>`` hashes the dataset
name, the parser version and the identity of the inputs (path, size and modification time of
every source file; the generator options for ``synthetic``), so an unchanged input is ingested
once and a changed one is ingested again. The manifest records the SHA-256 of every source file
and a ``digest`` over them: the prepared-data cache is keyed on that content digest.

Where the raw files come from (``data_dir``):

* MovieLens: the ratings file itself, a folder holding it (``ratings.csv`` / ``ratings.dat`` /
  ``u.data``), the parent of the unpacked folder (e.g. a folder holding ``ml-100k/``), the official
  zip, or a folder holding the official zip. Official zips are checked against the published MD5.
* Netflix: a ``training_set/`` folder of ``mv_*.txt`` files (or its parent), ``combined_data_*.txt``
  files (or their folder), or one such file. There is no download.
* MSD: ``train_triplets.txt`` (or its zip), or a folder holding it, else every ``*triplets*.txt``
  in the folder (sorted by name, concatenated).
* Without ``data_dir``: MovieLens and MSD are downloaded from their official URLs.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recvae.data import parsers
from recvae.data.download import fetch, file_digests, verify_file
from recvae.data.parsers import Source
from recvae.data.registry import DatasetSpec, get_dataset
from recvae.data.synthetic import SyntheticConfig, generate
from recvae.errors import UserError
from recvae.storage import atomic_path, cache_dir

#: Bump when parsing changes what ends up in the Parquet file (invalidates cached ingests).
PARSER_VERSION = 2
PARQUET_NAME = "interactions.parquet"
MANIFEST_NAME = "manifest.json"
_MAX_LISTED_FILES = 32
_HISTOGRAM_MAX_VALUES = 32


def _hash_json(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Locating the raw files.


def _zip_source(path: Path, spec: DatasetSpec) -> Source:
    """The ratings member of a zip (official member path, else any member with the file's name)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as exc:
        raise UserError(f"{path}: truncated or corrupt zip archive ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    assert spec.member is not None
    if spec.member in names:
        return Source(path, spec.member)
    base = PurePosixPath(spec.member).name
    found = sorted(n for n in names if PurePosixPath(n).name == base)
    if not found:
        raise UserError(f"{path}: archive has no {base} (expected member {spec.member})")
    return Source(path, found[0])


def _movielens_sources(spec: DatasetSpec, p: Path) -> list[Source]:
    assert spec.member is not None and spec.archive_name is not None
    member = PurePosixPath(spec.member)
    if p.is_file():
        return [_zip_source(p, spec)] if p.suffix.lower() == ".zip" else [Source(p)]
    candidates = [p / member.name, p / member.parent.name / member.name, p / spec.archive_name]
    for c in candidates:
        if c.is_file():
            return [_zip_source(c, spec)] if c.suffix.lower() == ".zip" else [Source(c)]
    looked = ", ".join(str(c.relative_to(p)) for c in candidates)
    raise UserError(f"{p}: no {member.name} for {spec.title} found (looked for {looked})")


_NETFLIX_MISSING = (
    "the Netflix Prize data has no official download any more; pass --data-dir with a "
    "training_set/ folder (mv_*.txt files) or the combined_data_*.txt files"
)


def _numeric_key(path: Path) -> tuple[int, str]:
    m = re.findall(r"\d+", path.name)
    return (int(m[-1]) if m else -1, path.name)


def _netflix_sources(p: Path) -> list[Source]:
    if p.is_file():
        return [Source(p)]
    for folder in (p / "training_set", p):
        files = sorted(folder.glob("mv_*.txt"), key=_numeric_key) if folder.is_dir() else []
        if files:
            return [Source(f) for f in files]
    files = sorted(p.glob("combined_data_*.txt"), key=_numeric_key)
    if files:
        return [Source(f) for f in files]
    raise UserError(f"{p}: neither a training_set/ folder with mv_*.txt files nor combined_data_*.txt files found; {_NETFLIX_MISSING}")


def _msd_sources(spec: DatasetSpec, p: Path) -> list[Source]:
    if p.is_file():
        return [_zip_source(p, spec)] if p.suffix.lower() == ".zip" else [Source(p)]
    if (p / "train_triplets.txt").is_file():
        return [Source(p / "train_triplets.txt")]
    assert spec.archive_name is not None
    if (p / spec.archive_name).is_file():
        return [_zip_source(p / spec.archive_name, spec)]
    files = sorted(f for f in p.glob("*triplets*.txt") if f.is_file())
    if files:
        return [Source(f) for f in files]
    raise UserError(f"{p}: no train_triplets.txt, {spec.archive_name} or *triplets*.txt file found")


def resolve_sources(spec: DatasetSpec, data_dir: str | Path | None, *, progress: bool | None = None) -> tuple[list[Source], dict]:
    """The raw files to read for ``spec`` (downloading when ``data_dir`` is None) and their origin."""
    if data_dir is None:
        if spec.format == "netflix":
            raise UserError(f"netflix: {_NETFLIX_MISSING}")
        path = fetch(spec, progress=progress)
        try:
            srcs = [_zip_source(path, spec)]
        except UserError:
            path.unlink(missing_ok=True)  # a corrupt download is useless: fetch again next time
            raise
        return srcs, {"origin": "download", "url": spec.url, "checksum": spec.checksum}
    p = Path(data_dir).expanduser()
    if not p.exists():
        raise UserError(f"{p}: no such file or directory")
    if spec.format == "netflix":
        srcs = _netflix_sources(p)
    elif spec.format == "msd-triplets":
        srcs = _msd_sources(spec, p)
    else:
        srcs = _movielens_sources(spec, p)
    return srcs, {"origin": "local", "root": str(p.resolve())}


def _official_checksum(spec: DatasetSpec, src: Source) -> str | None:
    """The published checksum that applies to ``src`` (only for the official archive file)."""
    if spec.checksum and spec.archive_name and src.member is not None and src.path.name == spec.archive_name:
        return spec.checksum
    return None


# ---------------------------------------------------------------------------------------------
# Ingest.


def _input_key(spec: DatasetSpec, srcs: list[Source]) -> str:
    ident = []
    for s in srcs:
        st = s.path.stat()
        ident.append([str(s.path.resolve()), s.member, st.st_size, st.st_mtime_ns])
    return _hash_json({"dataset": spec.name, "parser": PARSER_VERSION, "inputs": ident})


class _Stats:
    """Counts and ranges accumulated while streaming batches."""

    def __init__(self, integer_ids: bool) -> None:
        self.integer_ids = integer_ids
        self.rows = 0
        self.users: set | np.ndarray = np.zeros(0, bool) if integer_ids else set()
        self.items: set | np.ndarray = np.zeros(0, bool) if integer_ids else set()
        self.vmin = np.inf
        self.vmax = -np.inf
        self.tmin: int | None = None
        self.tmax: int | None = None
        self.hist: dict[float, int] | None = {}
        self._pairs: list[np.ndarray] = []

    @staticmethod
    def _mark(seen: np.ndarray | set, col: pa.ChunkedArray | pa.Array) -> np.ndarray | set:
        uniq = pc.unique(col)
        if isinstance(seen, set):
            seen.update(uniq.to_pylist())
            return seen
        vals = uniq.to_numpy()
        if vals.size and (vals.min() < 0 or vals.max() > 2**31):
            # ids outside a sane dense range: fall back to a set
            s = set(np.flatnonzero(seen).tolist())
            s.update(vals.tolist())
            return s
        top = int(vals.max()) + 1 if vals.size else 0
        if top > seen.size:
            seen = np.concatenate([seen, np.zeros(max(top, 2 * seen.size) - seen.size, bool)])
        seen[vals] = True
        return seen

    def _pair_keys(self, t: pa.Table) -> np.ndarray:
        """One uint64 per (user, item) row: exact for 32-bit integer ids, else a 64-bit hash."""
        if self.integer_ids:
            u = t.column("user").to_numpy().astype(np.uint64)
            i = t.column("item").to_numpy().astype(np.uint64)
            if not u.size or (u.max() < 2**32 and i.max() < 2**32):
                return (u << np.uint64(32)) | i
        frame = pd.DataFrame({"u": t.column("user").to_pandas(), "i": t.column("item").to_pandas()})
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()

    def duplicates(self) -> int:
        """Rows whose (user, item) pair appeared on an earlier row."""
        if not self._pairs:
            return 0
        keys = np.concatenate(self._pairs)
        self._pairs = []
        keys.sort()
        return int(np.count_nonzero(keys[1:] == keys[:-1]))

    def add(self, t: pa.Table) -> None:
        self._pairs.append(self._pair_keys(t))
        self.rows += t.num_rows
        self.users = self._mark(self.users, t.column("user"))
        self.items = self._mark(self.items, t.column("item"))
        mm = pc.min_max(t.column("value")).as_py()
        self.vmin, self.vmax = min(self.vmin, mm["min"]), max(self.vmax, mm["max"])
        if "timestamp" in t.column_names:
            mm = pc.min_max(t.column("timestamp")).as_py()
            self.tmin = mm["min"] if self.tmin is None else min(self.tmin, mm["min"])
            self.tmax = mm["max"] if self.tmax is None else max(self.tmax, mm["max"])
        if self.hist is not None:
            vc = pc.value_counts(t.column("value"))
            for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                self.hist[v] = self.hist.get(v, 0) + c
            if len(self.hist) > _HISTOGRAM_MAX_VALUES:
                self.hist = None

    @staticmethod
    def _count(seen: np.ndarray | set) -> int:
        return len(seen) if isinstance(seen, set) else int(seen.sum())

    def summary(self) -> dict:
        return {
            "counts": {"rows": self.rows, "users": self._count(self.users), "items": self._count(self.items)},
            "value": {
                "min": float(self.vmin),
                "max": float(self.vmax),
                "histogram": None if self.hist is None else {f"{k:g}": v for k, v in sorted(self.hist.items())},
            },
            "time": None if self.tmin is None else {"min": int(self.tmin), "max": int(self.tmax)},
        }


def _source_record(spec: DatasetSpec, srcs: list[Source], origin: dict) -> dict:
    """Checksums of every source file (verifying official archives) and one digest over them."""
    root = Path(origin["root"]) if "root" in origin else None
    files = []
    verified = []
    for s in srcs:
        if not s.path.is_file():
            raise UserError(f"{s.path}: file not found")
        dig = file_digests(s.path)
        official = _official_checksum(spec, s)
        if official:
            verify_file(s.path, official, dig)
            verified.append(official)
        name = s.path.name
        if root is not None:
            try:
                name = str(s.path.resolve().relative_to(root)) or s.path.name
            except ValueError:
                pass
        if s.member:
            name += f":{s.member}"
        files.append({"name": name, "bytes": s.path.stat().st_size, "sha256": dig["sha256"], "md5": dig["md5"]})
    digest = hashlib.sha256(
        "".join(f"{f['name'].split('/')[-1]}\t{f['bytes']}\t{f['sha256']}\n" for f in files).encode()
    ).hexdigest()
    record = dict(origin)
    record.update(
        {
            "n_files": len(files),
            "bytes": sum(f["bytes"] for f in files),
            "digest": digest,
            "verified_checksums": verified,
        }
    )
    if len(files) <= _MAX_LISTED_FILES:
        record["files"] = files
    return record


def _progress_bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=None if progress is None else not progress)


def _source_bytes(s: Source) -> int:
    if s.member is None:
        return s.path.stat().st_size
    try:
        with zipfile.ZipFile(s.path) as zf:
            return zf.getinfo(s.member).file_size
    except (zipfile.BadZipFile, KeyError, OSError):
        return 0


def repairs_of(manifest: dict) -> list[parsers.Repair]:
    """The repairs (and notes) recorded when the raw files of ``manifest`` were parsed."""
    return [parsers.Repair.from_dict(r) for r in manifest.get("source", {}).get("repairs", [])]


def _check_strict(d: Path) -> None:
    """Refuse a cached ingest that needed repairs (``strict``)."""
    for r in repairs_of(json.loads((d / MANIFEST_NAME).read_text())):
        if r.kind in parsers.STRICT_REFUSES:
            raise UserError(f"{r.message()}; --strict refuses repaired input (without it: repaired and reported)")


def ingest(name: str, data_dir: str | Path | None = None, *, progress: bool | None = None, strict: bool = False,
           **params: object) -> Path:
    """Make sure the canonical Parquet of ``name`` is in the cache; return its folder.

    ``params`` are the generator options for ``synthetic`` (rejected for other datasets).
    ``progress``: show progress bars (None: only on a terminal). ``strict``: refuse raw files
    that need a repair (a byte-order mark, blank lines, a truncated last line, duplicate rows)
    instead of repairing them and recording the repairs in the manifest.
    """
    out = _ingest(name, data_dir, progress=progress, strict=strict, **params)
    if strict:
        _check_strict(out)
    return out


def _ingest(name: str, data_dir: str | Path | None, *, progress: bool | None, strict: bool, **params: object) -> Path:
    spec = get_dataset(name)
    if spec.format == "synthetic":
        if data_dir is not None:
            raise UserError("synthetic: data is generated, --data-dir does not apply")
        cfg = SyntheticConfig.from_params(**params)
        key = _hash_json({"dataset": name, "parser": PARSER_VERSION, "generator": cfg.as_dict()})
        srcs: list[Source] = []
        origin: dict = {"origin": "generated"}
    else:
        if params:
            raise UserError(f"{name}: unexpected option(s) {', '.join(sorted(params))} (generator options apply to synthetic only)")
        if data_dir is None:
            cached = already_ingested(name)
            if cached is not None:
                return cached
        cfg = None
        srcs, origin = resolve_sources(spec, data_dir, progress=progress)
        key = _input_key(spec, srcs)
    out = cache_dir() / "interactions" / f"{name}-{key[:16]}"
    if (out / MANIFEST_NAME).is_file() and (out / PARQUET_NAME).is_file():
        return out

    with atomic_path(out, is_dir=True) as tmp:
        stats = _Stats(spec.integer_ids)
        report = parsers.ParseReport(strict=strict)
        if cfg is not None:
            source = {"origin": "generated", "digest": key, "generator": cfg.as_dict()}
            tables: Iterator[pa.Table] = iter([generate(cfg)])
            schema = parsers.INT_SCHEMA
            bar = None
        else:
            source = _source_record(spec, srcs, origin)
            schema = parsers.schema_for(spec.format)
            bar = _progress_bar(sum(_source_bytes(s) for s in srcs), f"parse {name}", progress)
            tables = parsers.parse(spec.format, srcs, progress=bar.update, report=report)
        try:
            with pq.ParquetWriter(tmp / PARQUET_NAME, schema) as writer:
                for t in tables:
                    t = t.select(schema.names).cast(schema)
                    stats.add(t)
                    writer.write_table(t, row_group_size=parsers.BATCH_ROWS)
            n_dup = stats.duplicates()
            if n_dup and cfg is None:
                label = srcs[0].display if len(srcs) == 1 else f"{name} ({len(srcs)} files)"
                report.add(label, "duplicates", None, n_dup)
        except UserError:
            if origin.get("origin") == "download":
                for s in srcs:  # a download that cannot be parsed is removed, not reused
                    s.path.unlink(missing_ok=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        if cfg is None:
            source["repairs"] = [r.as_dict() for r in report.repairs]
        manifest = {
            "dataset": name,
            "format": spec.format,
            "parser_version": PARSER_VERSION,
            "key": key[:16],
            "source": source,
            "has_timestamps": spec.has_timestamps,
            "time_resolution": spec.time_resolution,
            "columns": schema.names,
            **stats.summary(),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out


def already_ingested(name: str) -> Path | None:
    """The newest complete ingested copy of ``name`` in the cache, whatever its source (None: none).

    Lets every data command find a dataset fetched once (from a download or ``--data-dir``)
    without being given ``--data-dir`` again; an explicit ``--data-dir`` still ingests that copy.
    """
    root = cache_dir() / "interactions"
    done = [d for d in root.glob(f"{name}-*") if (d / MANIFEST_NAME).is_file() and (d / PARQUET_NAME).is_file()]
    if not done:
        return None
    return max(done, key=lambda d: (d / MANIFEST_NAME).stat().st_mtime)


def interactions_manifest(name: str, data_dir: str | Path | None = None, **params: object) -> dict:
    """The manifest of ``name``'s canonical interactions (ingesting them first if needed)."""
    return json.loads((ingest(name, data_dir, **params) / MANIFEST_NAME).read_text())


def load_interactions(name: str, data_dir: str | Path | None = None, **params: object) -> pd.DataFrame:
    """The interactions of ``name`` as a DataFrame in raw file order.

    Columns ``user``, ``item`` (raw ids: int64, or categorical strings for MSD), ``value``
    (float32 rating or play count) and ``timestamp`` (int64 Unix seconds UTC; absent for MSD).
    ``params`` are the synthetic generator's options (:class:`SyntheticConfig` fields).
    """
    progress = params.pop("progress", None)
    strict = bool(params.pop("strict", False))
    d = ingest(name, data_dir, progress=progress, strict=strict, **params)  # type: ignore[arg-type]
    spec = get_dataset(name)
    table = pq.read_table(d / PARQUET_NAME, read_dictionary=None if spec.integer_ids else ["user", "item"])
    return table.to_pandas()
