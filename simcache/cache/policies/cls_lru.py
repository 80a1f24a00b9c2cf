"""CLS-LRU (Pandey et al., WWW 2009): an entry stands for a cluster of past queries, and its key
(the cluster's representative) moves toward the requests it serves.

Lookup, hit rule and eviction are SIM-LRU's: a request within ``r`` of its nearest key y* is a
hit, y* moves to the most-recently-used position and no entry is inserted; a miss inserts the
request as a new one-member cluster (evicting the LRU entry when full). On every hit the request
joins y*'s cluster and the key is updated (``update``):

* ``mean`` (default): the key is the running mean of the requests the entry served, its first
  (inserting) request included: ``y <- y + (x - y) / (n + 1)`` with n members before x;
* ``step``: ``y <- y + rate (x - y)``, computed as ``(x - y) / (1 / rate)`` (an exponentially
  weighted mean that follows a drifting cluster);
* ``none``: the key stays: exactly SIM-LRU.

Keys are float32, updated in float64 per component; for ``cosine`` the moved key is
unit-normalised again (a normalised incremental mean). The answer served stays the entry's
original one (the inserting request's): the log's ``served`` is that request's index, so answer
quality is measured as for every other policy. The paper's own text could not be read here, so
the update rule is a parameter; the radius is not shrunk as the key moves (members served
earlier may end up farther than r from the moved key).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.signatures import INSERT_SIG, MOVE_SIG
from simcache.cache.policies.base import Example, Kernels, Param, Policy, decide_radius
from simcache.cache.policies.lru import link_front, list_tail, list_unlink, lru_touch

MEMBERS = 2  # meta column after the LRU list's PREV, NEXT: requests the entry has served, its first included
UPDATES = {"none": 0, "mean": 1, "step": 2}


@nb.njit(INSERT_SIG, cache=True)
def cls_insert(slot, t, meta, fmeta, glob):
    """A new one-member cluster at the MRU end."""
    link_front(slot, meta, glob)
    meta[slot, MEMBERS] = 1


@nb.njit(MOVE_SIG, cache=True)
def cls_move(slot, t, meta, fmeta, glob, fpar):
    """The request joins the cluster; the key moves by (x - y) / m with m from ``update``
    (fpar = [r, update code, 1 / rate])."""
    n = meta[slot, MEMBERS]
    meta[slot, MEMBERS] = n + 1
    kind = int(fpar[1])
    if kind == 1:
        return np.float64(n + 1)
    if kind == 2:
        return fpar[2]
    return 0.0


class ClsLRU(Policy):
    """CLS-LRU: SIM-LRU whose keys move toward the requests they serve (cluster representatives)."""

    name = "cls-lru"
    summary = "SIM-LRU whose entries are clusters: a hit moves the key toward the request"
    params = (
        Param("update", str, "mean", "key update on a hit: mean (running mean of the served requests), step "
              "(y += rate (x - y)), none (SIM-LRU)", tuple(UPDATES)),
        Param("rate", float, 0.5, "step size of update=step, in (0, 1]"),
    )
    defaults_note = ("update=mean: the key is the running mean of the requests the entry served (its first "
                     "included), a rule chosen here because the WWW 2009 paper's text could not be checked; "
                     "the radius is not shrunk; the served answer stays the inserting request's; update=none "
                     "is exactly SIM-LRU")
    #: (update=step is checked against the reference in tests/simcache/cache/test_cache_cls_lru.py)
    examples = (Example(), Example({"update": "none"}, hard_radius=True))
    meta_fields = 3
    glob_size = 2

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_radius, lru_touch, cls_insert, list_unlink, list_tail, cls_move)

    def rule_parameters(self) -> np.ndarray:
        rate = float(self.values["rate"])
        if not 0.0 < rate <= 1.0:
            raise UserError(f"cls-lru rate must be in (0, 1], got {rate}")
        return np.array([self.radius, UPDATES[self.values["update"]], 1.0 / rate], dtype=np.float64)
