"""Memory movement of the hot path: array copies as plain element loops, and prefetches.

Numba compiles a slice assignment (``a[i, :] = x``) through its broadcasting code: a scalar loop
that clamps every index. The block engine's copy of each inserted request into its slot was among
the hottest loops of a small-cache replay under ``perf`` that way; a loop over two contiguous rows
compiles to vector moves instead.

:func:`prefetch` asks the CPU to fetch an array into its caches ahead of use (x86 ``prefetcht0``;
it never faults and changes no value): the block engine fetches the next block's requests while it
serves the current one, so that their first read (the squared norms) does not wait for memory.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: bytes per cache line
_LINE = 64


@nb.njit(cache=True, inline="always")
def copy_row(src, dst):  # type: ignore[no-untyped-def]
    """``dst[:] = src`` for two 1-D arrays of the same length."""
    for k in range(src.shape[0]):
        dst[k] = src[k]


@intrinsic
def prefetch(typingctx, a):  # type: ignore[no-untyped-def]
    """Prefetch every cache line of the contiguous array ``a`` for reading (into all cache levels)."""
    if not (isinstance(a, types.Array) and a.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, value=args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        base = builder.bitcast(ary.data, i8p)
        itemsize = context.get_abi_sizeof(ary.data.type.pointee)
        nbytes = builder.mul(ary.nitems, context.get_constant(types.intp, itemsize))
        lines = builder.udiv(builder.add(nbytes, context.get_constant(types.intp, _LINE - 1)),
                             context.get_constant(types.intp, _LINE))  # fmt: skip
        with cgutils.for_range(builder, lines) as loop:
            at = builder.gep(base, [builder.mul(loop.index, context.get_constant(types.intp, _LINE))])
            builder.call(fn, [at, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(a), codegen
