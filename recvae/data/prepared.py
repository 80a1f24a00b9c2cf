"""The output of the Mult-VAE strong-generalization protocol, as every later stage consumes it.

Matrices are binary CSR over the training item vocabulary (columns = ``items`` order). Rows of
``train`` follow ``train_users``; rows of ``val_tr``/``val_te`` follow ``val_users``; rows of
``test_tr``/``test_te`` follow ``test_users``. User and item ids are the raw ids of the dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recvae.errors import UserError
from recvae.storage import atomic_path

_MATRICES = ("train", "val_tr", "val_te", "test_tr", "test_te")
_ID_ARRAYS = ("items", "train_users", "val_users", "test_users")


@dataclass
class PreparedData:
    """Training matrix, validation/test fold-in and held-out matrices, id maps and manifest."""

    train: sp.csr_matrix
    val_tr: sp.csr_matrix
    val_te: sp.csr_matrix
    test_tr: sp.csr_matrix
    test_te: sp.csr_matrix
    items: np.ndarray
    train_users: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray
    manifest: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    def vocabulary_fingerprint(self) -> str:
        """A short hash of the item vocabulary, recorded in checkpoints and traces."""
        import hashlib

        h = hashlib.sha256("\n".join(map(str, self.items.tolist())).encode())
        return h.hexdigest()[:16]

    def save(self, directory: str | Path) -> None:
        """Write to ``directory`` atomically (npz matrices, npy id arrays, manifest.json)."""
        with atomic_path(directory, is_dir=True) as tmp:
            for name in _MATRICES:
                sp.save_npz(tmp / f"{name}.npz", getattr(self, name).tocsr(), compressed=False)
            for name in _ID_ARRAYS:
                np.save(tmp / f"{name}.npy", np.asarray(getattr(self, name)), allow_pickle=False)
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> "PreparedData":
        """Read what :meth:`save` wrote."""
        d = Path(directory)
        if not (d / "manifest.json").is_file():
            raise UserError(f"{d}: not a prepared dataset (no manifest.json)")
        kw = {name: sp.load_npz(d / f"{name}.npz").tocsr() for name in _MATRICES}
        kw.update({name: np.load(d / f"{name}.npy", allow_pickle=False) for name in _ID_ARRAYS})
        return cls(manifest=json.loads((d / "manifest.json").read_text()), **kw)
