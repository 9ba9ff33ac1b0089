"""The order-free pass's two shortcuts give what the long way gives, bit for bit, with the same counters.

Where a gradient comes out inf or nan, the kernel sums ←D's own paths again with `Paths` seeds
(docs/transforms.md, Zeros and infinities). Two shortcuts of that pass:

1. a scalar entry (lang/back/entries.py) that finds a float of its gradient not finite takes the
   order-free pass at once (`order_free_gradient`), where it used to hand the call to the general path,
   which ran the entry's own pass a second time before the order-free one;
2. the order-free sweep on floats (`Factoring.paths_values`) checks the records as it runs them
   (lang/back/linear.py, `_sweep_finite`) rather than the whole tape first.

The long way, the oracle: entries off (the general path) and `paths_values` off (the sweep that keeps
the kinds of its terms decides every order-free value). Random programs with unguarded log, sqrt,
division, exp, overflowing constants and loops, at points with zeros of both signs, infinities, nan and
overflowing values, through `grad`, `value_and_grad` and `vjp` (several cotangents, -0.0 among them),
on a tuple, a list and a loop; with and without preaccumulation. Each float is compared by its bits, the
sign of a nan included.
"""
import math
import random
import struct

import pytest

from conftest import load_source
from lang.back import kernel as kernel_module
from lang.back.deep import run_deep
from lang.back.linear import Factoring
from lang.model.errors import DlError
from lang.modes.table import get
from lang.tools.pipeline import run_main
from test_zeros import random_expression

LITERAL = {math.inf: "(1.0 / 0.0)", -math.inf: "(-1.0 / 0.0)"}
POINTS = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 700.0, 1e200, -1e300, math.inf, -math.inf, math.nan]
SCOPE = ["x", "y", "x", "y", "1e200", "(-1e300)"]


def literal(r: float) -> str:
    if r != r:
        return "(0.0 / 0.0)"
    return LITERAL.get(r, f"({r!r})")


def program(rng: random.Random) -> str:
    """f on a pair, g on a list, h a loop of n steps of an expression, each differentiated three ways."""
    e1, e2, e3 = (random_expression(rng, SCOPE, 4) for _ in range(3))
    steps = rng.choice([2, 5, 40])
    calls = []
    for fn, shape in (("f", "({}, {})"), ("g", "[{}, {}, {}]"), (f"h {steps}", "({}, {})")):
        point = shape.format(*(literal(rng.choice(POINTS)) for _ in range(shape.count("{}"))))
        calls.append(f"value_and_grad ({fn}) {point}")
        calls.append(f"grad ({fn}) {point}")
        calls.append(f"let (v, pb) = vjp ({fn}) {point} in (v, pb 1.0, pb 0.0, pb (-0.0), pb (-2.5))")
    return (f"def f (x, y) = {e1}\n"
            f"def g xs = let x = head xs in let y = get xs 1 in sum (map (fun x -> {e2}) xs)\n"
            f"def loop (n : Int) (x : Real) (y : Real) = if n == 0 then x else loop (n - 1) ({e3}) y\n"
            f"def h (n : Int) (p : Real * Real) = let (x, y) = p in loop n x y\n"
            f"def main = ({', '.join(calls)})\n")


def bits(v):
    """A value with each float as its IEEE bit pattern (a nan's sign and payload, a zero's sign kept)."""
    if isinstance(v, (tuple, list)):
        return type(v)(bits(x) for x in v)
    return struct.pack("<d", v).hex() if type(v) is float else v


def outcome(text: str, monkeypatch, shortcuts: bool, preaccumulate: bool):
    """(the value's bits, the counters) of `main`, with the shortcuts or the long way."""
    prog = load_source(text)
    with monkeypatch.context() as m:
        if not shortcuts:
            m.setattr(kernel_module, "scalar_entry", lambda *a: None)
            m.setattr(Factoring, "paths_values", lambda self, *a: None)
        try:
            value, machine = run_deep(lambda: run_main(prog, [], get("backprop"), False, preaccumulate=preaccumulate))
        except DlError as err:  # (a run-time error must be the same error both ways)
            return ("error", err.kind, str(err)), None
    return bits(value), machine.counters.as_dict()


@pytest.mark.parametrize("preaccumulate", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_the_shortcuts_give_the_long_ways_values_and_counters(seed, preaccumulate, monkeypatch):
    rng = random.Random(seed)
    order_free = 0
    for _ in range(12):
        text = program(rng)
        fast, fast_counts = outcome(text, monkeypatch, True, preaccumulate)
        slow, slow_counts = outcome(text, monkeypatch, False, preaccumulate)
        assert fast == slow, text
        assert fast_counts == slow_counts, text
        order_free += fast_counts.get("order_free_passes", 0) if fast_counts else 0
    # (the programs are made to reach the order-free pass: of their 12 * 18 derivatives, a good part do)
    assert order_free >= 40


def test_the_logistic_maps_nan_bit_for_bit(monkeypatch):
    """W2 at n = 3000 (benchmarks/workloads/w2_logistic.dl): the derivative overflows, ←D's own paths meet
    as inf - inf; value, gradient and `order_free_passes` as the long way gives them, in all three entries."""
    text = ("def logistic (n : Int) (x : Real) = if n == 0 then x else logistic (n - 1) (3.7 * x * (1.0 - x))\n"
            "def main = (value_and_grad (logistic 3000) 0.3, grad (logistic 3000) 0.3,"
            " let (v, pb) = vjp (logistic 3000) 0.3 in (v, pb 1.0, pb 0.0))\n")
    fast, fast_counts = outcome(text, monkeypatch, True, True)
    slow, slow_counts = outcome(text, monkeypatch, False, True)
    assert fast == slow
    assert fast_counts == slow_counts
    assert fast_counts["order_free_passes"] == 3  # (the cotangent 0.0 times finite weights stays finite)
    assert math.isnan(struct.unpack("<d", bytes.fromhex(fast[0][1]))[0])
