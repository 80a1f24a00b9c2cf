"""Packed slot panels and their products: the block products' matrix kernel (float32).

The block engine for flat CPU caches needs, per block of requests, their products with the
entries cached at block start and with the block's own earlier requests
(:func:`~simcache.cache.kernels.rowscan.block_products`). A BLAS GEMM packs its operands into
panels on every call, so the cache, which is the same from one block to the next but for the
slots written in between, would be repacked once per block: for a small cache, a large share of
the replay. Here the cache is kept packed instead: column ``c`` of the
*panels* (one flat float32 array) is a vector, stored as ``panels[(c // PANEL) * PANEL * d + k *
PANEL + c % PANEL] = y_c[k]``, so each panel holds ``PANEL`` vectors interleaved component by
component. The sequential pass repacks a slot when it writes it (:func:`pack_column`); each block
packs its own requests after the used slots, to give the block's Gram columns.

The products (:func:`tile_products`) are register tiles of ``ROWS`` requests by one panel: per
component ``k``, the panel's ``PANEL`` values are loaded as vectors and each request's ``q[k]``
is broadcast and multiplied into them, ``ROWS * PANEL`` running sums held in registers; the
requests are read where they lie (row-major), so they need no packing. The vectors are as wide as
the target's registers (:func:`target_vector_width`), a panel two vectors. The sums add the terms in
increasing ``k`` (fused where the CPU has FMA); like any float32 dot product they are within the
error bound the sequential pass allows (:mod:`~simcache.cache.kernels.distances`), and only select
candidates for the exact float64 re-check, so the logs do not depend on them. They are numba
intrinsics, emitted as LLVM vector code: written as a numba loop, the running sums would live in
an array in memory. ``python -m benchmarks.replay_threads`` measures the replay they serve.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils, codegen, config
from numba.extending import intrinsic

from simcache.cache.kernels.vectorir import I64, splat, vector_ptr


def target_vector_width() -> int:
    """float32 lanes of the vector registers numba compiles for: 16 where the target has
    AVX-512 (32 registers of 16), else 8 (AVX: 16 registers of 8; other CPUs split such vectors).
    A tile of 16-lane vectors on an AVX2 CPU would not fit its registers."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    return 16 if "+avx512f" in features.split(",") else 8


_WIDTH = target_vector_width()
#: cache vectors (columns) per panel, two SIMD vectors wide; and requests per tile
PANEL = 2 * _WIDTH
ROWS = 6
_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, _WIDTH)


