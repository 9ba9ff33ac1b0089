"""Unboxed loop variables and lean records in backprop's generated code (lang/back/compiler.py
Gen.unbox_loop_params, lang/back/linear.py): a self tail call's dual pairs kept as two Python locals,
records of up to three parents written by cases.

These change how the transformed program is written, never what it computes: the gradients are checked
against derivatives by hand (the chain rule written out in Python, not dl), bit for bit against the
boxed code, and the cost counters against the boxed code's.
"""
import math

import pytest

from conftest import EXACT_MODES, ROOT, close, load_source, run, run_with_machine
from lang.back import compiler as compiler_module
from lang.back import linear
from lang.back.deep import run_deep
from lang.back.machine import Machine
from lang.modes.table import get

LOGISTIC = (ROOT / "benchmarks" / "workloads" / "w2_logistic.dl").read_text()
CLOSURE = (ROOT / "benchmarks" / "workloads" / "w7_closure.dl").read_text()


def boxed(monkeypatch) -> None:
    """Compile without unboxing loop variables (the code before it), for comparisons."""
    monkeypatch.setattr(compiler_module.Gen, "unbox_loop_params", lambda self, body: None)


def reverse_source(text: str, name: str) -> str:
    """The generated Python of ←D(name), preaccumulated, as backprop runs it."""
    program = load_source(text)
    machine = Machine(program.world, get("backprop"))
    compiler = machine.ad.reverse_compiler(machine.runtime, 0, False)
    return run_deep(lambda: compiler.global_value("test.dl", name, ())).code.info["python"]


def logistic_by_hand(n: int, x: float = 0.3) -> tuple[float, float]:
    """x_n and d x_n / d x_0 = prod 3.7 (1 - 2 x_k)."""
    d = 1.0
    for _ in range(n):
        d *= 3.7 * (1.0 - 2.0 * x)
        x = 3.7 * x * (1.0 - x)
    return x, d


def test_the_logistic_loop_keeps_its_dual_pair_unboxed():
    """The pair (x, x') is taken apart once on entry; each step passes its two parts, no tuple."""
    src = reverse_source(LOGISTIC, "logistic")
    assert "a1_0, a1_1 = a1" in src
    assert "a0, a1_0, a1_1 = " in src
    assert "= a1\n" not in src.split("while True:")[1]  # no unpacking inside the loop
    assert "return (a1_0, a1_1)" in src


@pytest.mark.parametrize("n", [0, 1, 7, 100, 1000])
def test_logistic_gradient_unboxed_against_the_chain_rule(n, monkeypatch):
    y, g = run(LOGISTIC, args=[str(n)])
    x, d = logistic_by_hand(n)
    assert y == x
    assert math.isclose(g, d, rel_tol=1e-10)
    boxed(monkeypatch)
    assert repr(run(LOGISTIC, args=[str(n)])) == repr((y, g))  # the same operations in the same order


def test_counters_are_those_of_the_boxed_code(monkeypatch):
    (value, machine) = run_with_machine(LOGISTIC, args=["50"])
    boxed(monkeypatch)
    (value0, machine0) = run_with_machine(LOGISTIC, args=["50"])
    assert repr(value) == repr(value0)
    assert machine.counters.as_dict() == machine0.counters.as_dict()
    assert machine.counters.bp_created == 50


# Loops whose tuple arguments are not all written out, or whose tuple is also used whole.
LOOPS = """
def swap ((a, b) : Real * Real) = (b, a)
def norm ((a, b) : Real * Real) = a * a + b * b

-- one self call passes a tuple written out, the other a tuple computed elsewhere: stays boxed
def mix (n : Int) (p : Real * Real) =
  let (a, b) = p in
  if n == 0 then a * b
  else if n > 3 then mix (n - 1) (b, sin a)
  else mix (n - 1) (swap p)

-- every call passes a tuple written out, and the tuple is also used whole (passed to norm)
def whole (n : Int) (p : Real * Real) =
  if n == 0 then norm p
  else let (a, b) = p in whole (n - 1) (a * cos b, b + 0.1 * norm p)

-- a let rec loop whose tuple is captured by a closure, and whose other argument is a tuple too
def local (x : Real) =
  let rec go (n : Int) (p : Real * Real) (q : Real * Real) =
    if n == 0 then (fun z -> let (a, b) = p in let (c, d) = q in a * z + b * c + d) 2.0
    else let (a, b) = p in go (n - 1) (b, a * 0.5 + b) q
  in go 5 (x, x * x) (x, 1.0)

def main (x : Real) = (grad (fun x -> mix 6 (x, 2.0 * x)) x,
                       grad (fun x -> whole 4 (x, 0.5)) x,
                       grad local x)
"""


