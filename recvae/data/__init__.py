"""Datasets: registry, download, streaming parsers, synthetic generator, Mult-VAE preprocessing.

Public entry points:

* :func:`load_interactions` -- a dataset's interactions (user, item, value, timestamp) as a DataFrame.
* :func:`prepare` -- the Mult-VAE strong-generalization split as :class:`PreparedData` (cached).
* :func:`get_dataset` / :data:`DATASET_NAMES` -- the registry of named datasets.

Pipeline and cache layout (root: :func:`recvae.storage.cache_dir`, ``$SIMCACHE_CACHE_DIR``)::

    raw files (--data-dir) or downloads/<official archive>        download.py (pooch, checksums)
      -> interactions/<name>-<key>/interactions.parquet + manifest.json   parsers.py, interactions.py
      -> prepared/<name>-<key>/{train,val_tr,val_te,test_tr,test_te}.npz,
                               {items,train_users,val_users,test_users}.npy, manifest.json   preprocess.py

Every cache entry is written to a temporary folder and renamed into place when complete; any
error (bad input, checksum mismatch, interruption) leaves nothing behind. Module docstrings give
the details: ``interactions`` (what ``data_dir`` may point at), ``preprocess`` (the protocol,
stated step by step), ``synthetic`` (the generative story), ``registry`` (checksums, defaults).
"""

from recvae.data.interactions import ingest, interactions_manifest, load_interactions
from recvae.data.prepared import PreparedData
from recvae.data.preprocess import prepare
from recvae.data.registry import DATASET_NAMES, REGISTRY, DatasetSpec, dataset_names, get_dataset
from recvae.data.synthetic import SyntheticConfig

__all__ = [
    "DATASET_NAMES",
    "REGISTRY",
    "dataset_names",
    "DatasetSpec",
    "PreparedData",
    "SyntheticConfig",
    "get_dataset",
    "ingest",
    "interactions_manifest",
    "load_interactions",
    "prepare",
]
