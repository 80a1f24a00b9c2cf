"""Building a trace: data -> model -> histories -> schedule -> prefix embeddings -> sorted Arrow file.

:func:`build_trace` is the whole pipeline behind ``simcache build-trace`` (prepare the dataset,
train or reuse a model unless one is given, embed, write). :func:`write_trace_for` is its core on
objects already in memory (prepared data, raw interactions, a model), which the tests use.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recvae import __version__
from recvae.errors import UserError
from recvae.model import RecVAE
from recvae.trace.history import CLOCKS, SPLIT_NAMES, Histories, build_histories, check_against_prepared
from recvae.trace.prefix import PrefixBatch, PrefixEmbedder
from recvae.trace.schedule import Schedule, schedule_many
from recvae.trace.writer import TraceColumns, global_order, write_trace
from recvae.training import resolve_device

log = logging.getLogger(__name__)

#: Format identifier and version recorded in the metadata (bump on incompatible changes).
TRACE_FORMAT = "simcache-trace"
TRACE_FORMAT_VERSION = 1
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


def default_trace_path(dataset: str, checkpoint_sha: str, dim: int, topk: int, users_tag: str | None,
                       schedule: Schedule, clock: str) -> Path:
    """``traces/<dataset>_<model sha[:8]>_d<dim>_k<topk>[_<users>][_<schedule>][_file-order].arrow``."""
    parts = [dataset, checkpoint_sha[:8] or "model", f"d{dim}", f"k{topk}"]
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
    model: RecVAE,
    out: str | Path | None = None,
    dataset: str | None = None,
    checkpoint_sha: str = "",
    model_info: dict | None = None,
    schedule: Schedule = Schedule(),
    topk: int | None = 100,
    users: object = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    clock: str = "time",
    check: bool = True,
    progress: bool = True,
    chunk_rows: int | None = None,
    batch_rows: int | None = None,
    workers: int | None = None,
) -> BuildStats:
    """Build and write the trace of ``model`` over ``interactions`` restricted as ``prepared`` says.

    ``chunk_rows``, ``batch_rows`` and ``workers`` tune :class:`PrefixEmbedder` (None: its defaults).
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
    if model.cfg.n_items != prepared.n_items:
        raise UserError(
            f"the model has {model.cfg.n_items} input items but the prepared data has {prepared.n_items}; "
            "was it trained on another dataset?"
        )
    k = int(topk or 0)
    if k < 0 or k > prepared.n_items:
        raise UserError(f"--topk must be between 0 and the number of items ({prepared.n_items}), got {k}")
    dev = resolve_device(str(device))

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
    order = global_order(stamp, owner, seq)
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m, dtype=np.int64)

    dim = model.cfg.latent_dim
    embedding = np.empty((m, dim), dtype=np.float32)
    top = np.empty((m, k), dtype=np.int32) if k else None
    model.eval()
    if dev.type != "cpu":
        model.to(dev)
    tuning = {"chunk_rows": chunk_rows, "batch_rows": batch_rows, "workers": workers}
    embedder = PrefixEmbedder(model, topk=k, device=dev, **{n: v for n, v in tuning.items() if v is not None})
    batch = PrefixBatch(hist.items, hist.offsets, owner, lengths)
    lap("schedule")
    t_embed = time.perf_counter()
    bar = _progress(m, progress, f"embedding {dataset} prefixes")
    try:
        done = 0
        for lo, hi, mu, tk in embedder.iter_chunks(batch):
            embedding[position[lo:hi]] = mu
            if top is not None:
                top[position[lo:hi]] = tk
            if bar is not None:
                bar.update(hi - done)
            done = hi
    finally:
        if bar is not None:
            bar.close()
    seconds_embed = time.perf_counter() - t_embed
    lap("embed")

    cols = TraceColumns(
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
        "format": TRACE_FORMAT,
        "format_version": TRACE_FORMAT_VERSION,
        "package_version": __version__,
        "dataset": dataset,
        "preprocessing": params,
        "source": manifest.get("source"),
        "vocabulary_fingerprint": prepared.vocabulary_fingerprint(),
        "n_vocabulary_items": int(prepared.n_items),
        "model": {
            "checkpoint_sha256": checkpoint_sha,
            "config": model.cfg.to_dict(),
            **({k2: v for k2, v in (model_info or {}).items()}),
        },
        "embedding": "encoder mean (mu), dropout off, float32",
        "dim": int(dim),
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
    path = Path(out) if out is not None else default_trace_path(
        dataset, checkpoint_sha, dim, k, users_tag, schedule, clock
    )
    write_trace(path, cols, meta)
    lap("write")
    return BuildStats(
        path=path, rows=m, users=n_users, dim=dim, topk=k, seconds_embed=seconds_embed,
        seconds_total=time.perf_counter() - t0, device=str(dev), timings=timings,
    )


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


def build_trace(
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
) -> Path:
    """Build the trace of ``dataset`` and return its path.

    Prepares the dataset (cached), loads the checkpoint ``model`` or, without it, trains one with
    the dataset's defaults (or reuses a cached one that matches), embeds every scheduled prefix
    and writes the time-sorted Arrow file to ``out`` (default: a descriptive name under
    ``traces/``). ``prepare_params`` go to :func:`recvae.data.prepare` and
    :func:`recvae.data.load_interactions` (e.g. the synthetic generator's ``n_users``);
    ``train_overrides`` to :meth:`recvae.training.TrainConfig.for_dataset`.
    """
    return build_trace_stats(
        dataset, data_dir=data_dir, model=model, out=out, min_history=min_history,
        initial_fraction=initial_fraction, step=step, topk=topk, users=users, device=device,
        seed=seed, clock=clock, progress=progress, prepare_params=prepare_params,
        train_overrides=train_overrides,
    ).path


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
) -> BuildStats:
    """:func:`build_trace`, returning the :class:`BuildStats` (rows, timings) as well."""
    from recvae import data as rdata

    t0 = time.perf_counter()
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

    from recvae.checkpoint import load_model

    if model is None:
        from recvae.training import TrainConfig, train_or_reuse

        overrides = {"seed": seed, "device": str(dev), **(train_overrides or {})}
        config = TrainConfig.for_dataset(dataset, **overrides)
        log.info("no --model given: training (or reusing) a %s model", dataset)
        model_path = train_or_reuse(prepared, config, progress=progress)
    else:
        model_path = Path(model)
        if not model_path.exists():
            raise UserError(f"{model_path}: no such checkpoint")
    net, info = load_model(model_path, device=str(dev), expect=prepared)
    model_info = {k: info[k] for k in ("epoch", "best_score") if k in info}
    t_model = time.perf_counter()
    stats = write_trace_for(
        prepared=prepared,
        interactions=interactions,
        model=net,
        out=out,
        dataset=dataset,
        checkpoint_sha=str(info.get("sha256", "")),
        model_info=model_info,
        schedule=schedule,
        topk=topk,
        users=users,
        device=dev,
        seed=seed,
        clock=clock,
        progress=progress,
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