class D:
    """A forward-mode dual number, the oracle for the loops above (value, derivative)."""

    def __init__(self, v, d=0.0):
        self.v, self.d = v, d

    def __add__(self, o):
        o = o if isinstance(o, D) else D(o)
        return D(self.v + o.v, self.d + o.d)

    __radd__ = __add__

    def __mul__(self, o):
        o = o if isinstance(o, D) else D(o)
        return D(self.v * o.v, self.d * o.v + self.v * o.d)

    __rmul__ = __mul__


def sin(x): return D(math.sin(x.v), math.cos(x.v) * x.d)
def cos(x): return D(math.cos(x.v), -math.sin(x.v) * x.d)


def loops_by_hand(x0: float) -> tuple[float, float, float]:
    def mix(n, p):
        a, b = p
        while n != 0:
            p = (b, sin(a)) if n > 3 else (b, a)
            n -= 1
            a, b = p
        return a * b

    def norm(p):
        return p[0] * p[0] + p[1] * p[1]

    def whole(n, p):
        while n != 0:
            a, b = p
            p = (a * cos(b), b + 0.1 * norm(p))
            n -= 1
        return norm(p)

    def local(x):
        p, q = (x, x * x), (x, D(1.0))
        for _ in range(5):
            a, b = p
            p = (b, a * 0.5 + b)
        return p[0] * 2.0 + p[1] * q[0] + q[1]

    x = D(x0, 1.0)
    return mix(6, (x, 2.0 * x)).d, whole(4, (x, D(0.5))).d, local(x).d


@pytest.mark.parametrize("mode", EXACT_MODES)
def test_loops_with_tuples_not_written_out_against_the_chain_rule(mode):
    got = run(LOOPS, mode=mode, args=["0.7"])
    assert close(list(got), list(loops_by_hand(0.7)), rel=1e-9), (mode, got)


def test_which_loop_variables_are_unboxed():
    assert "a1_0" not in reverse_source(LOOPS, "mix")   # a computed tuple reaches one self call
    src = reverse_source(LOOPS, "whole")
    assert "a1_0, a1_1 = a1" in src and "(a1_0, a1_1)" in src.split("while True:")[1]  # rebuilt for norm


def test_unboxed_loops_agree_with_the_boxed_code(monkeypatch):
    value = run(LOOPS, args=["0.7"])
    boxed(monkeypatch)
    assert repr(run(LOOPS, args=["0.7"])) == repr(value)


def closure_by_hand(n: int, x: float, a: float, b: float) -> tuple[float, tuple[float, float, float]]:
    """x_{k+1} = tanh (a x_k + b): the derivatives in (x_0, a, b) by forward accumulation."""
    dx, da, db = 1.0, 0.0, 0.0
    for _ in range(n):
        y = math.tanh(a * x + b)
        w = 1.0 - y * y
        dx, da, db = w * a * dx, w * (x + a * da), w * (1.0 + a * db)
        x = y
    return x, (dx, da, db)


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_three_parent_records_against_the_chain_rule(n, monkeypatch):
    """W7: each step's record has three parents (x, and the closure's a and b), written by cases."""
    (y, g), machine = run_with_machine(CLOSURE, args=[str(n)])
    x, d = closure_by_hand(n, 0.5, 0.99, 0.001)
    assert math.isclose(y, x, rel_tol=1e-12)
    assert close(list(g), list(d), rel=1e-9)
    # the same numbers and counters as records built as lists (the code before)
    monkeypatch.setattr(linear, "_CASES", 2)
    (y0, g0), machine0 = run_with_machine(CLOSURE, args=[str(n)])
    assert repr((y, g)) == repr((y0, g0))
    assert machine.counters.as_dict() == machine0.counters.as_dict()


