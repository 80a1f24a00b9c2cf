import numpy as np, time, faiss, sys
from benchmarks.replay_speed import synthetic_trace, TRACE, ceiling
from simcache.cache import replay
faiss.omp_set_num_threads(1)
kw = {k: v for k, v in TRACE.items() if k != "radius"}
x = synthetic_trace(50000, 200, **kw)
replay(x[:5000], capacity=100, radius=1.2)
for C in [100, 1000]:
  for B in [64, 128, 256]:
    ts=[]
    for _ in range(3):
        t=time.perf_counter(); l=replay(x, capacity=C, radius=1.2, block_size=B); ts.append(time.perf_counter()-t)
    tc=min(ceiling(x, C) for _ in range(3))
    print(C, B, f"{50000/min(ts):,.0f} req/s; ceiling {50000/tc:,.0f}; ratio {tc/min(ts):.2f}", flush=True)
