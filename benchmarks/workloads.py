"""The seven workloads: their inputs, operation counts, and the plain-Python reference programs.

Every tool gets the same inputs as plain Python data (floats, lists, tuples) and gives back plain
Python data: converting in and out is part of each tool's measured time. A workload's *primitive
operations* are the real arithmetic and transcendental operations of one evaluation, counted on the
dl program (loop counters and list plumbing are not counted); the same count divides every tool's
time, whatever graph nodes or kernels that tool uses for them.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
DL_DIR = HERE / "workloads"


@dataclass
class Workload:
    key: str                      # "W2"
    title: str                    # short name for tables
    dl_file: str                  # benchmarks/workloads/<file>
    sizes: tuple[int, ...]        # n of a full run (1: no size)
    quick_sizes: tuple[int, ...]  # n of a --quick run
    ops_text: str                 # how the primitive operations are counted
    ops: Callable[[int], int]     # primitive operations of one evaluation at size n
    inputs: Callable[[int], tuple]  # the arguments of `primal` / `vg` at size n (plain Python data)
    diff_index: int               # which argument is differentiated (the others are constants)
    python: Callable[..., float]  # plain Python, the same program
    peer_max_n: int | None = None  # sizes above this are dl and plain Python only (the peers' range ends)
    notes: list[str] = field(default_factory=list)
    # From this size on, finite differences are expected to miss the gradient, and why: a disagreement
    # there is the method's limit, reported as expected; anywhere else it is a failure to look at.
    fd_fails_from: tuple[int, str] | None = None

    def fd_expected_to_fail(self, n: int) -> str | None:
        """Why finite differences cannot follow this workload at size n, or None."""
        if self.fd_fails_from and n >= self.fd_fails_from[0]:
            return self.fd_fails_from[1]
        return None

    @property
    def sized(self) -> bool:
        return self.sizes != (1,)


# ---- plain-Python programs ---------------------------------------------------------------------

def py_w1(p):
    x1, x2 = p
    return math.log(x1) + x1 * x2 - math.sin(x2)


def py_w2(n, x):
    for _ in range(n):
        x = 3.7 * x * (1.0 - x)
    return x


def py_w3(n, y):
    for _ in range(n):
        y = math.sin(y) * y + 0.5 * y
    return y


def py_w4(xs):
    acc = 0.0
    for x in xs:
        acc += math.sin(x) * x
    return acc


def py_dot(row, h):
    acc = 0.0
    for a, b in zip(row, h):
        acc += a * b
    return acc


def py_w5(x, t, layers):
    h = x
    for w, b in layers[:-1]:
        h = [math.tanh(py_dot(row, h) + bi) for row, bi in zip(w, b)]
    w, b = layers[-1]
    e = (py_dot(w[0], h) + b[0]) - t
    return e * e


def py_w6(p):
    y, mu, s = p
    return -0.5 * ((y - mu) / s) ** 2 - math.log(s)


def py_w7(n, p):
    x, a, b = p
    for _ in range(n):
        x = math.tanh(a * x + b)
    return x


# ---- inputs ----------------------------------------------------------------------------------

def w4_inputs(n):
    return ([(i + 0.5) / n for i in range(n)],)


_W5_CACHE: dict = {}


def w5_inputs(_n=1):
    """A fixed example and fixed parameters (uniform, seed 7): x in [-1, 1]^16, t = 0.5."""
    if not _W5_CACHE:
        rng = random.Random(7)
        x = [rng.uniform(-1.0, 1.0) for _ in range(16)]
        w1 = [[rng.uniform(-0.5, 0.5) for _ in range(16)] for _ in range(32)]
        b1 = [rng.uniform(-0.1, 0.1) for _ in range(32)]
        w2 = [[rng.uniform(-0.5, 0.5) for _ in range(32)]]
        b2 = [rng.uniform(-0.1, 0.1)]
        _W5_CACHE["v"] = (x, 0.5, [(w1, b1), (w2, b2)])
    return _W5_CACHE["v"]


def w5_unflatten(flat):
    """Flat parameter list (W1 rows, b1, W2 rows, b2) -> the layers structure."""
    it = iter(flat)
    w1 = [[next(it) for _ in range(16)] for _ in range(32)]
    b1 = [next(it) for _ in range(32)]
    w2 = [[next(it) for _ in range(32)]]
    b2 = [next(it)]
    return [(w1, b1), (w2, b2)]


WORKLOADS: list[Workload] = [
    Workload("W1", "seed ln x1 + x1 x2 - sin x2", "w1_seed.dl", (1,), (1,),
             "5: log * + sin -", lambda n: 5, lambda n: ((2.0, 5.0),), 0, py_w1),
    Workload("W2", "logistic map 3.7 x (1 - x)", "w2_logistic.dl", (10, 100, 1000, 10_000, 100_000),
             (10, 100), "3 per step: * - *", lambda n: 3 * n, lambda n: (n, 0.3), 1, py_w2,
             peer_max_n=10_000,
             fd_fails_from=(100, "the map is chaotic: |d x_n / d x_0| grows like exp(0.35 n), so no step h "
                                 "resolves it"),
             notes=["x0 = 0.3. The map is chaotic (Lyapunov exponent about 0.35): |d x_n / d x_0| grows like "
                    "exp(0.35 n) and overflows past n of about 2000, so at n = 10^4 and 10^5 every tool's "
                    "gradient is inf or nan (the check then asks for the same non-finite result); finite "
                    "differences cannot follow it from n = 100 on.",
                    "n = 10^5 measures dl's own primal and gradient at a large size: dl and plain Python only "
                    "(the comparison with the peers ends at 10^4)."]),
    Workload("W3", "reuse y -> sin y * y + 0.5 y", "w3_reuse.dl", (10, 100, 1000), (10, 100),
             "4 per step: sin * * +", lambda n: 4 * n, lambda n: (n, 1.0), 1, py_w3,
             notes=["y0 = 1.0; the orbit falls onto an attracting 2-cycle near 2.188, so d y_n / d y_0 shrinks "
                    "by about 0.34 per step and underflows to 0 before n = 10^3 (there the check compares "
                    "values and zero gradients)."]),
    Workload("W4", "sum (map (x -> sin x * x) xs)", "w4_sum_sin.dl", (10, 100, 1000, 10_000, 100_000),
             (10, 100), "3 per input: sin * +", lambda n: 3 * n, w4_inputs, 0, py_w4,
             notes=["x_i = (i + 0.5) / n; the gradient has n components."]),
    Workload("W5", "MLP 16-32-1 tanh, squared loss", "w5_mlp.dl", (1,), (1,),
             "1155: layer 1 32 x (16 * + 16 + + bias +) + 32 tanh, layer 2 32 * + 32 + + bias +, loss - *",
             lambda n: 1155, w5_inputs, 2, py_w5,
             notes=["One example: x uniform in [-1, 1]^16, t = 0.5, weights uniform(-0.5, 0.5), biases "
                    "uniform(-0.1, 0.1), seed 7. Gradient with respect to all 577 parameters, flattened as "
                    "W1 rows, b1, W2, b2."]),
    Workload("W6", "Gaussian log-likelihood", "w6_gaussian.dl", (1,), (1,),
             "6: - / ^2 * log -", lambda n: 6, lambda n: ((1.0, 0.0, 1.0),), 0, py_w6,
             notes=["-1/2 ((y - mu) / s)^2 - log s at (y, mu, s) = (1, 0, 1), gradient (-1, 1, 0) "
                    "(docs/transforms.md, Worked examples)."]),
    Workload("W7", "closure tanh (a x + b), n times", "w7_closure.dl", (10, 100, 1000, 10_000),
             (10, 100), "3 per step: * + tanh", lambda n: 3 * n, lambda n: (n, (0.5, 0.99, 0.001)), 1,
             py_w7,
             notes=["(x, a, b) = (0.5, 0.99, 0.001): the closure `step a b` captures two differentiated inputs; "
                    "the per-step derivative stays near 0.98, so nothing under- or overflows up to n = 10^4."]),
]

BY_KEY = {w.key: w for w in WORKLOADS}


# ---- flattening and checking -----------------------------------------------------------------

def flatten(v: Any) -> list[float]:
    out: list[float] = []

    def walk(x):
        if isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        else:
            out.append(float(x))
    walk(v)
    return out


def rel_error(got: list[float], ref: list[float], floor: float = 0.0) -> float:
    """Max over components of |got - ref| / max(|ref|, 1e-6 * max |ref|).

    `floor` bounds the denominator from below (finite differences: their round-off is absolute).
    A non-finite reference component (W2's overflowing derivative) only asks for a non-finite result
    (inf and nan are not told apart: which one comes out depends on how a tool sums inf - inf)."""
    if len(got) != len(ref):
        return math.inf
    scale = max((abs(r) for r in ref if math.isfinite(r)), default=0.0)
    worst = 0.0
    for g, r in zip(got, ref):
        if not (math.isfinite(g) and math.isfinite(r)):
            if math.isfinite(g) != math.isfinite(r):
                return math.inf
            continue
        if g == r:
            continue
        denom = max(abs(r), 1e-6 * scale, floor)
        worst = max(worst, abs(g - r) / denom if denom > 0 else math.inf)
    return worst
