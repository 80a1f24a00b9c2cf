"""Fixed-order float64 lane sums, emitted as vector code: the arithmetic under every exact distance.

:func:`sqdiff_sum` and :func:`product_sum` return ``sum_k t_k`` in float64 with
``t_k = (x_k - y_k)**2`` or ``t_k = x_k * y_k``, over ``k < len(x)``; float32 components are
widened exactly first. The order is fixed (see :mod:`~simcache.cache.kernels.distances`): term
``k`` goes to partial sum ``k % 32``, each partial sum adds its terms in increasing ``k`` (starting
from +0.0), then neighbouring partial sums are added in pairs (``s_j = s_2j + s_2j+1``), halving
their number until one is left. No step is fused or reordered (plain ``fsub``, ``fmul``, ``fadd``
without fast-math flags), so the result is the same bit for bit on every machine and the same as
the plain loop of that order in the tests (``tests/simcache/cache/test_cache_lanesum.py``).

They are numba intrinsics (usable in compiled code only);
:func:`~simcache.cache.kernels.distances.sqdist` and
:func:`~simcache.cache.kernels.distances.lane_dot` wrap them for every caller. Why intrinsics:
written as a numba loop, the 32 partial sums live in a scratch array that LLVM must assume may
alias the inputs, so the loop stays scalar. Emitted here, they are four vectors of eight float64
partial sums in registers; the main loop reads 32 components of each input per step, and the last
``len(x) % 32`` components are read by masked loads (``python -m benchmarks.replay_threads``
measures the replay they serve).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from simcache.cache.kernels.vectorir import I32, I64, full_steps, masked_load, tail_masks, vector_ptr

#: partial sums, and the float64 vector width they are kept in
LANES = 32
_WIDTH = 8
_GROUPS = LANES // _WIDTH
#: term kinds
SQDIFF, PRODUCT = 0, 1

_F64 = ir.DoubleType()
_VEC = ir.VectorType(_F64, _WIDTH)


def _element(dtype: types.Type) -> ir.Type:
    """LLVM type of an array element."""
    return ir.FloatType() if dtype == types.float32 else _F64


def _widened(builder: ir.IRBuilder, value: ir.Value, etype: ir.Type) -> ir.Value:
    """A vector of ``etype`` as float64 (exact)."""
    return value if etype == _F64 else builder.fpext(value, _VEC)


def _term(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, kind: int) -> ir.Value:
    """``(a - b)**2`` or ``a * b``, elementwise."""
    if kind == SQDIFF:
        diff = builder.fsub(a, b)
        return builder.fmul(diff, diff)
    return builder.fmul(a, b)


def _pairs(builder: ir.IRBuilder, lo: ir.Value, hi: ir.Value, width: int) -> ir.Value:
    """``s_j = s_2j + s_2j+1`` over the partial sums ``lo`` then ``hi`` (``width`` each)."""
    mask = ir.VectorType(I32, width)
    even = builder.shuffle_vector(lo, hi, ir.Constant(mask, [2 * j for j in range(width)]))
    odd = builder.shuffle_vector(lo, hi, ir.Constant(mask, [2 * j + 1 for j in range(width)]))
    return builder.fadd(even, odd)


def _halves(builder: ir.IRBuilder, v: ir.Value, width: int) -> ir.Value:
    """``s_j = s_2j + s_2j+1`` within one vector of ``2 * width`` partial sums."""
    return _pairs(builder, v, v, width)


def _codegen(kind: int, xty: types.Array, yty: types.Array):
    """The sum's LLVM code for these two array types."""
    ex, ey = _element(xty.dtype), _element(yty.dtype)

    def codegen(context, builder, signature, args):
        xa = context.make_array(xty)(context, builder, value=args[0])
        ya = context.make_array(yty)(context, builder, value=args[1])
        n = cgutils.unpack_tuple(builder, xa.shape, 1)[0]
        xp, yp = xa.data, ya.data
        zero = ir.Constant(_VEC, [0.0] * _WIDTH)
        accs = [cgutils.alloca_once_value(builder, zero) for _ in range(_GROUPS)]
        rows, start = full_steps(builder, n, LANES)
        xvec, yvec = ir.VectorType(ex, _WIDTH), ir.VectorType(ey, _WIDTH)
        with cgutils.for_range(builder, rows) as loop:
            base = builder.mul(loop.index, ir.Constant(I64, LANES))
            for g, acc in enumerate(accs):
                k = builder.add(base, ir.Constant(I64, g * _WIDTH))
                xv = builder.load(vector_ptr(builder, xp, k, xvec), align=4)
                yv = builder.load(vector_ptr(builder, yp, k, yvec), align=4)
                t = _term(builder, _widened(builder, xv, ex), _widened(builder, yv, ey), kind)
                builder.store(builder.fadd(builder.load(acc), t), acc)
        # the last len % 32 components: masked loads (lanes past the end read +0.0, and adding the
        # +0.0 term is exact: a partial sum is never -0.0, as it starts at +0.0)
        xzero, yzero = ir.Constant(xvec, [0.0] * _WIDTH), ir.Constant(yvec, [0.0] * _WIDTH)
        sums = []
        for g, (acc, mask) in enumerate(zip(accs, tail_masks(builder, n, start, _WIDTH, _GROUPS))):
            k = builder.add(start, ir.Constant(I64, g * _WIDTH))
            xv = masked_load(builder, vector_ptr(builder, xp, k, xvec, inbounds=False), mask, xzero)
            yv = masked_load(builder, vector_ptr(builder, yp, k, yvec, inbounds=False), mask, yzero)
            t = _term(builder, _widened(builder, xv, ex), _widened(builder, yv, ey), kind)
            sums.append(builder.fadd(builder.load(acc), t))
        level1 = [_pairs(builder, sums[0], sums[1], _WIDTH), _pairs(builder, sums[2], sums[3], _WIDTH)]  # 16 sums
        level2 = _pairs(builder, level1[0], level1[1], _WIDTH)  # 8
        level3 = _halves(builder, level2, 4)  # 4
        level4 = _halves(builder, level3, 2)  # 2
        return builder.fadd(builder.extract_element(level4, ir.Constant(I64, 0)),
                            builder.extract_element(level4, ir.Constant(I64, 1)))  # fmt: skip

    return codegen


def _float_vector(ty) -> bool:
    """Whether ``ty`` is a contiguous 1-d float32 or float64 array."""
    floats = (types.float32, types.float64)
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C" and ty.dtype in floats


def _lane_sum(kind: int, doc: str):
    """The intrinsic of one term kind."""
    def typer(typingctx, x, y):
        if not (_float_vector(x) and _float_vector(y)):
            return None
        return types.float64(x, y), _codegen(kind, x, y)

    typer.__doc__ = doc
    return intrinsic(typer)


sqdiff_sum = _lane_sum(SQDIFF, "Fixed-order float64 ``sum_k (x_k - y_k)**2`` of contiguous float32 / float64 "
                       "vectors (the first ``len(x)`` components of ``y``).")
product_sum = _lane_sum(PRODUCT, "Fixed-order float64 ``sum_k x_k * y_k`` of contiguous float32 / float64 "
                        "vectors (the first ``len(x)`` components of ``y``).")
