"""The one interface every recommender implements, and the adapter the trace builder embeds through.

A model is a :class:`Recommender` subclass with a config dataclass (a :class:`ModelConfig`) and one
entry in :mod:`recvae.models.registry`. The shared pieces (training loop with checkpoints and
resume: :mod:`recvae.models.trainer`; top-N and RMSE evaluation: :mod:`recvae.models.evaluation`;
checkpoint files: :mod:`recvae.models.checkpoint`) work through this interface only.

What a model provides:

* training: :meth:`~Recommender.start` (fresh parameters from the data), :meth:`~Recommender.train_epoch`,
  and for exact resume :meth:`~Recommender.training_state` / :meth:`~Recommender.load_training_state`
  (optimisers; the trainer saves the global RNGs and the model's own generator);
* persistence: :meth:`~Recommender.state_dict` / :meth:`~Recommender.load_state_dict` (tensors and
  plain values only, so that checkpoints load with ``torch.load(weights_only=True)``);
* inference on histories given as CSR rows over the vocabulary (binary, or ratings for explicit
  models): :meth:`~Recommender.embed` (the user embeddings, computed directly) and
  :meth:`~Recommender.score` (scores of every item, higher = better);
* traces: :meth:`~Recommender.embed_prefixes`, the embeddings of many prefixes of users'
  histories computed incrementally (equal to :meth:`embed` of each prefix; tested for every model),
  :meth:`~Recommender.scores_from_embeddings` for top-k lists and optionally an item
  :meth:`~Recommender.catalogue` in the users' space. :meth:`Recommender.prefix_encoder` bundles
  them as a :class:`PrefixEncoder`, the object a model-neutral trace builder needs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recvae.errors import UserError
from recvae.trace.catalogue import Catalogue
from recvae.trace.encoder import EncoderDescription, TraceEncoder
from recvae.trace.prefix import NO_ITEM, PrefixBatch, concat_ranges


@dataclass
class ModelConfig:
    """Options every model has; subclasses add their hyper-parameters (and may change defaults)."""

    epochs: int = 10  # training epochs (passes / ALS sweeps)
    seed: int = 0  # every random choice of the run derives from it
    device: str = "cpu"  # auto, cpu, cuda, cuda:N (models that cannot use CUDA say so)
    eval_batch_size: int = 1000  # users per evaluation batch

    def validate(self) -> None:
        if self.epochs < 1:
            raise UserError(f"epochs must be >= 1, got {self.epochs}")
        if self.eval_batch_size < 1:
            raise UserError(f"eval batch size must be >= 1, got {self.eval_batch_size}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise UserError(f"{f.name} must be finite, got {v}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def with_options(cls, base: dict | None = None, **options: object) -> "ModelConfig":
        """``base`` (e.g. a stored config) updated with ``options`` (None = keep); unknown names are a UserError.

        String values (from ``--param key=value``) are converted to the field's type.
        """
        by_name = {f.name: f for f in fields(cls)}
        unknown = sorted(set(options) - set(by_name))
        if unknown:
            raise UserError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(by_name))}")
        defaults = cls()  # every field has a default
        kw = dict(base or {})
        for k, v in options.items():
            if v is not None:
                kw[k] = _convert(k, v, getattr(defaults, k))
        cfg = cls(**{k: v for k, v in kw.items() if k in by_name})
        cfg.validate()
        return cfg

    def identity(self) -> dict:
        """The fields that determine the trained model (all but where and how fast it is evaluated)."""
        d = self.to_dict()
        d.pop("device")
        d.pop("eval_batch_size")
        return d


def _convert(name: str, value: object, default: object) -> object:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(type(default[0])(p) for p in value.split(",")) if default else tuple(value.split(","))
    except ValueError:
        raise UserError(f"option {name}: cannot read {value!r} as {type(default).__name__}") from None
    return value


@dataclass
class HistoryContext:
    """What some models need beside the items of a :class:`PrefixBatch`.

    ``users``: raw user id of every history (aligned with ``batch.offsets``; the metadata model's
    demographics). ``values``: the rating of every interaction (aligned with ``batch.items``; the
    explicit-feedback models). None when not available.
    """

    users: np.ndarray | None = None
    values: np.ndarray | None = None


class PrefixEncoder(TraceEncoder):
    """A trained model as the trace builder sees it (:class:`~recvae.trace.encoder.TraceEncoder`):
    embeds prefixes of histories incrementally, gives top-k lists outside the prefix and its item
    catalogue. :meth:`bind` builds the :class:`HistoryContext` (ratings, raw user ids) from the
    histories the builder is about to embed, for the models that need it.
    """

    def __init__(self, model: "Recommender", context: HistoryContext | None = None, *,
                 checkpoint_sha256: str = "") -> None:  # fmt: skip
        self.model = model
        self.context = context or HistoryContext()
        self.checkpoint_sha256 = checkpoint_sha256
        self.model_type = model.name

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @property
    def n_items(self) -> int:
        return int(self.model.n_items)

    def describe(self) -> dict:
        return {"type": self.model.name, "config": self.model.config.to_dict(), "embedding": self.model.embedding_description}

    def description(self) -> EncoderDescription:
        return EncoderDescription(embedding=self.model.embedding_description, checkpoint_sha256=self.checkpoint_sha256,
                                  details={"config": self.model.config.to_dict()})  # fmt: skip

    def bind(self, histories, interactions, items) -> None:
        from recvae.models.data import history_context

        needs = type(self.model).needs
        if needs:
            self.context = history_context(histories, interactions, items, needs)
        if self.model.explicit and self.context.values is None:
            raise UserError(f"model '{self.model.name}' embeds rated histories: the trace needs the ratings of the interactions")

    def embed(self, batch: PrefixBatch) -> np.ndarray:
        return self.embed_prefixes(batch)

    def embed_prefixes(self, batch: PrefixBatch) -> np.ndarray:
        return np.ascontiguousarray(self.model.embed_prefixes(batch, self.context), dtype=np.float32)

    def top_items(self, batch: PrefixBatch, embeddings: np.ndarray, k: int) -> np.ndarray:
        return self.topk(batch, k, embeddings)

    def topk(self, batch: PrefixBatch, k: int, embeddings: np.ndarray | None = None) -> np.ndarray:
        """(m, k) int32 vocabulary indices by decreasing score, prefix items excluded."""
        z = self.embed_prefixes(batch) if embeddings is None else embeddings
        scores = torch.as_tensor(self.model.scores_from_embeddings(z, batch, self.context), dtype=torch.float32).clone()
        rows = np.repeat(np.arange(len(batch)), batch.lengths)
        cols = batch.items[concat_ranges(batch.starts(), batch.lengths)]
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -math.inf
        k = min(int(k), scores.shape[1])
        vals, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
        idx[torch.isinf(vals) & (vals < 0)] = NO_ITEM
        return idx.numpy().astype(np.int32)

    def catalogue(self, item_ids: np.ndarray | None = None) -> Catalogue | None:
        return self.model.catalogue()


class Recommender(ABC):
    """Base class of every model (see the module docstring for the contract)."""

    #: Registry name (``--model NAME``).
    name: ClassVar[str]
    #: One line for ``simcache models`` / reports.
    title: ClassVar[str]
    #: The config dataclass.
    Config: ClassVar[type[ModelConfig]]
    #: What the model needs beyond the binary split: {"ratings"} (explicit feedback), {"side"} (metadata).
    needs: ClassVar[frozenset[str]] = frozenset()
    #: State entries whose shapes come from the training data, not the config (loading checks only that they are there).
    data_shaped_entries: ClassVar[frozenset[str]] = frozenset()
    #: What the user embedding is, for the trace metadata.
    embedding_description: ClassVar[str] = ""
    #: Computed with numpy on the CPU (``--device auto`` then means the CPU; ``cuda`` is refused).
    cpu_only: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, n_items: int, items: np.ndarray | None = None) -> None:
        self.config = config
        self.n_items = int(n_items)
        self.items = np.arange(n_items) if items is None else np.asarray(items)
        self.device = torch.device("cpu")

    @property
    def explicit(self) -> bool:
        """Whether the model fits ratings (then it has an RMSE)."""
        return "ratings" in self.needs

    # -- training ------------------------------------------------------------------------------
    @abstractmethod
    def start(self, data, rng: np.random.Generator) -> None:
        """Fresh parameters for ``data`` (a :class:`~recvae.models.data.ModelData`), before epoch 1."""

    @abstractmethod
    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        """One epoch; returns its losses (finite floats)."""

    def training_state(self) -> dict:
        """What besides the parameters and the RNGs a resumed run needs (optimiser states)."""
        return {}

    def load_training_state(self, state: dict) -> None:
        """Restore :meth:`training_state`."""

    def to(self, device: torch.device | str) -> "Recommender":
        """Move to ``device`` (models on the CPU only keep ``cpu``)."""
        self.device = torch.device(device)
        return self

    # -- persistence ---------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict:
        """Parameters (tensors) and derived tables: everything inference needs."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    # -- inference -----------------------------------------------------------------------------
    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of the user embedding."""

    @abstractmethod
    def embed(self, rows: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """(n, dim) float32 embeddings of the histories ``rows`` (n, n_items), computed directly."""

    @abstractmethod
    def score(self, rows: sp.csr_matrix) -> "np.ndarray | torch.Tensor":
        """(n, n_items) scores of every item for the histories ``rows`` (higher = recommended first)."""

    @abstractmethod
    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        """(m, dim) embeddings of the prefixes in ``batch``, incrementally; equal to :meth:`embed`."""

    @abstractmethod
    def scores_from_embeddings(self, z: np.ndarray, batch: PrefixBatch, context: HistoryContext) -> "np.ndarray | torch.Tensor":
        """(m, n_items) item scores of the users embedded as ``z`` (the prefixes of ``batch``)."""

    def catalogue(self) -> Catalogue | None:
        """Items in the users' space (None: the model has none)."""
        return None

    def predict(self, rows: sp.csr_matrix, targets: sp.csr_matrix) -> np.ndarray:
        """Predicted ratings at the entries of ``targets`` (row order of ``targets.data``), users given by ``rows``."""
        raise UserError(f"model '{self.name}' does not predict ratings")

    def save(self, path, prepared, **record: object) -> None:
        """Write this model as a ``best`` checkpoint for data ``prepared`` (see :mod:`recvae.models.checkpoint`)."""
        from recvae.checkpoint import dataset_record
        from recvae.models import checkpoint

        payload = {"kind": "best", "model_type": self.name, "config": self.config.to_dict(),
                   "dataset": dataset_record(prepared), "epoch": 0, "best_epoch": None, "best_score": None,
                   "history": [], **record, "state": self.state_dict()}
        checkpoint.save(path, payload)

    @classmethod
    def load(cls, path, device: str = "cpu") -> "Recommender":
        """The model in checkpoint ``path`` (a UserError when it holds another model)."""
        from recvae.models import checkpoint

        return checkpoint.load(path, expect_type=cls.name, device=device)[0]

    def prefix_encoder(self, context: HistoryContext | None = None, *, checkpoint_sha256: str = "") -> PrefixEncoder:
        """This model as the trace builder sees it (the builder calls its ``bind`` with the
        histories; give ``context`` to embed prefixes directly)."""
        return PrefixEncoder(self, context, checkpoint_sha256=checkpoint_sha256)


