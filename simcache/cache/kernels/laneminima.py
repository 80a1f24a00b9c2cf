"""The row scan's inner loop, emitted as vector code: approximations and their lane minima.

``lane_minima(row, qn, col_norm, n, keep, lo1, lo2)`` overwrites the products ``row[:n]`` by the
float32 approximations ``(qn + col_norm[c]) - 2 row[c]``, leaves in ``lo1`` (and, when
``keep == 2``, ``lo2``) the smallest (and second smallest) approximation of each of the
``SCAN_LANES`` lanes, column ``c`` in lane ``c % SCAN_LANES``, and returns the least of ``lo1``
(folded as a tree: with no NaN, the least value whatever the order): exactly the values, NaN rule
included (``a if a < m else m``), of the plain loop that
:func:`~simcache.cache.kernels.rowscan.row_smallest` documents and the tests keep. Emitted
directly, the 32 running minima are four vectors in registers; as a numba loop they live in
scratch arrays that LLVM must assume may alias the row it writes, so every step stored and
reloaded them. The last ``n % 32`` columns are read and written by masked loads and stores.
``lanes_at_most(lo1, limit)`` is the row selection's test of the lane minima, as one bit mask, and
``lowest_bit`` walks its set bits.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from simcache.cache.kernels.vectorir import (
    I32, I64, full_steps, masked_load, masked_store, splat, tail_masks, vector_ptr,
)  # fmt: skip

#: running minima, and the float32 vector width they are kept in
SCAN_LANES = 32
_WIDTH = 8
_GROUPS = SCAN_LANES // _WIDTH

_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, _WIDTH)
_ZEROS = ir.Constant(_VEC, [0.0] * _WIDTH)


def _smaller(builder: ir.IRBuilder, a: ir.Value, m: ir.Value) -> ir.Value:
    """``a if a < m else m`` elementwise (``m`` when either is NaN)."""
    return builder.select(builder.fcmp_ordered("<", a, m), a, m)


def _update(builder: ir.IRBuilder, a: ir.Value, lo1: ir.Value, lo2: ir.Value | None):
    """One column per lane into the lane minima (and second minima): the plain loop's update."""
    if lo2 is None:
        return _smaller(builder, a, lo1), None
    hi = builder.select(builder.fcmp_ordered(">", a, lo1), a, lo1)
    return _smaller(builder, a, lo1), _smaller(builder, hi, lo2)


def _scan(builder, rp, cp, qn2, n, keep2: bool, lo1p, lo2p) -> ir.Value:
    """The loop for one ``keep`` (``keep2``: also the second minima); returns the least lane minimum."""
    two = ir.Constant(_VEC, [2.0] * _WIDTH)
    inf = ir.Constant(_VEC, [float("inf")] * _WIDTH)
    m1 = [cgutils.alloca_once_value(builder, inf) for _ in range(_GROUPS)]
    m2 = [cgutils.alloca_once_value(builder, inf) for _ in range(_GROUPS)] if keep2 else [None] * _GROUPS

    def column_block(k, mask):
        for g in range(_GROUPS):
            at = builder.add(k, ir.Constant(I64, g * _WIDTH))
            rptr = vector_ptr(builder, rp, at, _VEC, inbounds=mask is None)
            cptr = vector_ptr(builder, cp, at, _VEC, inbounds=mask is None)
            if mask is None:
                r, c = builder.load(rptr, align=4), builder.load(cptr, align=4)
            else:
                r, c = masked_load(builder, rptr, mask[g], _ZEROS), masked_load(builder, cptr, mask[g], _ZEROS)
            a = builder.fsub(builder.fadd(qn2, c), builder.fmul(two, r))
            if mask is None:
                builder.store(a, rptr, align=4)
            else:
                masked_store(builder, a, rptr, mask[g])
                a = builder.select(mask[g], a, inf)  # a column past the end changes no minimum
            lo1, lo2 = _update(builder, a, builder.load(m1[g]), builder.load(m2[g]) if keep2 else None)
            builder.store(lo1, m1[g])
            if keep2:
                builder.store(lo2, m2[g])

    rows, start = full_steps(builder, n, SCAN_LANES)
    with cgutils.for_range(builder, rows) as loop:
        column_block(builder.mul(loop.index, ir.Constant(I64, SCAN_LANES)), None)
    column_block(start, tail_masks(builder, n, start, _WIDTH, _GROUPS))
    for g in range(_GROUPS):
        builder.store(builder.load(m1[g]), vector_ptr(builder, lo1p, ir.Constant(I64, g * _WIDTH), _VEC), align=4)
        if keep2:
            builder.store(builder.load(m2[g]), vector_ptr(builder, lo2p, ir.Constant(I64, g * _WIDTH), _VEC), align=4)
    groups = [builder.load(m) for m in m1]
    least = _smaller(builder, _smaller(builder, groups[0], groups[1]), _smaller(builder, groups[2], groups[3]))
    width = _WIDTH
    while width > 1:  # halves of the vector, then of what is left
        width //= 2
        idx = ir.VectorType(I32, width)
        lo = builder.shuffle_vector(least, least, ir.Constant(idx, list(range(width))))
        hi = builder.shuffle_vector(least, least, ir.Constant(idx, list(range(width, 2 * width))))
        least = _smaller(builder, lo, hi)
    return builder.extract_element(least, ir.Constant(I32, 0))


