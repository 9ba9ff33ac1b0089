"""The compiler's output for representative terms, as golden Python source (lang/back/compiler.py).

The generated code is what runs; these tests pin its shape — a primitive written inline, a fold
written as a loop, a self tail call written as `while True`, a backpropagator written as one record
append — and check that each function computes what the term means.
"""
import math

from conftest import load_source
from lang.back.deep import run_deep
from lang.back.machine import Machine
from lang.modes.table import get

PROGRAM = """
def f x = x * (1.0 - x)
def total xs = fold (fun acc x -> acc + sin x * x) 0.0 xs
def count (n : Int) (acc : Int) = if n == 0 then acc else count (n - 1) (acc + 1)
def g x = x * sin x
def main = 1.0
"""


def compiled(name: str, mode: str = "backprop", reverse: bool = False, faithful: bool = True):
    """A definition compiled in the primal language, or (`reverse`) by ←D: the transform's own term unless
    `faithful` is False (then preaccumulated, as backprop runs it)."""
    program = load_source(PROGRAM)
    machine = Machine(program.world, get(mode))
    compiler = machine.ad.reverse_compiler(machine.runtime, 0, faithful) if reverse else machine.primal
    return run_deep(lambda: compiler.global_value("test.dl", name, ()))


def test_a_primitive_is_written_inline():
    fun = compiled("f")
    assert fun.code.info["python"] == """\
def factory():
    def body(c, a0):
        v1 = 1.0 - a0
        v2 = a0 * v1
        return v2
    return body
"""
    assert fun.body((), 0.25) == 0.25 * 0.75


def test_fold_on_a_lambda_is_a_loop():
    fun = compiled("total")
    assert fun.code.info["python"] == """\
def factory(k0, k1):
    def body(c, a0):
        v1 = 0.0
        for v2 in a0:
            try:
                v3 = k0(v2)
            except (ArithmeticError, ValueError):
                v3 = k1(v2)
            v4 = v3 * v2
            v5 = v1 + v4
            v1 = v5
        return v1
    return body
"""
    xs = [0.1, 0.2, 0.3]
    assert math.isclose(fun.body((), xs), sum(math.sin(x) * x for x in xs), rel_tol=1e-15)


def test_a_self_tail_call_is_a_loop():
    fun = compiled("count")
    assert fun.code.info["python"] == """\
def factory():
    def body(c, a0, a1):
        while True:
            v1 = a0 == 0
            if v1:
                return a1
            else:
                v2 = a0 - 1
                v3 = a1 + 1
                a0, a1 = v2, v3
                continue
    return body
"""
    assert fun.body((), 1_000_000, 0) == 1_000_000  # constant stack


def test_a_backpropagator_is_one_record():
    """←D(g) for g x = x * sin x: sin's backpropagator and the product's are records of (parent, weight)
    pairs appended to the tape R; a constant (None) parent is left out by a branch; a record whose one
    parent is the record just below it is its weight alone (a link)."""
    fun = compiled("g", reverse=True)
    assert fun.code.info["python"] == """\
def factory(k0, k1, k2, k3, k4):
    def body(c, a0):
        R = k2.records
        v1, v2 = a0
        try:
            v3 = k0(v1)
        except (ArithmeticError, ValueError):
            v3 = k1(v1)
        if v2 is None:
            v4 = None
        else:
            try:
                v5 = k3(v1)
            except (ArithmeticError, ValueError):
                v5 = k4(v1)
            v4 = len(R)
            if v2 == v4 - 1:
                R.append(v5)
            else:
                R.append((v2, v5))
        v6 = v1 * v3
        if v2 is None:
            if v4 is None:
                v7 = None
            else:
                v7 = len(R)
                if v4 == v7 - 1:
                    R.append(v1)
                else:
                    R.append((v4, v1))
        else:
            if v4 is None:
                v7 = len(R)
                if v2 == v7 - 1:
                    R.append(v3)
                else:
                    R.append((v2, v3))
            else:
                v7 = len(R)
                R.append((v2, v3, v4, v1))
        return (v6, v7)
    return body
"""
    backend = compiled_backend(fun)
    backend.records = [()]  # the input's sink is identity 0
    value, identity = fun.body((), (0.5, 0))
    assert value == 0.5 * math.sin(0.5)
    assert backend.records[1:] == [math.cos(0.5), (0, math.sin(0.5), 1, 0.5)]  # (0, cos 0.5): a link
    assert identity == 2


def test_preaccumulated_the_product_and_sin_are_one_record():
    """Preaccumulated (docs/transforms.md, Preaccumulation), ←D(g) for g x = x * sin x records one
    backpropagator whose weight is the whole derivative sin x + x cos x, computed when it is created."""
    fun = compiled("g", reverse=True, faithful=False)
    backend = compiled_backend(fun)
    backend.records = [()]
    value, identity = fun.body((), (0.5, 0))
    assert value == 0.5 * math.sin(0.5)
    [weight] = backend.records[1:]  # a link: its one parent is the record just below, the input's sink
    assert identity == 1
    assert math.isclose(weight, math.sin(0.5) + 0.5 * math.cos(0.5), rel_tol=1e-15)


def compiled_backend(fun):
    """The linear backend whose records the compiled ←D code appends to (its constant k2)."""
    return next(cell.cell_contents for cell in fun.body.__closure__ if hasattr(cell.cell_contents, "records"))
