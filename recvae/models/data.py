"""What the models train on: the shared protocol's binary split, explicit ratings, item/user metadata.

* :class:`ModelData` always holds the Mult-VAE strong-generalization split (``prepared``), on which
  every model's top-N metrics are computed (fold-in -> held-out of the validation/test users).
* :class:`RatingsData` (explicit-feedback models): the ratings of the training users over the
  vocabulary (*all* their ratings, low ones included), split per user for RMSE so that every
  training user appears on both sides: users with >= 5 ratings hold out ``floor(0.2 n)`` of them
  (seeded), the rest is what the models fit. The fold-in rows of validation/test users carry the
  ratings of their fold-in items (the protocol's positives, so ratings above the threshold): an
  explicit model folds a user in from exactly the items the binary models see.
* :class:`SideInfo` (the metadata model): MovieLens-100K demographics and movie genres / years.

Datasets without ratings: ``planted`` is binary by construction; MSD's values are play counts,
which are not ratings (no scale, no negative feedback), so the explicit models refuse both with a
:class:`~recvae.errors.UserError` rather than fitting squared error to counts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recvae.data.prepared import PreparedData
from recvae.errors import UserError

#: Seed and fraction of the per-user RMSE split of the training users' ratings.
RMSE_SPLIT_SEED = 98765
RMSE_HELDOUT_FRACTION = 0.2
RMSE_MIN_RATINGS = 5


@dataclass
class RatingsData:
    """Explicit ratings aligned with a :class:`PreparedData` (columns = its vocabulary)."""

    fit: sp.csr_matrix  # (n_train_users, n_items) ratings the models are fitted on
    heldout: sp.csr_matrix  # (n_train_users, n_items) the RMSE test ratings of the same users
    val_tr: sp.csr_matrix  # validation fold-in rows (prepared.val_tr's entries) with their ratings
    test_tr: sp.csr_matrix  # test fold-in rows with their ratings

    @property
    def mean(self) -> float:
        return float(self.fit.data.mean()) if self.fit.nnz else 0.0

    def fold_in(self, split: str) -> sp.csr_matrix:
        if split == "test":
            return self.test_tr
        if split in ("validation", "val"):
            return self.val_tr
        raise UserError(f"unknown split '{split}'; use test or validation")


@dataclass
class SideInfo:
    """User and item features from a dataset's metadata files (MovieLens-100K)."""

    user_ids: np.ndarray  # (n_users,) raw ids
    age: np.ndarray  # (n_users,) int years
    gender: np.ndarray  # (n_users,) str "M" / "F"
    occupation: np.ndarray  # (n_users,) str
    item_ids: np.ndarray  # (n_items,) raw ids
    genres: np.ndarray  # (n_items, n_genres) float32 0/1
    genre_names: tuple[str, ...]
    year: np.ndarray  # (n_items,) float64 release year, NaN when unknown


@dataclass
class ModelData:
    """Everything a model may need; ``ratings`` / ``side`` are None when the dataset has none."""

    prepared: PreparedData
    ratings: RatingsData | None = None
    side: SideInfo | None = None

    @property
    def name(self) -> str:
        return str(self.prepared.manifest.get("dataset", "data"))

    @property
    def n_items(self) -> int:
        return self.prepared.n_items

    def require_ratings(self, model: str) -> RatingsData:
        if self.ratings is None:
            raise UserError(no_ratings_message(self.name, model))
        return self.ratings

    def require_side(self, model: str) -> SideInfo:
        if self.side is None:
            raise UserError(
                f"model '{model}' needs user and item metadata (MovieLens-100K's u.user and u.item); "
                f"dataset '{self.name}' has none"
            )
        return self.side


def no_ratings_message(dataset: str, model: str) -> str:
    why = {
        "msd": "its values are play counts, not ratings",
        "planted": "it is binary by construction",
    }.get(dataset, "it has no explicit ratings")
    return (
        f"model '{model}' fits explicit ratings, but dataset '{dataset}' cannot provide them ({why}); "
        "use a binary-feedback model (multvae, implicit-als, recvae) instead"
    )


