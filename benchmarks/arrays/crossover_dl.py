"""dl's two paths for the same function at small n: a list of Reals (one backpropagator per element) against
an Array (one per array operation). Where does the array path start to win?

    .venv/bin/python benchmarks/arrays/crossover_dl.py            # n = 1 .. 1024, ~1 min
    .venv/bin/python benchmarks/arrays/crossover_dl.py --quick

f(x) = Σ sin(xᵢ)·xᵢ, value and gradient in mode backprop, x_i = (i + 0.5) / n, both programs compiled once in
one process and called through dl's own `apply` (benchmarks/arrays/workloads/a1_sum_sin.dl is the array
program; the list program is the same function over [Real]). Samples are interleaved (list, array, list, ...),
each the mean of enough calls to last ~2 ms; the table gives medians and the median of same-round ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from lang.back.machine import Machine  # noqa: E402
from lang.front.loader import Loader, World  # noqa: E402
from lang.model.spans import Source  # noqa: E402
from lang.model.values import apply  # noqa: E402
from lang.modes.table import get  # noqa: E402

PROGRAM = """
def lossList (xs : [Real]) = sum (map (fun x -> sin x * x) xs)
def vgList (xs : [Real]) = value_and_grad lossList xs
def lossArray (x : Array) = asum (sin x * x)
def vgArray (x : Array) = value_and_grad lossArray x
"""


def sample(fn, arg, target: float = 0.004) -> float:
    """µs per call: the mean over enough calls to last about `target` seconds."""
    reps, t0 = 1, time.perf_counter()
    fn(arg)
    once = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(target / once))
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(arg)
    return (time.perf_counter() - t0) / reps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    opts = ap.parse_args()
    world = World()
    loader = Loader(world)
    loader.load_prelude()
    module = loader.load_source(Source("<crossover>", PROGRAM), "crossover.dl")
    machine = Machine(world, mode=get("backprop"))
    vg_list = machine.global_value(module.id, "vgList", ())
    vg_array = machine.global_value(module.id, "vgArray", ())
    sizes = [1, 4, 16, 64, 256] if opts.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    rounds = 5 if opts.quick else 21
    print(f"dl lists vs dl arrays, value and gradient of sum sin(x_i) x_i, mode backprop; numpy {np.__version__}; "
          f"load average {os.getloadavg()[0]:.2f}; {rounds} interleaved rounds per n")
    print()
    print("| n | list v+g µs | array v+g µs | list ÷ array |")
    print("|---|---|---|---|")
    medians = []
    for n in sizes:
        xs = [(i + 0.5) / n for i in range(n)]
        xa = np.array(xs)
        fl = lambda v: apply(vg_list, (v,))    # noqa: E731
        fa = lambda v: apply(vg_array, (v,))   # noqa: E731
        vl, gl = fl(xs)
        va, ga = fa(xa)
        assert abs(vl - va) <= 1e-12 * max(1.0, abs(vl)) and np.allclose(gl, ga, rtol=1e-12, atol=1e-15)
        tl, ta, ratio = [], [], []
        for r in range(rounds):
            pair = (sample(fl, xs), sample(fa, xa)) if r % 2 == 0 else tuple(reversed((sample(fa, xa), sample(fl, xs))))
            tl.append(pair[0])
            ta.append(pair[1])
            ratio.append(pair[0] / pair[1])
        med = statistics.median(ratio)
        medians.append((n, med))
        print(f"| {n} | {statistics.median(tl):,.1f} | {statistics.median(ta):,.1f} | {med:.2f} |")
    # the crossover: the smallest n from which the array path is faster at every larger n measured
    crossover = next((n for k, (n, _) in enumerate(medians) if all(m > 1.0 for _, m in medians[k:])), None)
    print()
    print(f"The array path is faster from n = {crossover if crossover else '> ' + str(sizes[-1])} on "
          "(at every n measured from there).")


if __name__ == "__main__":
    main()
