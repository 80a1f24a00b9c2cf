import numpy as np, time, faiss
from benchmarks.replay_speed import synthetic_trace, TRACE, ceiling
from simcache.cache import replay, engine as E, kernels as K
from simcache.cache import search as S
kw = {k: v for k, v in TRACE.items() if k != "radius"}
x = synthetic_trace(100000, 200, **kw)
replay(x[:5000], capacity=100, radius=1.2)
acc = {}
def wrap(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); acc[name] = acc.get(name, 0) + time.perf_counter() - t; return r
    setattr(mod, name, g)
wrap(K, "serve_block_dense"); wrap(E, "pairwise_sq_l2"); wrap(S.FlatCPU, "gram"); wrap(E._Engine, "prepare")
for B in [128, 256]:
    for rep in range(2):
        acc.clear()
        t = time.perf_counter(); replay(x, capacity=100, radius=1.2, block_size=B); tot = time.perf_counter() - t
        tc = ceiling(x, 100)
        print(B, f"total {tot/1e5*1e6:.2f} us/req, ceiling {tc/1e5*1e6:.2f}", {k: round(v/1e5*1e6, 2) for k, v in acc.items()}, flush=True)