def test_three_parents_by_cases_with_absent_ones():
    """A three-parent record where some parents are constants (None): every combination of cases."""
    src = """
def f (x : Real) (y : Real) (z : Real) = tanh (x * y + z)
def main = (grad (fun x -> f x 2.0 0.5) 0.3, grad (fun y -> f 0.3 y 0.5) 2.0,
            grad (fun z -> f 0.3 2.0 z) 0.5, grad (fun (x, z) -> f x 2.0 z) (0.3, 0.5))
"""
    w = 1.0 - math.tanh(0.3 * 2.0 + 0.5) ** 2
    got = run(src)
    assert close(list(got[:3]) + list(got[3]), [2.0 * w, 0.3 * w, w, 2.0 * w, w], rel=1e-12)


# ---- links: the sweep of runs of one-parent records at C speed, against a sweep written out here

def reference_sweep(records: list, adj: list, n_sinks: int) -> list:
    """Factoring's sweep record by record, a link w at identity i read as (i - 1, w)."""
    adj = list(adj)
    for i in range(len(records) - 1, n_sinks - 1, -1):
        ct = adj[i]
        if ct is None:
            continue
        rec = records[i] if type(records[i]) is tuple else (i - 1, records[i])
        for k in range(0, len(rec), 2):
            p, w = rec[k], rec[k + 1]
            adj[p] = w * ct if adj[p] is None else adj[p] + w * ct
    return adj[:n_sinks]


def random_tape(rng, n_sinks: int, n: int, link_share: float, special: bool):
    """Records after n_sinks sinks: mostly links (runs of them), else records of 1 to 3 older parents;
    seeds at the top and, sometimes, in the middle of runs (a pending argument a run must stop at)."""
    def weight():
        if special and rng.random() < 0.02:
            return rng.choice([math.inf, -math.inf, math.nan, 0.0, -0.0, 1e300])
        return rng.uniform(-2.0, 2.0)
    records = [()] * n_sinks
    for i in range(n_sinks, n_sinks + n):
        if i > 0 and rng.random() < link_share:
            records.append(weight())
        else:
            k = rng.randint(1, 3)
            fields = []
            for _ in range(k):
                fields += [rng.randrange(0, i), weight()]
            records.append(tuple(fields))
    adj = [None] * len(records)
    adj[-1] = 1.0
    for _ in range(rng.randint(0, 4)):
        adj[rng.randrange(n_sinks, len(records))] = rng.uniform(-1.0, 1.0)
    return records, adj


@pytest.mark.parametrize("seed", range(60))
def test_runs_of_links_are_swept_as_record_by_record(seed):
    import random
    rng = random.Random(seed)
    n_sinks = rng.randint(1, 3)
    records, adj = random_tape(rng, n_sinks, rng.choice([5, 40, 300, 2000]), rng.choice([0.5, 0.9, 0.99, 1.0]),
                               special=seed % 3 == 0)
    expected = reference_sweep(records, adj, n_sinks)
    backend = linear.Factoring(None)
    backend._sweep(records, adj, n_sinks)
    assert repr(adj[:n_sinks]) == repr(expected)


def test_a_chain_with_a_pending_value_in_the_middle():
    """c = sin^3 x is used twice: by the chain sin^6 c and by the final sum, so the chain's run stops
    above c. d/dx (sin^6 (sin^3 x) + sin^3 x) by hand."""
    src = """
def iter (n : Int) (x : Real) = if n == 0 then x else iter (n - 1) (sin x)
def main (x : Real) = grad (fun x -> let c = iter 3 x in iter 6 c + c) x
"""
    def by_hand(x, n):
        d = 1.0
        for _ in range(n):
            d *= math.cos(x)
            x = math.sin(x)
        return x, d
    c, dc = by_hand(0.4, 3)
    _, dy = by_hand(c, 6)
    got = run(src, args=["0.4"])
    assert math.isclose(got, dy * dc + dc, rel_tol=1e-13)


@pytest.mark.parametrize("n", [10, 1000, 3000])
def test_links_give_the_general_records_bits_and_counters(n, monkeypatch):
    """With links and their C-speed runs, or with every record a tuple swept one by one: the same value and
    gradient to the bit (n = 3000 overflows to a non-finite gradient: the order-free pass), the same counters."""
    fast = run(LOGISTIC, args=[str(n)])
    (_, counted) = run_with_machine(LOGISTIC, args=[str(n)])
    monkeypatch.setattr(linear.Factoring, "links", False)
    assert repr(run(LOGISTIC, args=[str(n)])) == repr(fast)
    (_, counted0) = run_with_machine(LOGISTIC, args=[str(n)])
    assert counted.counters.as_dict() == counted0.counters.as_dict()