def has_ratings(dataset: str) -> bool:
    """Whether a named dataset's values are ratings (it is binarised at a threshold)."""
    from recvae.data.registry import DATASET_NAMES, get_dataset

    return dataset in DATASET_NAMES and get_dataset(dataset).threshold is not None


def rating_matrix(interactions: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
    """(len(users), len(items)) ratings of the given raw users on the given raw items.

    Rows whose user or item is not listed are dropped; a repeated (user, item) pair keeps its first
    row in file order.
    """
    u = pd.Index(np.asarray(users)).get_indexer(interactions["user"].to_numpy())
    i = pd.Index(np.asarray(items)).get_indexer(interactions["item"].to_numpy())
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    v = interactions["value"].to_numpy(dtype=np.float32)[keep]
    key = u.astype(np.int64) * len(items) + i
    _, first = np.unique(key, return_index=True)
    m = sp.csr_matrix((v[first], (u[first], i[first])), shape=(len(users), len(items)), dtype=np.float32)
    m.sort_indices()
    return m


def _with_values(pattern: sp.csr_matrix, values: sp.csr_matrix, what: str) -> sp.csr_matrix:
    """``pattern``'s entries carrying the values of ``values`` (every entry must have one)."""
    pattern = sp.csr_matrix(pattern)
    out = values.multiply(pattern > 0).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    if out.nnz != pattern.nnz:
        raise UserError(f"{what}: {pattern.nnz - out.nnz} protocol interactions have no rating in the raw data")
    return out


def split_ratings(m: sp.csr_matrix, seed: int = RMSE_SPLIT_SEED) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(fit, heldout): per row with ``n >= 5`` ratings, ``floor(0.2 n)`` random ones held out."""
    m = sp.csr_matrix(m)
    counts = np.diff(m.indptr)
    rng = np.random.default_rng(seed)
    key = rng.random(m.nnz)
    row = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((key, row))  # rows in order, random order within a row
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    n_out = np.where(counts >= RMSE_MIN_RATINGS, np.floor(RMSE_HELDOUT_FRACTION * counts).astype(np.int64), 0)
    held = rank < n_out[row]
    coo = m.tocoo()
    parts = []
    for mask in (~held, held):
        part = sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=m.shape, dtype=np.float32)
        part.sort_indices()
        parts.append(part)
    return parts[0], parts[1]


def build_ratings(prepared: PreparedData, interactions: pd.DataFrame) -> RatingsData:
    """The explicit ratings of ``prepared``'s users (see the module docstring)."""
    items = prepared.items
    train = rating_matrix(interactions, prepared.train_users, items)
    fit, heldout = split_ratings(train)
    val = rating_matrix(interactions, prepared.val_users, items)
    test = rating_matrix(interactions, prepared.test_users, items)
    return RatingsData(
        fit=fit,
        heldout=heldout,
        val_tr=_with_values(prepared.val_tr, val, "validation fold-in"),
        test_tr=_with_values(prepared.test_tr, test, "test fold-in"),
    )


# ----------------------------------------------------------------------------------------------
# MovieLens-100K metadata

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)


def _read_member(dataset: str, data_dir: str | Path | None, name: str) -> str:
    """Text of metadata file ``name`` beside the ratings file of ``dataset`` (folder or zip)."""
    from recvae.data.interactions import resolve_sources
    from recvae.data.parsers import Source
    from recvae.data.registry import get_dataset

    src = resolve_sources(get_dataset(dataset), data_dir)[0][0]
    if src.member is not None:
        other = Source(src.path, str(PurePosixPath(src.member).with_name(name)))
    else:
        other = Source(src.path.with_name(name))
    with other.open() as fh:
        return fh.read().decode("latin-1")


