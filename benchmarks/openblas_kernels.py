"""FAISS search speed with OpenBLAS's own kernel choice and with the one :mod:`simcache.blas` makes.

Each case runs in a fresh process (OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when it loads):
*OpenBLAS's choice*: ``SIMCACHE_OPENBLAS_CORETYPE=keep`` and no ``OPENBLAS_CORETYPE``; *simcache's
choice*: ``import simcache`` first, as the package does. The work: one FAISS thread, an
``IndexFlatL2`` of 1,000 x 200 float32 vectors searched (k = 1) by 20,000 queries, best of 5.
``python -m benchmarks.openblas_kernels`` writes ``benchmarks/results/openblas_kernels.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import REPO

RESULTS = Path(__file__).resolve().parent / "results"

CASE = """
import json, time
import numpy as np
import simcache, faiss
from threadpoolctl import threadpool_info
faiss.omp_set_num_threads(1)
rng = np.random.default_rng(0)
xb = rng.normal(size=(1000, 200)).astype("float32")
xq = rng.normal(size=(20000, 200)).astype("float32")
index = faiss.IndexFlatL2(200)
index.add(xb)
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    index.search(xq, 1)
    best = min(best, time.perf_counter() - t)
kernels = sorted({str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"
                  and "openblaso" in i["filepath"]})
print(json.dumps({"queries_per_second": len(xq) / best, "faiss_openblas_kernels": kernels}))
"""


def run_case(keep: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "SIMCACHE_OPENBLAS_CORETYPE")}
    if keep:
        env["SIMCACHE_OPENBLAS_CORETYPE"] = "keep"
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", CASE], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    from recvae.storage import atomic_path

    own, chosen = run_case(keep=True), run_case(keep=False)
    lines = [
        "## openblas_kernels: FAISS search speed by OpenBLAS kernel set",
        "",
        "One FAISS thread, `IndexFlatL2` of 1,000 x 200 searched by 20,000 queries (k = 1), best of 5, each case in "
        f"a fresh process; load average {os.getloadavg()[0]:.1f}. `python -m benchmarks.openblas_kernels`.",
        "",
        "| kernels chosen by | FAISS's OpenBLAS kernels | queries/s | ratio |",
        "|---|---|---:|---:|",
        f"| OpenBLAS (`SIMCACHE_OPENBLAS_CORETYPE=keep`) | {', '.join(own['faiss_openblas_kernels']) or '-'} | "
        f"{own['queries_per_second']:,.0f} | 1.00x |",
        f"| simcache (`import simcache` first) | {', '.join(chosen['faiss_openblas_kernels']) or '-'} | "
        f"{chosen['queries_per_second']:,.0f} | {chosen['queries_per_second'] / own['queries_per_second']:.2f}x |",
        "",
    ]
    with atomic_path(RESULTS / "openblas_kernels.md") as tmp:
        tmp.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
