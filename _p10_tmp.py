import numpy as np, time, contextlib
from benchmarks.replay_speed import synthetic_trace, TRACE, ceiling
from simcache.cache import replay, engine as E
kw = {k: v for k, v in TRACE.items() if k != "radius"}
x = synthetic_trace(100000, 200, **kw)
replay(x[:12000], capacity=1000, radius=1.2)
orig = E._numpy_blas_single_thread
for C in [100, 1000]:
    tc = min(ceiling(x, C) for _ in range(2))
    out=[]
    for lim in [True, False]:
        E._numpy_blas_single_thread = orig if lim else contextlib.nullcontext
        for B in ([32, 64] if C == 100 else [125, 256, 512]):
            t = min((lambda: (lambda t0: (replay(x, capacity=C, radius=1.2, block_size=B), time.perf_counter()-t0)[1])(time.perf_counter()))() for _ in range(2))
            out.append(f"{'1t' if lim else 'mt'}-B{B}:{tc/t:.2f}")
    print(C, f"{1e5/tc:,.0f}", out, flush=True)
