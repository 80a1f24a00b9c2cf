"""Borrowed array views for the per-request loops: no reference counting inside the hot path.

Numba counts references to every array it holds, with an atomic increment and decrement each time
an array is bound to a new name: every argument of an inlined helper and of a policy kernel, every
row view. Its pruning pass removes most pairs, but not those whose release lands in different
branches; the block engine's loop kept about 60 atomic operations per request that way (counted
with a debugger; ``python -m benchmarks.compare_revisions`` shows the replay speed it cost).
:func:`borrowed` gives a view of an array without a reference (a null meminfo, which numba's
increment and decrement skip), so every name bound to it in the loop costs nothing.

Only for arrays that outlive every use of the view: the arguments of the compiled function that
borrows them (its caller holds them), or locals kept alive by a later use (:func:`keep_alive`).
"""

from __future__ import annotations

import numba as nb
from numba import types as nt
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def borrowed(typingctx, arr):  # type: ignore[no-untyped-def]
    """The same array (data, shape, strides) without a reference to its memory."""
    if not isinstance(arr, nt.Array):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        view = cgutils.create_struct_proxy(arr)(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return arr(arr), codegen


@nb.njit(cache=True)
def keep_alive(*arrays):  # type: ignore[no-untyped-def]
    """Nothing: a use of every array given, so that numba keeps them until this point (call it
    after the last use of views borrowed from locals)."""
    return None


@nb.njit(cache=True, inline="always")
def split(a, n):  # type: ignore[no-untyped-def]
    """The first ``n`` items of the 1-D ``a`` and the rest (scratch arrays carved from one buffer;
    a buffer sized too small for its parts is an error, not a short view)."""
    if n > a.shape[0]:
        raise ValueError("scratch buffer too small for its parts")
    return a[:n], a[n:]