def _f32_vector(ty) -> bool:
    """Whether ``ty`` is a contiguous 1-d float32 array."""
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C" and ty.dtype == types.float32


@intrinsic
def lane_minima(typingctx, row, qn, col_norm, n, keep, lo1, lo2):
    """Approximations into ``row[:n]`` and the lane minima into ``lo1`` (and ``lo2`` when
    ``keep == 2``; otherwise ``lo2`` is left alone) -- see the module doc. ``lo1`` and ``lo2``
    hold ``SCAN_LANES`` floats."""
    arrays = (row, col_norm, lo1, lo2)
    if not (all(_f32_vector(a) for a in arrays) and qn == types.float32 and isinstance(n, types.Integer)
            and isinstance(keep, types.Integer)):  # fmt: skip
        return None

    def codegen(context, builder, signature, args):
        rp, cp, l1p, l2p = (context.make_array(t)(context, builder, value=v).data
                            for t, v in zip(arrays, (args[0], args[2], args[5], args[6])))  # fmt: skip
        n64 = context.cast(builder, args[3], signature.args[3], types.int64)
        keep64 = context.cast(builder, args[4], signature.args[4], types.int64)
        qn2 = splat(builder, args[1], _VEC)
        least = cgutils.alloca_once(builder, _F32)
        with builder.if_else(builder.icmp_signed("==", keep64, ir.Constant(I64, 2))) as (two, one):
            with two:
                builder.store(_scan(builder, rp, cp, qn2, n64, True, l1p, l2p), least)
            with one:
                builder.store(_scan(builder, rp, cp, qn2, n64, False, l1p, l2p), least)
        return builder.load(least)

    return types.float32(row, qn, col_norm, n, keep, lo1, lo2), codegen


@intrinsic
def lanes_at_most(typingctx, lo1, limit):
    """Bit ``j`` set for each of the ``SCAN_LANES`` lane minima with ``float64(lo1[j]) <= limit``."""
    if not (_f32_vector(lo1) and limit == types.float64):
        return None

    def codegen(context, builder, signature, args):
        lp = context.make_array(signature.args[0])(context, builder, value=args[0]).data
        f64vec = ir.VectorType(ir.DoubleType(), _WIDTH)
        bound = splat(builder, args[1], f64vec)
        mask = ir.Constant(I64, 0)
        for g in range(_GROUPS):
            v = builder.load(vector_ptr(builder, lp, ir.Constant(I64, g * _WIDTH), _VEC), align=4)
            v = builder.fpext(v, f64vec)
            bits = builder.zext(builder.bitcast(builder.fcmp_ordered("<=", v, bound), ir.IntType(_WIDTH)), I64)
            mask = builder.or_(mask, builder.shl(bits, ir.Constant(I64, g * _WIDTH)))
        return mask

    return types.int64(lo1, limit), codegen


@intrinsic
def lowest_bit(typingctx, mask):
    """Index of the lowest set bit of the non-zero int64 ``mask`` (``llvm.cttz``)."""
    if mask != types.int64:
        return None

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(I64, [I64, ir.IntType(1)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.int64(mask), codegen