def _fmuladd(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    """``a * b + c`` elementwise, fused where the CPU has FMA (``llvm.fmuladd``)."""
    fnty = ir.FunctionType(_VEC, [_VEC] * 3)
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fmuladd.v{_WIDTH}f32")
    return builder.call(fn, [a, b, c])


def _tile_codegen(vectors: int):
    """LLVM code of a tile over the panel's first ``vectors * _WIDTH`` columns."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        qa = context.make_array(sig.args[0])(context, builder, args[0])
        pa = context.make_array(sig.args[4])(context, builder, args[4])
        ga = context.make_array(sig.args[6])(context, builder, args[6])
        q_off, ldq, nrows, pan_off, g_off, ldg, k = (
            context.cast(builder, args[i], sig.args[i], types.int64) for i in (1, 2, 3, 5, 7, 8, 9))  # fmt: skip
        last = builder.sub(nrows, ir.Constant(I64, 1))
        rows = []  # the tile's request rows; those past nrows repeat the last (computed, not stored)
        for r in range(ROWS):
            rc = builder.select(builder.icmp_signed("<", ir.Constant(I64, r), nrows), ir.Constant(I64, r), last)
            rows.append(builder.gep(qa.data, [builder.add(q_off, builder.mul(rc, ldq))]))
        panel = builder.gep(pa.data, [pan_off])
        zero = ir.Constant(_VEC, [0.0] * _WIDTH)
        sums = [[cgutils.alloca_once_value(builder, zero) for _ in range(vectors)] for _ in range(ROWS)]
        with cgutils.for_range(builder, k) as loop:
            at = builder.mul(loop.index, ir.Constant(I64, PANEL))
            cols = [builder.load(vector_ptr(builder, panel, builder.add(at, ir.Constant(I64, v * _WIDTH)), _VEC),
                                 align=4) for v in range(vectors)]  # fmt: skip
            for r in range(ROWS):
                qk = splat(builder, builder.load(builder.gep(rows[r], [loop.index])), _VEC)
                for v in range(vectors):
                    builder.store(_fmuladd(builder, qk, cols[v], builder.load(sums[r][v])), sums[r][v])
        out = builder.gep(ga.data, [g_off])
        for r in range(ROWS):
            with builder.if_then(builder.icmp_signed("<", ir.Constant(I64, r), nrows)):
                row = builder.mul(ir.Constant(I64, r), ldg)
                for v in range(vectors):
                    ptr = vector_ptr(builder, out, builder.add(row, ir.Constant(I64, v * _WIDTH)), _VEC)
                    builder.store(builder.load(sums[r][v]), ptr, align=4)
        return context.get_dummy_value()

    return codegen


def _tile(vectors: int, doc: str):
    """The tile intrinsic over the panel's first ``vectors * _WIDTH`` columns."""

    def typer(typingctx, q, q_off, ldq, nrows, panels, pan_off, g, g_off, ldg, k):  # type: ignore[no-untyped-def]
        if not all(isinstance(t, types.Array) and t.dtype == types.float32 for t in (q, panels, g)):
            return None
        if not all(isinstance(t, types.Integer) for t in (q_off, ldq, nrows, pan_off, g_off, ldg, k)):
            return None
        return types.void(q, q_off, ldq, nrows, panels, pan_off, g, g_off, ldg, k), _tile_codegen(vectors)

    typer.__doc__ = doc
    return intrinsic(typer)


_TILE_DOC = (
    "``g[g_off + r * ldg + j] = sum_k q[q_off + r * ldq + k] * panel[k * PANEL + j]`` (flat element "
    "offsets from each array's first element; ``panel`` at ``pan_off``) for the rows ``r < nrows`` "
    "(1 to ROWS) and the panel columns ``j < {}``, over ``k`` components. Unchecked: the arrays must "
    "hold every element named (rows past ``nrows`` are not read)."
)
tile_full = _tile(2, _TILE_DOC.format("PANEL"))
tile_half = _tile(1, _TILE_DOC.format("PANEL / 2"))


@nb.njit(cache=True, inline="always")
def panel_floats(columns, d):
    """Length of a panels array of at least ``columns`` vectors of dimension ``d``."""
    return (columns + PANEL - 1) // PANEL * PANEL * d


@nb.njit(cache=True, inline="always")
def pack_column(panels, c, x):
    """Store vector ``x`` as column ``c`` of the panels."""
    d = x.shape[0]
    base = c // PANEL * PANEL * d + c % PANEL
    for k in range(d):
        panels[base + PANEL * k] = x[k]


@nb.njit(cache=True, inline="always")
def pack_columns(panels, c0, rows):
    """Store the rows of ``rows`` as columns ``c0, c0 + 1, ...`` of the panels."""
    for p in range(rows.shape[0]):
        pack_column(panels, c0 + p, rows[p])


@nb.njit(cache=True, inline="always")
def tile_products(qb, panels, g, n0, r0, r1):
    """Rows ``r0 .. r1 - 1`` of ``g[i, c] = qb[i] . column c``: of row ``i`` the columns
    ``c < n0 + i`` (the used slots, then the block's requests before it), computed ``ROWS`` rows at
    a time: each tile of rows covers the columns its last row needs, rounded up to half a panel
    (the columns after a row's own are computed too, never read). ``g`` must be as wide as the
    panels (``panel_floats(columns, 1)``); ``qb`` and ``g`` are row-major."""
    d = qb.shape[1]
    ldq = qb.strides[0] // 4
    ldg = g.strides[0] // 4
    for i in range(r0, r1, ROWS):
        nr = min(ROWS, r1 - i)
        need = n0 + i + nr - 1
        for c in range(0, need, PANEL):
            if need - c <= _WIDTH:
                tile_half(qb, i * ldq, ldq, nr, panels, c * d, g, i * ldg + c, ldg, d)
            else:
                tile_full(qb, i * ldq, ldq, nr, panels, c * d, g, i * ldg + c, ldg, d)