def load_side_info(dataset: str, data_dir: str | Path | None = None) -> SideInfo:
    """MovieLens-100K's ``u.user`` and ``u.item`` (other datasets: UserError)."""
    if dataset != "ml100k":
        raise UserError(f"user/item metadata is available for ml100k only, not '{dataset}'")
    users = pd.read_csv(io.StringIO(_read_member(dataset, data_dir, "u.user")), sep="|", header=None,
                        names=["user", "age", "gender", "occupation", "zip"])
    cols = ["item", "title", "date", "video", "url", *ML100K_GENRES]
    movies = pd.read_csv(io.StringIO(_read_member(dataset, data_dir, "u.item")), sep="|", header=None, names=cols)
    year = pd.to_datetime(movies["date"], format="%d-%b-%Y", errors="coerce").dt.year.to_numpy(dtype=np.float64)
    return SideInfo(
        user_ids=users["user"].to_numpy(np.int64),
        age=users["age"].to_numpy(np.int64),
        gender=users["gender"].astype(str).to_numpy(),
        occupation=users["occupation"].astype(str).to_numpy(),
        item_ids=movies["item"].to_numpy(np.int64),
        genres=movies[list(ML100K_GENRES)].to_numpy(np.float32),
        genre_names=ML100K_GENRES,
        year=year,
    )


# ----------------------------------------------------------------------------------------------
# Trace histories


def history_context(hist, interactions: pd.DataFrame, items: np.ndarray, needs: frozenset[str] = frozenset({"ratings"})):
    """The :class:`~recvae.models.base.HistoryContext` of trace histories for a model that ``needs`` it.

    ``hist`` is a :class:`recvae.trace.history.Histories` built from ``interactions`` over the
    vocabulary ``items``: ``users`` are its raw user ids, ``values`` the rating of every entry of
    ``hist.items`` (first row of a repeated pair, as :func:`rating_matrix`), or None when the model
    does not fit ratings.
    """
    from recvae.models.base import HistoryContext

    values = None
    if "ratings" in needs:
        table = rating_matrix(interactions, hist.users, items)
        owner = np.repeat(np.arange(hist.n_users), np.diff(hist.offsets))
        values = np.asarray(table[owner, hist.items]).ravel().astype(np.float32)
        if values.size and (values == 0).any():
            raise UserError("some history entries have no rating in the interactions")
    return HistoryContext(users=np.asarray(hist.users), values=values)


# ----------------------------------------------------------------------------------------------
# Loading


def interactions_of(prepared: PreparedData, data_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The raw interactions ``prepared`` was made from (None for data built in memory, e.g. planted)."""
    from recvae.data import DATASET_NAMES, load_interactions

    manifest = prepared.manifest
    name = manifest.get("dataset")
    if name not in DATASET_NAMES:
        return None
    if data_dir is None:
        src = manifest.get("source") or {}
        if src.get("origin") == "local" and src.get("root") and Path(src["root"]).exists():
            data_dir = src["root"]
    return load_interactions(name, data_dir, **(manifest.get("generator") or {}))


def model_data(prepared: PreparedData, needs: frozenset[str] = frozenset(), data_dir: str | Path | None = None,
               model: str = "model") -> ModelData:
    """``prepared`` with the ratings and/or metadata a model ``needs`` ({"ratings", "side"})."""
    data = ModelData(prepared)
    name = data.name
    if "ratings" in needs:
        if not has_ratings(name):
            raise UserError(no_ratings_message(name, model))
        interactions = interactions_of(prepared, data_dir)
        if interactions is None:
            raise UserError(no_ratings_message(name, model))
        data.ratings = build_ratings(prepared, interactions)
    if "side" in needs:
        if name != "ml100k":
            data.require_side(model)
        src = prepared.manifest.get("source") or {}
        root = data_dir or (src.get("root") if src.get("origin") == "local" else None)
        data.side = load_side_info(name, root)
    return data
