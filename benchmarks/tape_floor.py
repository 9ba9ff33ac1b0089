"""The floor under any per-operation reverse pass in CPython: W2 (the logistic map) written by hand.

`primal` is the plain-Python loop. `tape` is the least a reverse pass that works operation by
operation can do in Python: per operation, the value, one record (parent identities and partial
derivatives, as dl's defunctionalised backpropagators) appended to a list; then one backward sweep
over the records. No closures, no dual-value tuples, no generality: dl's `value_and_grad` does all
of that and more, so the ratio tape / primal here is what dl's grad/primal ratio can at best reach
while its primal runs at plain-Python speed.

    python benchmarks/tape_floor.py            # prints the ratio at n = 10^2 .. 10^5
"""
from __future__ import annotations

import statistics
import time


def primal(n: int, x: float) -> float:
    for _ in range(n):
        x = 3.7 * x * (1.0 - x)
    return x


def tape(n: int, x: float) -> tuple[float, float]:
    records: list = [()]  # record 0: the input's sink
    push = records.append
    xi = 0
    for _ in range(n):
        a = 3.7 * x
        ai = len(records)
        push((xi, 3.7))
        b = 1.0 - x
        bi = len(records)
        push((xi, -1.0))
        y = a * b
        yi = len(records)
        push((ai, b, bi, a))
        x, xi = y, yi
    adjoint = [0.0] * len(records)
    adjoint[xi] = 1.0
    for i in range(len(records) - 1, 0, -1):
        g, r = adjoint[i], records[i]
        adjoint[r[0]] += g * r[1]
        if len(r) == 4:
            adjoint[r[2]] += g * r[3]
    return x, adjoint[0]


def measure(n: int, rounds: int = 15) -> dict:
    """µs per operation of both, and the median over rounds of the ratio within a round."""
    reps = max(1, 20_000 // n)
    ratios, times = [], {"primal": [], "tape": []}
    for _ in range(rounds):
        round_t = {}
        for name, fn in (("primal", primal), ("tape", tape)):
            start = time.perf_counter()
            for _ in range(reps):
                fn(n, 0.3)
            round_t[name] = (time.perf_counter() - start) / reps
            times[name].append(round_t[name] / (3 * n) * 1e6)
        ratios.append(round_t["tape"] / round_t["primal"])
    return {"n": n, "primal_us_op": statistics.median(times["primal"]),
            "tape_us_op": statistics.median(times["tape"]), "ratio": statistics.median(ratios)}


if __name__ == "__main__":
    for n in (100, 1000, 10_000, 100_000):
        m = measure(n)
        print(f"n={n:>6}  primal {m['primal_us_op']:.3f} us/op  hand-written tape {m['tape_us_op']:.3f} us/op  "
              f"ratio {m['ratio']:.1f}")
