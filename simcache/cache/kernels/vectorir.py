"""LLVM IR building blocks shared by the vector intrinsics (:mod:`lanesum`, :mod:`laneminima`,
:mod:`panels`).

The scans (lane sums, lane minima) walk their arrays in steps of ``groups`` vectors of ``width``
elements and read the last, partial step through masked loads (and write it through masked
stores), so that nothing past an array's end is touched; the panels' tiles read whole vectors
only. These helpers build those pieces once.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils

I32 = ir.IntType(32)
I64 = ir.IntType(64)


def splat(builder: ir.IRBuilder, value: ir.Value, vty: ir.VectorType) -> ir.Value:
    """A vector of type ``vty`` with every element ``value``."""
    one = builder.insert_element(ir.Constant(vty, None), value, ir.Constant(I32, 0))
    zeros = ir.Constant(ir.VectorType(I32, vty.count), [0] * vty.count)
    return builder.shuffle_vector(one, ir.Constant(vty, None), zeros)


def vector_ptr(builder: ir.IRBuilder, base: ir.Value, index: ir.Value, vty: ir.VectorType,
               inbounds: bool = True) -> ir.Value:  # fmt: skip
    """Pointer to the ``vty`` vector at element ``index`` of the element pointer ``base``
    (``inbounds`` False for a partial step, whose start may lie past the end)."""
    return builder.bitcast(builder.gep(base, [index], inbounds=inbounds), vty.as_pointer())


def _suffix(vty: ir.VectorType) -> str:
    name = "f32" if vty.element == ir.FloatType() else "f64"
    return f"v{vty.count}{name}"


def masked_load(builder: ir.IRBuilder, ptr: ir.Value, mask: ir.Value, fill: ir.Constant) -> ir.Value:
    """The vector at ``ptr`` where ``mask`` is set, ``fill`` elsewhere (nothing is read there)."""
    vty = fill.type
    fnty = ir.FunctionType(vty, [vty.as_pointer(), I32, mask.type, vty])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.load.{_suffix(vty)}.p0{_suffix(vty)}")
    return builder.call(fn, [ptr, ir.Constant(I32, 4), mask, fill])


def masked_store(builder: ir.IRBuilder, value: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    """Store the elements of ``value`` where ``mask`` is set (nothing is written elsewhere)."""
    vty = value.type
    fnty = ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), I32, mask.type])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.store.{_suffix(vty)}.p0{_suffix(vty)}")
    builder.call(fn, [value, ptr, ir.Constant(I32, 4), mask])


def full_steps(builder: ir.IRBuilder, n: ir.Value, step: int) -> tuple[ir.Value, ir.Value]:
    """(number of whole steps of ``step`` elements in ``n``, the element where the partial step starts)."""
    steps = builder.udiv(n, ir.Constant(I64, step))
    return steps, builder.mul(steps, ir.Constant(I64, step))


def tail_masks(builder: ir.IRBuilder, n: ir.Value, start: ir.Value, width: int, groups: int) -> list[ir.Value]:
    """For the partial step from ``start``: per group of ``width`` elements, the mask of those
    before ``n``."""
    left = splat(builder, builder.trunc(builder.sub(n, start), I32), ir.VectorType(I32, width))
    lanes = ir.VectorType(I32, width)
    return [builder.icmp_unsigned("<", ir.Constant(lanes, list(range(g * width, (g + 1) * width))), left)
            for g in range(groups)]  # fmt: skip
