"""Building a trace: data -> model -> histories -> schedule -> prefix embeddings -> sorted Arrow file.

:func:`build_trace` is the whole pipeline behind ``simcache build-trace`` (prepare the dataset,
train or reuse a model unless one is given, embed, write). :func:`write_trace_for` is its core on
objects already in memory (prepared data, raw interactions, a :class:`~recvae.trace.encoder.TraceEncoder`),
which the tests use. The builder knows nothing about the model beyond that interface; it writes
the trace (:mod:`recvae.trace.format`) and, when the encoder has one, the item catalogue beside
it (:mod:`recvae.trace.catalogue`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recvae import __version__
from recvae.errors import UserError
from recvae.outputs import check_output
from recvae.trace import format as tf
from recvae.trace.catalogue import Catalogue, catalogue_bytes, write_catalogue
from recvae.trace.encoder import TraceEncoder
from recvae.trace.history import CLOCKS, SPLIT_NAMES, Histories, build_histories, check_against_prepared
from recvae.trace.prefix import PrefixBatch
from recvae.trace.schedule import Schedule, schedule_many
from recvae.training import resolve_device

log = logging.getLogger(__name__)

DEFAULT_TRACE_DIR = Path("traces")

_NO_TIME_MESSAGE = (
    "{name} has no timestamps, so there is no real order of each user's interactions to replay. "
    "Pass --clock file-order to use the position of each row in the raw file as a synthetic clock "
    "(documented in traces/README.md), knowing that the resulting order is not time."
)


@dataclass
class BuildStats:
    """What a build did, for the CLI's summary line and the benchmark."""

    path: Path
    rows: int
    users: int
    dim: int
    topk: int
    seconds_embed: float  # prefix embeddings + top-k
    seconds_total: float  # everything from loading the data to the renamed file
    device: str
    timings: dict = field(default_factory=dict)  # seconds per stage, in order
    catalogue: Path | None = None  # the item catalogue written beside the trace, if any

    @property
    def embeddings_per_second(self) -> float:
        return self.rows / self.seconds_embed if self.seconds_embed > 0 else math.inf


def select_users(hist: Histories, users: object, seed: int) -> tuple[np.ndarray, str | None]:
    """Indices of the users to keep and a short tag for the default file name (None: everyone).

    ``users`` may be None / "all"; split names ("train", "validation", "test", comma-separated or
    a list); an int N (a seeded random sample of N users); or a sequence of raw user ids.
    """
    n = hist.n_users
    if users is None or (isinstance(users, str) and users.strip() in ("", "all")):
        return np.arange(n, dtype=np.int64), None
    if isinstance(users, (int, np.integer)) and not isinstance(users, bool):
        k = int(users)
        if k < 1:
            raise UserError(f"--users: a sample size must be >= 1, got {k}")
        k = min(k, n)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64), f"sample{k}"
    parts = [p.strip() for p in users.split(",")] if isinstance(users, str) else [str(u) for u in users]
    parts = [p for p in parts if p]
    if parts and all(p in SPLIT_NAMES for p in parts):
        codes = [SPLIT_NAMES.index(p) for p in parts]
        keep = np.flatnonzero(np.isin(hist.split, codes)).astype(np.int64)
        return keep, "-".join(p for p in SPLIT_NAMES if p in parts)
    index = pd.Index(hist.users.astype(str))
    pos = index.get_indexer(pd.Index(parts))
    if (pos < 0).any():
        missing = [p for p, i in zip(parts, pos) if i < 0]
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(
            f"--users: {len(missing)} user id(s) not in the prepared data ({shown}); give raw ids, "
            f"split names ({', '.join(SPLIT_NAMES)}) or a sample size"
        )
    return np.unique(pos).astype(np.int64), f"users{len(set(parts))}"


def trace_bytes_estimate(rows: int, dim: int, topk: int, catalogue_items: int = 0) -> int:
    """An upper estimate of a trace's size on disk (float32 embeddings, int32 top-k, about 64 bytes of
    ids, timestamps and offsets per row) plus its catalogue's, for the free-space check."""
    return int(rows * (4 * dim + 4 * topk + 64) + catalogue_items * (4 * dim + 64) + (1 << 16))


def default_trace_path(dataset: str, checkpoint_sha: str, dim: int, topk: int, users_tag: str | None,
                       schedule: Schedule, clock: str, model_type: str = "recvae") -> Path:
    """``traces/<dataset>[_<model type>]_<model sha[:8]>_d<dim>_k<topk>[_<users>][_<schedule>][_file-order].arrow``
    (the model type is named for every model but RecVAE)."""
    parts = [dataset, *([model_type] if model_type != "recvae" else []), checkpoint_sha[:8] or "model", f"d{dim}",
             f"k{topk}"]
    if users_tag:
        parts.append(users_tag)
    if schedule != Schedule():
        parts.append(f"h{schedule.min_history}-f{schedule.initial_fraction:g}-s{schedule.step}")
    if clock != "time":
        parts.append(clock)
    return DEFAULT_TRACE_DIR / ("_".join(parts) + ".arrow")


