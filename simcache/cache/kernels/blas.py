"""Matrix products on strided sub-matrices, for the block products of the row-scan engine.

``np.dot`` in numba needs contiguous operands and output, so a product into a rectangle of a
larger row-major array (a range of rows, the columns a request reads) is not expressible with
it. :func:`gemm_nt` calls the single-precision GEMM that numba's own ``np.dot`` calls (its
helper library's ``numba_xxgemm``, which resolves SciPy's BLAS), declared by symbol name, so a
function using it is cached to disk like any other (no function pointer in the object code).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

ensure_blas()


@intrinsic
def gemm_nt(typingctx, a, b, c, m, n, k, lda, ldb, ldc):  # type: ignore[no-untyped-def]
    """``c[i, j] = a[i, :k] . b[j, :k]`` for ``i < m``, ``j < n`` (float32), each matrix row-major
    from its array's first element with the given row stride in elements (``lda`` ...): the
    products of two row ranges into a rectangle of a larger array. Nothing is done for ``m``,
    ``n`` or ``k`` zero; the arrays must hold the rectangles (unchecked)."""
    f32 = types.float32
    if not all(isinstance(t, types.Array) and t.dtype == f32 for t in (a, b, c)):
        return None
    sig = types.void(a, b, c, m, n, k, lda, ldb, ldc)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        intp = context.get_value_type(types.intp)
        char = ir.IntType(8)
        vp = cgutils.voidptr_t
        fnty = ir.FunctionType(ir.IntType(32),
                               [char, char, char, intp, intp, intp, vp, vp, intp, vp, intp, vp, vp, intp])  # fmt: skip
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        ptr = []
        for ty, val in zip(sig.args[:3], args[:3]):
            ptr.append(builder.bitcast(context.make_array(ty)(context, builder, val).data, vp))
        m_, n_, k_, lda_, ldb_, ldc_ = (context.cast(builder, v, t, types.intp) for v, t in zip(args[3:], sig.args[3:]))
        fty = context.get_value_type(f32)
        alpha = cgutils.alloca_once_value(builder, ir.Constant(fty, 1.0))
        beta = cgutils.alloca_once_value(builder, ir.Constant(fty, 0.0))
        zero = ir.Constant(intp, 0)
        empty = builder.or_(builder.icmp_signed("<=", m_, zero), builder.icmp_signed("<=", n_, zero))
        empty = builder.or_(empty, builder.icmp_signed("<=", k_, zero))
        with builder.if_then(builder.not_(empty)):
            # column-major view: c^T (n x m, ldc) = b (k x n col-major, transposed) * a^T (k x m)
            builder.call(fn, (ir.Constant(char, ord("s")), ir.Constant(char, ord("t")), ir.Constant(char, ord("n")),
                              n_, m_, k_, builder.bitcast(alpha, vp), ptr[1], ldb_, ptr[0], lda_,
                              builder.bitcast(beta, vp), ptr[2], ldc_))  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen

