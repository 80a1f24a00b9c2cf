"""GREEDY as a policy: the static reference. Before the first request the cache is loaded with the
greedy set fitted on the requests (all of them, or the first ``window``; see
:mod:`simcache.objects.greedy`); the content never changes afterwards."""

from __future__ import annotations

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.policies.base import Param
from simcache.objects.kernels import UPDATE_SIG
from simcache.objects.policies.base import ObjectPolicy, Setup


@nb.njit(UPDATE_SIG, cache=True)
def static_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                  q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """The content is fixed: nothing to do."""


class Greedy(ObjectPolicy):
    """Static cache of the lazy-greedy set (offline reference; (1 - 1/e) of the best static set)."""

    name = "greedy"
    summary = "static reference: C objects chosen by lazy greedy marginal gain over the requests (offline)"
    params = (
        Param("window", int, 0, "fit on the first WINDOW requests (0: all; the replay covers all)"),
        Param("candidates", int, 100, "nearest objects listed per request for the fit (>= k; see docs)"),
    )

    fit = None  # the GreedyFit, once initial_objects has run

    def check(self) -> None:
        if self.values["window"] < 0:
            raise UserError(f"greedy window must be >= 0, got {self.values['window']}")
        if self.values["candidates"] < self.k:
            raise UserError(f"greedy candidates must be >= k = {self.k}, got {self.values['candidates']}")

    @classmethod
    def kernel(cls):
        return static_update

    def initial_objects(self, setup: Setup) -> np.ndarray:
        from simcache.objects.engine import fit_static

        if setup.requests is None:
            raise UserError("greedy needs the requests as one (n, d) array (it fits on them before the replay)")
        window = self.values["window"] or len(setup.requests)
        self.fit = fit_static(setup.requests[:window], setup.catalogue, setup.config,
                              min(self.values["candidates"], setup.catalogue.size))  # fmt: skip
        return self.fit.objects

    def describe(self):
        out = dict(self.values)
        if self.fit is not None:
            out.update(fit_objective=self.fit.objective, fit_requests=self.fit.requests, fit_truncated=self.fit.truncated)
        return out
