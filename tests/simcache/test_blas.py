"""OpenBLAS kernel choice for FAISS: from the CPU's flags, never over the user's own setting."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from simcache.blas import choose_openblas_kernels, cpu_flags, kernels_for

AVX512 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512dq avx512vl avx512cd\n"
AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_kernels_follow_the_flags():
    assert kernels_for(cpu_flags(AVX512)) == "SkylakeX"
    assert kernels_for(cpu_flags(AVX2)) == "Haswell"
    assert kernels_for(cpu_flags("flags : fpu sse2 avx\n")) is None
    assert kernels_for(cpu_flags("no flags line")) is None


def test_sets_the_variable_only_when_the_user_has_not():
    env: dict = {}
    assert choose_openblas_kernels(env, AVX2) == "Haswell" and env == {"OPENBLAS_CORETYPE": "Haswell"}
    env = {"OPENBLAS_CORETYPE": "Zen"}
    assert choose_openblas_kernels(env, AVX512) == "Zen" and env["OPENBLAS_CORETYPE"] == "Zen"
    env = {"SIMCACHE_OPENBLAS_CORETYPE": "keep"}
    choose_openblas_kernels(env, AVX512)
    assert "OPENBLAS_CORETYPE" not in env
    env = {}
    assert choose_openblas_kernels(env, "flags : sse2\n") is None and env == {}


def test_faiss_gets_the_chosen_kernels_when_simcache_is_imported_first():
    """In a fresh process: FAISS's bundled OpenBLAS reports the kernels chosen from this CPU's flags."""
    expected = kernels_for(cpu_flags())
    if expected is None:
        pytest.skip("this CPU has neither AVX2 nor AVX-512: OpenBLAS's own choice is kept")
    code = ("import simcache, faiss; from threadpoolctl import threadpool_info; "
            "print(sorted({str(i.get('architecture')) for i in threadpool_info() if i.get('internal_api') == 'openblas'}))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "SIMCACHE_OPENBLAS_CORETYPE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    kernels = ast.literal_eval(out)
    if kernels == ["None"]:
        pytest.skip("threadpoolctl does not report OpenBLAS's kernels here")
    assert kernels == [expected], kernels
