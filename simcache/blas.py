"""Pick OpenBLAS's CPU kernels for FAISS before FAISS is loaded.

The OpenBLAS that the faiss-cpu wheel bundles (0.3.15) does not recognise recent CPUs by model
number and then falls back to its generic SSE3 kernels (``Prescott``), which makes every FAISS
search several times slower; newer OpenBLAS builds (numpy's) pick the right kernels on the same
CPU from its feature flags. OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when it is loaded, so
:func:`choose_openblas_kernels` runs when :mod:`simcache` is imported: it sets the variable from
the CPU's flags (AVX-512 -> ``SkylakeX``, AVX2 + FMA -> ``Haswell``) unless the user has set it
(any value, including an empty one, is kept) or ``SIMCACHE_OPENBLAS_CORETYPE=keep`` asks to leave
OpenBLAS alone. Results do not change, only speed (``python -m benchmarks.replay_threads``
reports the kernels each OpenBLAS of the process uses).
"""

from __future__ import annotations

import os
from pathlib import Path

#: flags that each kernel set needs, best first
_KERNELS = (("SkylakeX", {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}), ("Haswell", {"avx2", "fma"}))


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def kernels_for(flags: set[str]) -> str | None:
    """The OpenBLAS core type whose kernels the flags allow, or None (leave OpenBLAS's choice)."""
    for name, needed in _KERNELS:
        if needed <= flags:
            return name
    return None


def choose_openblas_kernels(environ: os._Environ | dict = os.environ, cpuinfo: str | None = None) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` for this process (and its children) when the user has not; return it."""
    if "OPENBLAS_CORETYPE" in environ or environ.get("SIMCACHE_OPENBLAS_CORETYPE") == "keep":
        return environ.get("OPENBLAS_CORETYPE")
    name = kernels_for(cpu_flags(cpuinfo))
    if name is not None:
        environ["OPENBLAS_CORETYPE"] = name
    return name