def write_trace_for(
    *,
    prepared,
    interactions: pd.DataFrame,
    encoder: TraceEncoder,
    out: str | Path | None = None,
    dataset: str | None = None,
    schedule: Schedule = Schedule(),
    topk: int | None = 100,
    users: object = None,
    seed: int = 0,
    clock: str = "time",
    check: bool = True,
    progress: bool = True,
    catalogue: bool = True,
) -> BuildStats:
    """Build and write the trace of ``encoder`` over ``interactions`` restricted as ``prepared`` says.

    With ``catalogue`` (and an encoder that provides one) the item catalogue is written beside
    the trace (:func:`recvae.trace.format.catalogue_path`), after it, and the trace's metadata
    links to it; without, the trace is exactly what it was before catalogues existed.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    clock_t = [t0]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock_t[0]
        clock_t[0] = now
    manifest = dict(getattr(prepared, "manifest", {}) or {})
    dataset = dataset or str(manifest.get("dataset", "dataset"))
    params = dict(manifest.get("params", {}))
    threshold = params.get("threshold")
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    if clock == "time" and (manifest.get("has_timestamps") is False or "timestamp" not in interactions.columns):
        raise UserError(_NO_TIME_MESSAGE.format(name=dataset))
    if encoder.n_items != prepared.n_items:
        raise UserError(
            f"the model has {encoder.n_items} input items but the prepared data has {prepared.n_items}; "
            "was it trained on another dataset?"
        )
    k = int(topk or 0)
    if k < 0 or k > prepared.n_items:
        raise UserError(f"--topk must be between 0 and the number of items ({prepared.n_items}), got {k}")
    if k and not encoder.supports_topk:
        raise UserError(f"a {encoder.model_type} model gives no top-k lists; pass --topk 0")
    description = encoder.description()

    hist = build_histories(
        interactions,
        items=prepared.items,
        train_users=prepared.train_users,
        val_users=prepared.val_users,
        test_users=prepared.test_users,
        threshold=threshold,
        clock=clock,
    )
    lap("histories")
    if check:
        check_against_prepared(hist, prepared)
        lap("check")
    keep, users_tag = select_users(hist, users, seed)
    hist = hist.subset(keep)

    # the schedule: embedding rows grouped by user, then their place in the time-sorted file
    owner, lengths = schedule_many(hist.counts, schedule)
    m = int(owner.size)
    stamp = hist.times[hist.offsets[owner] + lengths - 1] if m else np.zeros(0, np.int64)
    starts = np.r_[0, np.cumsum(np.bincount(owner, minlength=hist.n_users))[:-1]] if m else np.zeros(0, np.int64)
    seq = (np.arange(m) - starts[owner]).astype(np.int32) if m else np.zeros(0, np.int32)
    order = tf.global_order(stamp, owner, seq)
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m, dtype=np.int64)

    dim = int(encoder.dim)
    path = Path(out) if out is not None else default_trace_path(
        dataset, description.checkpoint_sha256, dim, k, users_tag, schedule, clock, encoder.model_type or "recvae"
    )
    # before the embedding work: room for the rows (and a catalogue of the items, when one is written)
    check_output(path, kind="file", estimate_bytes=trace_bytes_estimate(m, dim, k, prepared.n_items if catalogue else 0))
    embedding = np.empty((m, dim), dtype=np.float32)
    top = np.empty((m, k), dtype=np.int32) if k else None
    batch = PrefixBatch(hist.items, hist.offsets, owner, lengths)
    encoder.bind(hist, interactions, prepared.items)
    encoder.prepare(k)
    lap("schedule")
    t_embed = time.perf_counter()
    bar = _progress(m, progress, f"embedding {dataset} prefixes")
    try:
        done = 0
        for lo, hi, mu, tk in encoder.iter_chunks(batch, k):
            _check_chunk(encoder, lo, hi, done, mu, tk, dim, k)
            embedding[position[lo:hi]] = mu
            if top is not None:
                top[position[lo:hi]] = tk
            if bar is not None:
                bar.update(hi - done)
            done = hi
    finally:
        if bar is not None:
            bar.close()
    if done != m:
        raise ValueError(f"{type(encoder).__name__}.iter_chunks stopped at row {done} of {m}")
    seconds_embed = time.perf_counter() - t_embed
    lap("embed")

    cols = tf.TraceColumns(
        timestamp=stamp[order],
        user_code=owner[order],
        user_labels=hist.users.astype(str),
        seq=seq[order],
        n_items=lengths[order].astype(np.int32),
        split_code=hist.split[owner[order]],
        embedding=embedding,
        topk=top,
    )
    n_users = int(np.unique(owner).size)
    by_split = {name: int((hist.split[np.unique(owner)] == i).sum()) for i, name in enumerate(SPLIT_NAMES)}
    meta = {
        "format": tf.TRACE_FORMAT,
        "format_version": tf.TRACE_FORMAT_VERSION,
        "package_version": __version__,
        "dataset": dataset,
        "preprocessing": params,
        "source": manifest.get("source"),
        "vocabulary_fingerprint": prepared.vocabulary_fingerprint(),
        "n_vocabulary_items": int(prepared.n_items),
        "model": tf.model_metadata(
            encoder.model_type, {"checkpoint_sha256": description.checkpoint_sha256, **description.details}
        ),
        "embedding": description.embedding,
        "dim": dim,
        "topk": k or None,
        "topk_excludes_prefix_items": True,
        "schedule": {
            **schedule.to_dict(),
            "first_prefix": "max(1, floor(initial_fraction * n)) for n >= min_history, else n",
        },
        "clock": clock,
        "order": "timestamp, then user (ascending raw id), then seq; within a user, interactions by "
                 "timestamp then raw file position",
        "users": {"selection": users_tag or "all", "count": n_users, "by_split": by_split},
        "rows": m,
        "seed": int(seed),
        "items": _json_ids(prepared.items),
    }
    items_catalogue = _catalogue(encoder, prepared, dataset, dim) if catalogue else None
    blob = catalogue_bytes(items_catalogue) if items_catalogue is not None else None
    if blob is not None:
        meta["catalogue"] = {
            "file": "<trace stem>" + tf.CATALOGUE_SUFFIX,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "vocabulary_sha256": items_catalogue.metadata["vocabulary_sha256"],
            "n_items": len(items_catalogue),
            "dim": items_catalogue.dim,
            "bias": items_catalogue.bias is not None,
        }
    tf.write_trace(path, cols, meta)
    cat_path = write_catalogue(tf.catalogue_path(path), items_catalogue) if items_catalogue is not None else None
    lap("write")
    return BuildStats(
        path=path, rows=m, users=n_users, dim=dim, topk=k, seconds_embed=seconds_embed,
        seconds_total=time.perf_counter() - t0, device=encoder.device, timings=timings, catalogue=cat_path,
    )


def _check_chunk(encoder: TraceEncoder, lo: int, hi: int, done: int, mu: np.ndarray, tk: np.ndarray | None,
                 dim: int, k: int) -> None:
    """An encoder's chunk must continue where the last one ended, have the promised shapes and finite
    embeddings (a NaN or inf would poison every distance the simulator computes; a UserError, as the
    model, not the code, is at fault)."""
    name = type(encoder).__name__
    if lo != done or hi <= lo:
        raise ValueError(f"{name}.iter_chunks yielded rows {lo}:{hi} after row {done}")
    if mu.shape != (hi - lo, dim) or mu.dtype != np.float32:
        raise ValueError(f"{name} gave embeddings {mu.dtype}{mu.shape} for rows {lo}:{hi}, expected float32 "
                         f"({hi - lo}, {dim})")
    if k and (tk is None or tk.shape != (hi - lo, k)):
        raise ValueError(f"{name} gave top-k lists of shape {getattr(tk, 'shape', None)}, expected ({hi - lo}, {k})")
    bad = ~np.isfinite(mu).all(axis=1)
    if bad.any():
        row = lo + int(np.argmax(bad))
        raise UserError(f"the {encoder.model_type} model gave a non-finite embedding (NaN or inf) for row {row} of "
                        f"the trace (schedule order), and {int(bad.sum())} of rows {lo}:{hi} in all; nothing written")


def _catalogue(encoder: TraceEncoder, prepared, dataset: str, dim: int) -> Catalogue | None:
    """The encoder's item catalogue with the metadata that ties it to the trace (None: it has none);
    non-finite item vectors or biases (the item side of every score) are a UserError."""
    cat = encoder.catalogue(np.asarray(prepared.items))
    if cat is None:
        return None
    if len(cat) != prepared.n_items or cat.dim != dim:
        raise ValueError(f"{type(encoder).__name__}.catalogue has {len(cat)} items of dimension {cat.dim}, "
                         f"expected {prepared.n_items} of dimension {dim}")
    for part, values in (("vectors", cat.vectors), ("biases", cat.bias)):
        if values is not None and not np.isfinite(values).all():
            item = int(np.argmax(~np.isfinite(np.asarray(values).reshape(len(cat), -1)).all(axis=1)))
            raise UserError(f"the {encoder.model_type} model's item {part} are not finite (NaN or inf) for item "
                            f"{cat.ids[item]} (its scores would be too); nothing written")
    description = encoder.description()
    cat.metadata = {
        "model": encoder.model_type,
        "checkpoint_sha256": description.checkpoint_sha256,
        **cat.metadata,
        "kind": "catalogue",
        "format": tf.TRACE_FORMAT,
        "format_version": tf.TRACE_FORMAT_VERSION,
        "package_version": __version__,
        "dataset": dataset,
        "vocabulary_sha256": tf.vocabulary_sha256(prepared.items),
        "vocabulary_fingerprint": prepared.vocabulary_fingerprint(),
        "embedding": description.embedding,
        "dim": cat.dim,
        "n_items": len(cat),
    }
    return cat


def _json_ids(ids: np.ndarray) -> list:
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return [int(v) for v in arr.tolist()]
    return [str(v) for v in arr.tolist()]


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="emb", unit_scale=True, leave=False)


def build_trace(dataset: str, **options: object) -> Path:
    """Build the trace of ``dataset`` and return its path; ``options`` as for :func:`build_trace_stats`."""
    return build_trace_stats(dataset, **options).path


def build_trace_stats(
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    model: str | Path | None = None,
    out: str | Path | None = None,
    min_history: int = 50,
    initial_fraction: float = 0.8,
    step: int = 10,
    topk: int | None = 100,
    users: object = None,
    device: str = "auto",
    seed: int = 0,
    clock: str = "time",
    progress: bool = True,
    prepare_params: dict | None = None,
    train_overrides: dict | None = None,
    encoder: TraceEncoder | None = None,
    catalogue: bool = True,
    model_type: str = "recvae",
) -> BuildStats:
    """Build the trace of ``dataset``; return the :class:`BuildStats` (path, rows, timings).

    Prepares the dataset (cached), loads the checkpoint ``model`` or, without it, trains one with
    the dataset's defaults (or reuses a cached one that matches), embeds every scheduled prefix
    and writes the time-sorted Arrow file to ``out`` (default: a descriptive name under
    ``traces/``). ``prepare_params`` go to :func:`recvae.data.prepare` and
    :func:`recvae.data.load_interactions` (e.g. the synthetic generator's ``n_users``);
    ``train_overrides`` to :meth:`recvae.training.TrainConfig.for_dataset`. ``encoder``: embed
    with this model instead (then ``model`` must be None and nothing is trained). ``catalogue``:
    also write the model's item catalogue beside the trace. ``model_type``: ``recvae`` or a name
    in :mod:`recvae.models.registry` (``model`` is then a checkpoint of that model, or one is
    trained or reused with its defaults).
    """
    from recvae import data as rdata

    t0 = time.perf_counter()
    if encoder is not None and model is not None:
        raise UserError("give either a checkpoint (--model) or an encoder, not both")
    schedule = Schedule(min_history=min_history, initial_fraction=initial_fraction, step=step)
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    spec = rdata.get_dataset(dataset)
    if clock == "time" and not getattr(spec, "has_timestamps", True):
        raise UserError(_NO_TIME_MESSAGE.format(name=dataset))
    dev = resolve_device(str(device))
    params = dict(prepare_params or {})
    prepared = rdata.prepare(dataset, data_dir, progress=progress, **params)
    generator_params = {k: v for k, v in params.items() if k not in _PREPROCESSING_KEYS}
    interactions = rdata.load_interactions(dataset, data_dir, **generator_params)
    t_data = time.perf_counter()

    if encoder is None and model_type != "recvae":
        from recvae.models.encoder import load_model_encoder

        encoder = load_model_encoder(model_type, prepared, model, data_dir=data_dir, device=str(device), seed=seed,
                                     progress=progress)
    elif encoder is None:
        from recvae.trace.recvae_encoder import load_encoder

        encoder = load_encoder(prepared, dataset, model, device=dev, seed=seed, train_overrides=train_overrides,
                               progress=progress)
    t_model = time.perf_counter()
    stats = write_trace_for(
        prepared=prepared,
        interactions=interactions,
        encoder=encoder,
        out=out,
        dataset=dataset,
        schedule=schedule,
        topk=topk,
        users=users,
        seed=seed,
        clock=clock,
        progress=progress,
        catalogue=catalogue,
    )
    stats.timings = {"data": t_data - t0, "model": t_model - t_data, **stats.timings}
    stats.seconds_total = time.perf_counter() - t0
    return stats


#: ``prepare`` options that are preprocessing parameters, not generator options.
_PREPROCESSING_KEYS = frozenset({"heldout_users", "min_items_per_user", "min_users_per_item", "threshold"})


def trace_rows_for(counts: Sequence[int], schedule: Schedule = Schedule()) -> int:
    """How many embeddings a set of users with these interaction counts produces."""
    owner, _ = schedule_many(np.asarray(counts, dtype=np.int64), schedule)
    return int(owner.size)
