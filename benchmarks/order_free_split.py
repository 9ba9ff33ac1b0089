"""Where W2's value and gradient goes when its gradient is not finite (n >= 10^4: the order-free pass), in
thread CPU time over the primal's, one process:

    .venv/bin/python benchmarks/order_free_split.py 10000

the value and gradient as it runs (the order-free pass replays ←D's own term on the steps around the overflow
only: lang/back/replay.py) and the replay's share; then what the whole order-free pass would cost, the way it
runs where the replay does not apply: the preaccumulated forward pass, ←D's own forward pass (what it reruns),
and the sweeps.
"""
import gc, os, sys, threading, time
sys.path.insert(0, os.getcwd())
sys.setrecursionlimit(1000000)
threading.stack_size(1 << 29)
from lang.front.loader import Loader, World
from lang.back.machine import Machine
from lang.back import linear
from lang.model.values import apply
from lang.modes.table import get
from lang.model.spans import Source
from lang.model.types import REAL


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    world = World(); loader = Loader(world); loader.load_prelude()
    path = "benchmarks/workloads/w2_logistic.dl"
    mod = loader.load_source(Source(path, open(path).read()), "w2_logistic.dl")
    m = Machine(world, mode=get("backprop"))
    fg, fp = m.global_value(mod.id, "vg", ()), m.global_value(mod.id, "primal", ())
    f = apply(m.global_value(mod.id, "logistic", ()), (n,))
    spent = {"sweep": 0.0}
    plain, checked = linear.Factoring._sweep, linear._sweep_finite

    def timed(self, *a):
        t = time.thread_time(); plain(self, *a); spent["sweep"] += time.thread_time() - t

    def timed_checked(*a):  # (the order-free pass's sweep on floats)
        t = time.thread_time(); out = checked(*a); spent["sweep"] += time.thread_time() - t
        return out
    linear.Factoring._sweep = timed
    linear._sweep_finite = timed_checked
    from lang.back import entries, replay
    decide = replay.overflowed_gradient
    replayed = {"t": 0.0}

    def timed_replay(*a):
        t = time.thread_time(); out = decide(*a); replayed["t"] += time.thread_time() - t
        return out
    entries.overflowed_gradient = timed_replay
    reps = 5
    gc.collect(); gc.freeze()

    def each(fn):
        t = time.thread_time()
        for _ in range(reps):
            fn()
        return (time.thread_time() - t) / reps
    apply(fg, (n, 0.3))  # (the replay's loop compiled on first use)
    tp = each(lambda: apply(fp, (n, 0.3)))
    replayed["t"] = 0.0
    tg = each(lambda: apply(fg, (n, 0.3)))
    share = replayed["t"] / reps
    entries.overflowed_gradient = lambda *a: None  # (the whole pass, as where the replay does not apply)
    spent["sweep"] = 0.0
    whole = each(lambda: apply(fg, (n, 0.3)))
    sweeps = spent["sweep"] / reps
    pre = each(lambda: m.ad.vjp_reverse(f, 0.3, REAL, REAL, m.runtime))
    own = each(lambda: m.ad.vjp_reverse(f, 0.3, REAL, REAL, m.runtime, faithful=True))
    print(f"W2 n={n}: value and gradient {tg / tp:.2f}x the primal, of which the replay {share / tp:.2f}x; "
          f"with the whole order-free pass {whole / tp:.1f}x: preaccumulated forward pass {pre / tp:.1f}x, "
          f"←D's own forward pass {own / tp:.1f}x, the sweeps (both passes) {sweeps / tp:.1f}x  "
          f"load {os.getloadavg()[0]:.1f}")


t = threading.Thread(target=main); t.start(); t.join()