def model_device(cls: type[Recommender], requested: str) -> torch.device:
    """The device model class ``cls`` runs on when ``requested`` (``auto``, ``cpu``, ``cuda[:N]``)."""
    from recvae.training import resolve_device

    dev = resolve_device(requested, check_available=requested != "auto")
    if cls.cpu_only and dev.type == "cuda":
        if requested == "auto":
            return torch.device("cpu")
        raise UserError(f"model '{cls.name}' runs on the CPU only; use --device cpu or auto")
    return dev


def prefix_rows(batch: PrefixBatch, values: np.ndarray | None = None, n_items: int | None = None) -> sp.csr_matrix:
    """The prefixes of ``batch`` as CSR rows (ones, or ``values``): the input of a direct :meth:`Recommender.embed`."""
    pos = concat_ranges(batch.starts(), batch.lengths)
    data = np.ones(pos.size, np.float32) if values is None else np.asarray(values, np.float32)[pos]
    indptr = np.r_[0, np.cumsum(batch.lengths)].astype(np.int64)
    n = int(n_items if n_items is not None else batch.items.max() + 1)
    m = sp.csr_matrix((data, batch.items[pos], indptr), shape=(len(batch), n))
    m.sort_indices()
    return m


def csr_parts(rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, lengths, items, values) of the rows of a CSR matrix, the form :mod:`recvae.models.linalg` takes."""
    rows = sp.csr_matrix(rows)
    return rows.indptr[:-1].astype(np.int64), np.diff(rows.indptr).astype(np.int64), rows.indices.astype(np.int64), rows.data
