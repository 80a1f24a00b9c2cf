"""The compiled engine loaded from numba's on-disk cache, whichever process compiled its parts.

A cached function that calls a ``parallel=True`` one could crash (a call through a null pointer)
when loaded from the cache, if another process had compiled and cached the parallel callee first
(numba issue 8578): the block products' two-thread variant was such a callee. The steps below
reproduce that order in fresh processes with a cache folder of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

#: compiles (and caches) the block products alone, as a test of that kernel does
PRODUCTS_ALONE = """
import numpy as np
from simcache.cache import kernels as K
counters = np.zeros(K.N_COUNTERS, np.int64)
counters[K.N_USED] = 45
panels = K.slot_panels(np.ones((60, 24), np.float32), 45, 16)
for parallel in (True, False):
    K.block_products(np.ones((40, 24), np.float32), 16, 29, parallel, panels, counters, K.scan_scratch(60, 16))
"""

#: a replay through the compiled block engine; prints its hit count
REPLAY = """
import numpy as np
from simcache.cache import replay
x = np.random.default_rng(0).standard_normal((3000, 24)).astype(np.float32)
print(int((replay(x, policy="lru", capacity=300, radius=5.0, threads=1).outcome > 0).sum()))
"""


def test_a_replay_runs_from_a_cache_whose_parts_another_process_compiled(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(REPO)}
    hits = []
    for step, code in enumerate((PRODUCTS_ALONE, REPLAY, REPLAY)):
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"step {step} exited with {done.returncode}: {done.stderr[-2000:]}"
        if code is REPLAY:
            hits.append(int(done.stdout.split()[-1]))
    assert hits[0] == hits[1] > 0
    assert any((tmp_path / "numba").rglob("*.nbc"))  # the second replay did load from this cache
