"""dl's value-and-gradient time over its primal time, in one process, in CPU time (the thread's own: less
disturbed by a loaded machine than wall time). Each sample repeats a call for at least 0.1 s; the
collector runs and freezes before it and collects after each call, as benchmarks/worker.py does.
Medians of 7. PRE=0 runs backprop without preaccumulation.

    PRE=1 .venv/bin/python benchmarks/grad_ratio.py W2=1000 W4=10000 W7=1000
"""
import sys, time, gc, statistics, os
sys.path.insert(0, os.getcwd())
sys.setrecursionlimit(1000000)
import threading
threading.stack_size(1 << 29)
from lang.front.loader import Loader, World
from lang.back.machine import Machine
from lang.model.values import apply
from lang.modes.table import get
from lang.model.spans import Source
pre = os.environ.get("PRE", "1") == "1"
W = {"W2": ("w2_logistic.dl", lambda n: (n, 0.3)), "W4": ("w4_sum_sin.dl", lambda n: ([(i + 0.5) / n for i in range(n)],)),
     "W7": ("w7_closure.dl", lambda n: (n, (0.5, 0.99, 0.001))), "W3": ("w3_reuse.dl", lambda n: (n, 1.0)),
     "W1": ("w1_seed.dl", lambda n: ((2.0, 5.0),)), "W6": ("w6_gaussian.dl", lambda n: ((1.0, 0.0, 1.0),)),
     "W5": ("w5_mlp.dl", lambda n: __import__("benchmarks.workloads", fromlist=["w5_inputs"]).w5_inputs(n))}
def main():
    world = World(); loader = Loader(world); loader.load_prelude()
    todo = [a.split("=") for a in sys.argv[1:]]
    for name, n in todo:
        n = int(n); f, mk = W[name]
        mod = loader.load_source(Source(f"benchmarks/workloads/{f}", open(f"benchmarks/workloads/{f}").read()), f)
        m = Machine(world, mode=get("backprop"), preaccumulate=pre)
        fp, fg = m.global_value(mod.id, "primal", ()), m.global_value(mod.id, "vg", ())
        args = mk(n)
        ts = {"p": [], "g": []}
        reps = {}
        for k, fn in (("p", fp), ("g", fg)):
            apply(fn, args)  # (compiles: the repetitions are sized by a call that does not)
            t0 = time.thread_time(); apply(fn, args); d = time.thread_time() - t0
            reps[k] = max(1, int(0.1 / max(d, 1e-6)))
        for r in range(7):
            for k, fn in (("p", fp), ("g", fg)):
                gc.collect(); gc.freeze()
                t0 = time.thread_time()
                for _ in range(reps[k]):
                    apply(fn, args); gc.collect()
                ts[k].append((time.thread_time() - t0) / reps[k])
                gc.unfreeze()
        p, g = statistics.median(ts["p"]), statistics.median(ts["g"])
        print(f"{name} n={n} pre={pre}: primal {p*1e3:.4f} ms  vg {g*1e3:.4f} ms  ratio {g/p:.2f}  load {os.getloadavg()[0]:.1f}", flush=True)
t = threading.Thread(target=main); t.start(); t.join()
