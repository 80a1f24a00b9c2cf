import numpy as np, time, cProfile, pstats, faiss
from benchmarks.replay_speed import synthetic_trace, TRACE
from simcache.cache import replay
faiss.omp_set_num_threads(1)
kw = {k: v for k, v in TRACE.items() if k != "radius"}
x = synthetic_trace(50000, 200, **kw)
replay(x[:5000], capacity=100, radius=1.2)
for B in [128, 256]:
    pr=cProfile.Profile(); pr.enable(); l=replay(x, capacity=100, radius=1.2, block_size=B); pr.disable()
    pstats.Stats(pr).sort_stats('tottime').print_stats(5)
