"""Replay speed of the working tree against another git revision, measured in the same run.

A refactor must not slow the engine down. This checks out ``--base`` (default ``HEAD``) into a
temporary git worktree, then times the same replays with each tree's code, interleaved
(base, tree, base, tree, ...) in fresh processes, and reports the best time of each and their
ratio. The replays use one thread (``parallel=False``) unless ``--parallel`` is given, so that
the noise of a shared machine matters less. It writes ``benchmarks/results/compare_revisions.md``.

    python -m benchmarks.compare_revisions --base 4d67ccc [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from recvae.storage import atomic_path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: the grid (data, not code): capacities replayed with SIM-LRU over a synthetic d = 200 trace
FULL = {"n": 100_000, "dim": 200, "capacities": [100, 1_000, 10_000], "repeats": 3}
QUICK = {"n": 20_000, "dim": 200, "capacities": [100, 1_000, 10_000], "repeats": 2}

#: what each timing process runs (it imports the package found first on PYTHONPATH)
_CHILD = r"""
import json, sys, time
import numpy as np
from simcache.cache import replay
n, dim, capacity, parallel = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
try:  # trees with ReplayConfig choose threads with threads=; older ones with parallel=
    from simcache.cache.config import ReplayConfig
    kw = {} if parallel else ({"threads": 1} if "threads" in ReplayConfig.__dataclass_fields__ else {"parallel": False})
except ImportError:
    kw = {"parallel": parallel}
rng = np.random.default_rng(0)
centres = rng.standard_normal((20_000, dim), dtype=np.float32)
p = 1.0 / np.arange(1, 20_001) ** 1.1
x = centres[rng.choice(20_000, size=n, p=p / p.sum())] + 0.05 * rng.standard_normal((n, dim), dtype=np.float32)
replay(x[:2_000], policy="lru", capacity=capacity, radius=1.2, **kw)  # compile / load caches
start = time.perf_counter()
log = replay(x, policy="lru", capacity=capacity, radius=1.2, **kw)
print(json.dumps({"seconds": time.perf_counter() - start, "hits": int((log.outcome > 0).sum())}))
"""


def _time(tree: Path, n: int, dim: int, capacity: int, parallel: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(dim), str(capacity), "1" if parallel else "0"],
                         cwd=tree, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare against")
    parser.add_argument("--quick", action="store_true", help="fewer requests and repeats")
    parser.add_argument("--parallel", action="store_true", help="default threads instead of one")
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), rev], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
        try:
            for capacity in grid["capacities"]:
                best = {"base": float("inf"), "tree": float("inf")}
                hits = {}
                for _ in range(grid["repeats"]):
                    for label, tree in (("base", base), ("tree", REPO)):
                        r = _time(tree, grid["n"], grid["dim"], capacity, args.parallel)
                        best[label] = min(best[label], r["seconds"])
                        hits[label] = r["hits"]
                if hits["base"] != hits["tree"]:
                    raise SystemExit(f"C={capacity}: hit counts differ ({hits}): the trees do not compute the same")
                rows.append((capacity, best["base"], best["tree"], hits["tree"]))
                print(f"C={capacity:>6}: base {best['base']:.3f} s, tree {best['tree']:.3f} s, "
                      f"tree/base {best['tree'] / best['base']:.3f}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    lines = [
        "# Replay speed: working tree against a base revision (same run)",
        "",
        f"`python -m benchmarks.compare_revisions --base {args.base}{' --quick' if args.quick else ''}"
        f"{' --parallel' if args.parallel else ''}`: base `{rev}`, SIM-LRU, {grid['n']:,} synthetic requests "
        f"(d = {grid['dim']}), {'default threads' if args.parallel else 'one thread'}, best of "
        f"{grid['repeats']} interleaved runs each, in fresh processes. Equal hit counts are checked.",
        "",
        "| C | base (s) | tree (s) | tree / base | hits |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {c:,} | {b:.3f} | {t:.3f} | {t / b:.3f} | {h:,} |" for c, b, t, h in rows],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(RESULTS / "compare_revisions.md") as tmp_path:
        Path(tmp_path).write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'compare_revisions.md'}")


if __name__ == "__main__":
    main()
