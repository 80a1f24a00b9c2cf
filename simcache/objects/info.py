"""``catalogue info``: size, dimension, norms, and the distance scales between requests and objects.

The scales help choose ``c_f`` (an object fetched costs ``c_d + c_f``; a cached object at ``c_d``
replaces a fetched one when ``c_d < c_d(server's object) + c_f``, so ``c_f`` compares with the
gaps between a request's 1st and k-th nearest objects and beyond) and ``radius``. For each metric
the report gives quantiles, over a sample of requests, of the distance ``d`` to the 1st and k-th
nearest object (``ip``: the score gap to the best object, so the 1st is 0) and to the
``4k``-th; without requests, the same among objects (each sampled object's nearest *other*
objects), which describes the catalogue's own spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simcache.objects.catalogue import Catalogue
from simcache.objects.config import ObjectReplayConfig
from simcache.objects.engine import nearest_lists
from simcache.objects.metrics import prepare_catalogue

QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


@dataclass
class CatalogueInfo:
    """Numbers of ``catalogue info`` (:meth:`to_dict` for JSON, :meth:`format` for text)."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def format(self) -> str:
        d = self.data
        lines = [
            f"catalogue {d['path']}",
            f"  objects              {d['objects']:,}",
            f"  dimension            {d['dim']}",
            f"  bias                 {'yes' if d['bias'] else 'no'}",
            f"  kind                 {d['metadata'].get('kind', '(generic vector file)')}",
            "  norm quantiles       " + _q(d["norms"]),
        ]
        if d["bias"]:
            lines.append("  bias quantiles       " + _q(d["bias_quantiles"]))
        src = d["scales"]["between"]
        lines.append(f"  distance scales ({src}; quantiles {', '.join(f'q{int(p * 100)}' for p in QUANTILES)}):")
        for metric, ranks in d["scales"]["metrics"].items():
            for rank, qs in ranks.items():
                lines.append(f"    {metric:<7} {rank:<12} " + _q(qs))
        return "\n".join(lines)


def _q(qs: dict[str, float]) -> str:
    return "  ".join(f"{v:.4g}" for v in qs.values())


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {f"q{int(p * 100)}": float(v) for p, v in zip(QUANTILES, np.quantile(x, QUANTILES))}


def catalogue_info(cat: Catalogue, requests: np.ndarray | None = None, *, k: int = 10, sample: int = 1000,
                   seed: int = 0, path: str | None = None) -> CatalogueInfo:  # fmt: skip
    """The numbers for a loaded catalogue and, optionally, request vectors of its dimension."""
    from recvae.errors import UserError

    n = len(cat)
    rng = np.random.default_rng(seed)
    norms = np.linalg.norm(cat.vectors.astype(np.float64), axis=1)
    data: dict[str, Any] = {
        "path": None if path is None else str(path),
        "objects": n,
        "dim": cat.dim,
        "bias": cat.bias is not None,
        "metadata": cat.metadata,
        "norms": _quantiles(norms),
    }
    if cat.bias is not None:
        data["bias_quantiles"] = _quantiles(cat.bias.astype(np.float64))
    if requests is not None:
        requests = np.asarray(requests)
        if requests.ndim != 2 or requests.shape[1] != cat.dim:
            raise UserError(f"requests have shape {requests.shape}, the catalogue dimension {cat.dim}")
        pick = np.sort(rng.choice(len(requests), size=min(sample, len(requests)), replace=False))
        x, skip, between = np.asarray(requests[pick]), 0, f"{len(pick):,} sampled requests to objects"
    else:
        pick = np.sort(rng.choice(n, size=min(sample, n), replace=False))
        x, skip, between = cat.vectors[pick], 1, f"{len(pick):,} sampled objects to other objects"
    k = max(1, min(k, n - skip))
    deep = min(4 * k, n - skip)
    metrics: dict[str, Any] = {}
    for metric in ("l2", "cosine", "ip"):
        if metric == "cosine" and ((norms == 0).any() or (np.linalg.norm(x, axis=1) == 0).any()):
            continue
        prepared = prepare_catalogue(cat.vectors, cat.bias, metric)
        _, h = nearest_lists(x, prepared, ObjectReplayConfig(metric=metric, capacity=1, k=1), deep + skip)
        h = h[:, skip:]
        if metric == "ip" and skip:
            h = h - h[:, :1]
        metrics[metric] = {"1st": _quantiles(h[:, 0]), f"{k}th": _quantiles(h[:, k - 1]),
                           f"{deep}th": _quantiles(h[:, deep - 1])}  # fmt: skip
    data["scales"] = {"between": between, "k": k, "metrics": metrics}
    return CatalogueInfo(data)
