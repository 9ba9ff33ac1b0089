"""The scalar entries' short cuts (lang/back/quick.py): lifting a closure directly, sweeping a short tape or a chain.

Each must be invisible: the same values bit for bit as the entries without them (and as the kernel's
general path), right against gradients worked out by hand, and taken where they claim to apply (else
this file tests nothing). The sweep is also compared record by record with `Factoring.sweep_one` on
tapes built here, inf, nan and -0.0 weights included.
"""
import math
import random
import re

import pytest

from conftest import load_source, run
from lang.back import entries as entries_module
from lang.back import kernel as kernel_module
from lang.back import quick
from lang.back.compiler import Counters
from lang.back.deep import run_deep
from lang.back.kernel import ADKernel
from lang.back.linear import GENERIC, SINK, Factoring
from lang.back.machine import Machine
from lang.front.loader import World
from lang.model.values import Code, Fun
from lang.modes.table import get
from lang.tools.pipeline import run_main


def bits(v):
    """A value with each float as its bit pattern (-0.0 kept apart from 0.0), for exact comparison."""
    if isinstance(v, (tuple, list)):
        return type(v)(bits(x) for x in v)
    return float(v).hex() if type(v) is float else v


def flat(v):
    """The floats of a nested value, in order (for pytest.approx)."""
    if isinstance(v, (tuple, list)):
        return [y for x in v for y in flat(x)]
    return [v]


def run_three(text, counting=False):
    """main's value and counters with the short cuts, with the entries but without the short cuts, and on the
    kernel's general path (no entries)."""
    program = load_source(text)

    def once():
        value, machine = run_deep(lambda: run_main(program, [], get("backprop"), counting))
        return value, machine.counters.as_dict()
    mp = pytest.MonkeyPatch()
    try:
        quick_run = once()
        mp.setattr(entries_module, "plain_lifter", lambda compiler: (lambda f: (None, None)))
        mp.setattr(entries_module, "partial_lifter", lambda compiler: False)
        mp.setattr(entries_module, "sweep_short", lambda sweep_one: sweep_one)
        entry_run = once()
        mp.setattr(kernel_module, "scalar_entry", lambda *a: None)
        general_run = once()
    finally:
        mp.undo()
    return quick_run, entry_run, general_run


def top_lifts(monkeypatch):
    """Per entry call, how f was lifted: "quick" (`plain_lifter`) or "general" (the kernel's `lift_fun`)."""
    calls = []
    original = entries_module.plain_lifter

    def lifter(compiler):
        lift = original(compiler)
        return lambda f: (lambda out: calls.append("general" if out[0] is None else "quick") or out)(lift(f))
    monkeypatch.setattr(entries_module, "plain_lifter", lifter)
    return calls


LOGISTIC = "def logistic (n : Int) (x : Real) = if n == 0 then x else logistic (n - 1) (3.7 * x * (1.0 - x))\n"


def logistic_oracle(n, x):
    """x_n and d x_n / d x_0 by hand: the product of the steps' derivatives 3.7 (1 - 2 x_k)."""
    d = 1.0
    for _ in range(n):
        d *= 3.7 * (1.0 - 2.0 * x)
        x = 3.7 * x * (1.0 - x)
    return x, d


# (program, expected by hand, how each call lifts f: the first call of a lambda's code, or of a top-level
# function not lifted before, makes its transform by the general lift; later calls take the short cut)
CASES = [
    # W2: a top-level function applied to an Int, on every call of the map (written at the site: after the first
    # call, which lifts the closure, the entry takes logistic and n with its own lift: `partial_lifter`)
    (LOGISTIC + "def main = map (fun n -> value_and_grad (logistic n) 0.3) [0, 1, 10, 40]",
     [logistic_oracle(n, 0.3) for n in (0, 1, 10, 40)], ["general"]),
    # the same closure made apart from the site: `plain_lifter` lifts it on every call
    (LOGISTIC + "def main = map (fun n -> let f = logistic n in value_and_grad f 0.3) [0, 1, 10, 40]",
     [logistic_oracle(n, 0.3) for n in (0, 1, 10, 40)], ["general", "quick", "quick", "quick"]),
    # a captured Real that changes between calls (-0.0 included): d/dx a x^2 = 2 a x
    ("def main = map (fun a -> value_and_grad (fun x -> a * x * x) 2.0) [1.0, -0.0, 3.0, -2.5]",
     [(4.0 * a, 4.0 * a) for a in (1.0, -0.0, 3.0, -2.5)], ["general", "quick", "quick", "quick"]),
    # a closure capturing a closure that captures a Real: d/dx (a x) x = 2 a x
    ("def main = map (fun a -> let g = fun y -> a * y in grad (fun x -> g x * x) 3.0) [1.0, 2.0, 4.0]",
     [6.0 * a for a in (1.0, 2.0, 4.0)], ["general", "quick", "quick"]),
    # a partial application to a tuple holding a Real and an Int, a Bool, a String and a list of Ints
    ("def h ((a, k) : Real * Int) (b : Bool) (s : String) (ns : [Int]) (x : Real) =\n"
     "  if b then a * float (k + length ns) * x * x else x\n"
     "def main = map (fun a -> grad (h (a, 2) true \"data.csv\" [1, 2]) 1.5) [1.0, 0.5]",
     [a * 4.0 * 2.0 * 1.5 for a in (1.0, 0.5)], ["general", "quick"]),
    # a partial application of a closure (not a top-level function): d/dx a x^3 = 3 a x^2
    ("def main = map (fun a -> let k = fun (m : Int) (x : Real) -> a * x * x * x in grad (k 2) 2.0) [1.0, 3.0]",
     [12.0 * a for a in (1.0, 3.0)], ["general", "quick"]),
    # W5's `loss x t`: a partial application of a top-level function to a list of Reals (-0.0, inf among them)
    # and a Real, called as its transform with them lifted: d/dw sum_i x_i w_i - t, squared = 2 e x
    ("def loss (x : [Real]) (t : Real) (w : [Real]) = let e = dot x w - t in e * e\n"
     "def main = map (fun t -> value_and_grad (loss [1.0, -0.0, 2.0] t) [0.5, 3.0, 0.25]) [1.0, 2.0, -1.0]",
     [((1.0 - t) ** 2, [2.0 * (1.0 - t) * x for x in (1.0, -0.0, 2.0)]) for t in (1.0, 2.0, -1.0)],
     ["general", "quick", "quick"]),
    # a closure capturing a list of lists of Reals and a list of pairs: d/dx (sum_ij m_ij + sum_k a_k b_k) x^2
    ("def main = map (fun s -> let m = [[s, 2.0], [], [3.0]] in let ps = [(s, 2.0)] in\n"
     "  grad (fun x -> (sum (map sum m) + sum (map (fun (a, b) -> a * b) ps)) * x * x) 1.5) [1.0, 4.0]",
     [(s + 5.0 + 2.0 * s) * 3.0 for s in (1.0, 4.0)], ["general", "quick"]),
    # a nested grad inside: the inner one runs in ←D's language, the outer entry lifts the closure capturing a
    # d/dx of (d/dy a x y^2 at y = x) = d/dx 2 a x^2 = 4 a x
    ("def main = map (fun a -> grad (fun x -> grad (fun y -> a * x * y * y) x) 1.5) [1.0, 2.0]",
     [6.0 * a for a in (1.0, 2.0)], ["general", "quick"]),
]


@pytest.mark.parametrize("text, expected, lifts", CASES)
def test_closures_against_the_hand_gradient_and_the_general_path(text, expected, lifts, monkeypatch):
    quick_run, entry_run, general_run = run_three(text)
    assert flat(quick_run[0]) == pytest.approx(flat(expected), rel=1e-9)
    assert bits(quick_run[0]) == bits(entry_run[0]) == bits(general_run[0])
    assert quick_run[1] == entry_run[1] == general_run[1]
    calls = top_lifts(monkeypatch)
    run(text)
    assert calls == lifts


def test_a_changing_real_that_overflows(monkeypatch):
    """A captured Real whose gradient is inf on one call: that call's gradient is the order-free pass's (as the
    general path gives it), the other calls' the short cuts'; every value as without them."""
    text = "def main = map (fun a -> value_and_grad (fun x -> a * x * x) 2.0) [1.0, 1e308, -1e308, 2.0]"
    quick_run, entry_run, general_run = run_three(text)
    assert bits(quick_run[0]) == bits(entry_run[0]) == bits(general_run[0])
    assert quick_run[0][1] == (math.inf, math.inf) and quick_run[0][2] == (-math.inf, -math.inf)
    assert quick_run[0][3] == (8.0, 8.0)  # (a x^2 at a = x = 2: 8, and 2 a x = 8)
    calls = top_lifts(monkeypatch)
    run(text)
    assert calls == ["general", "quick", "quick", "quick"]


def test_counting_is_unchanged():
    """--cost turns the entries off: the counters are the general path's, with or without the short cuts."""
    text = LOGISTIC + "def main = map (fun a -> grad (fun x -> a * logistic 5 x) 0.3) [1.0, 2.0]"
    quick_run, entry_run, general_run = run_three(text, counting=True)
    assert bits(quick_run[0]) == bits(general_run[0])
    assert quick_run[1] == entry_run[1] == general_run[1]
    assert quick_run[1]["bp_created"] > 0


def test_lift_plain_is_lift_fun():
    """On closures of every kind it takes, the direct lift builds what the kernel's lift builds: the same code,
    captured values equal bit for bit (Reals as (r, None), functions lifted alike); for a partial application of a
    top-level function, that function's transform and the arguments the lifted partial application holds; for
    what it does not take, (None, None)."""
    text = ("def top (x : Real) = x\ndef top2 (k : Int) (x : Real) = float k * x\n"
            "def top3 (xs : [[Real]]) (k : Int) (x : Real) = float k * x * sum (map sum xs)\n"
            "def main = let a = -0.0 in let b = 2.5 in let g = fun y -> a * y + b in "
            "[fun x -> g x * x, fun x -> top x + a, fun x -> if length [1, 2] == 2 then b * x else x, top2 3,"
            " top3 [[1.0, -0.0], [], [b]] 2]")
    program = load_source(text)
    fns, machine = run_deep(lambda: run_main(program, [], get("backprop")))
    compiler = machine.ad.top_reverse(machine.runtime)
    lift = quick.plain_lifter(compiler)

    def shape(v):
        if type(v) is Fun:
            return ("fun", id(v.code), shape(v.captured))
        if type(v) in (tuple, list):
            return type(v)(shape(x) for x in v)
        return bits(v)
    for f in fns[:3]:
        assert lift(f) == (None, None)  # the lambda's transform is not made yet: the general lift makes it
        general = machine.ad.lift_fun(f, compiler, {})
        direct, given = lift(f)
        assert given is None and shape(direct) == shape(general)
    assert lift(fns[3]) == (None, None)  # (top2 not lifted yet)
    general = machine.ad.lift_fun(fns[3], compiler, {})
    direct, given = lift(fns[3])
    assert direct is general.captured[0] and given == general.captured[1] == (3,)
    general = machine.ad.lift_fun(fns[4], compiler, {})  # (a list of lists of Reals: lifted, as the kernel lifts it)
    direct, given = lift(fns[4])
    assert direct is general.captured[0] and bits(given) == bits(general.captured[1])
    assert bits(given) == bits(([[(1.0, None), (-0.0, None)], [], [(2.5, None)]], 2))
    assert quick.plain_lifter(machine.ad.reverse_compiler(machine.runtime, 1))(fns[0]) == (None, None)  # (depth 1)
    # a closure that captures itself (as a local recursive function does): met again within a few levels, it is
    # left to the general lift, whose memo ties the knot
    cyc = Fun(fns[0].code, ())
    cyc.captured = tuple(cyc if type(v) is Fun else v for v in fns[0].captured)
    assert any(v is cyc for v in cyc.captured) and lift(cyc) == (None, None)


# ---- the sweep, against the backend's on tapes built here

WEIGHTS = [0.5, -1.25, 3.0, 1e300, -1e300, 0.0, -0.0, math.inf, -math.inf, math.nan, 1e-300, 7.0]


def sweeps():
    """Factoring's own sweep_one and the entries' sweep over it."""
    backend = Factoring(Counters())
    return backend, backend.sweep_one, quick.sweep_short(backend.sweep_one)


def random_tape(rng, n_sinks, length, shapes):
    """A tape: n_sinks sinks, then `length` records, each a link or a record of 1-3 parents below it."""
    records = [SINK] * n_sinks
    for i in range(n_sinks, n_sinks + length):
        kind = rng.choice(shapes)
        if kind == 0:
            records.append(rng.choice(WEIGHTS))
        else:
            fields = []
            for _ in range(kind):
                fields += [rng.randrange(i), rng.choice(WEIGHTS)]
            records.append(tuple(fields))
    return records


@pytest.mark.parametrize("seed", range(40))
def test_the_sweep_is_sweep_ones(seed):
    rng = random.Random(seed)
    backend, general, sweep = sweeps()
    n_sinks = rng.randint(1, 3)
    for length in (0, 1, 5, 31, 32, 33, 70):
        for shapes in ([0], [0, 1], [0, 1, 2, 3], [1, 2, 3]):
            records = random_tape(rng, n_sinks, length, shapes)
            top = len(records) - 1
            for p, ct in ((top, 1.0), (top, -2.5), (rng.randrange(len(records)), 0.75), (top, math.inf)):
                expected = general(records, p, ct, n_sinks)[:n_sinks]
                assert bits(sweep(records, p, ct, n_sinks)[:n_sinks]) == bits(expected), (length, shapes, p)


def test_a_chain_is_one_product_and_others_go_record_by_record(monkeypatch):
    """A chain of links from the seed: one product, the same bits as the backend's sweep; a record the loop
    does not know (a generic body, four parents) restarts on the backend's sweep, with the same result."""
    backend, general, sweep = sweeps()
    chain = [SINK, SINK] + [0.9, -1.1, 1e300, 1e10, 0.5] * 3
    assert bits(sweep(chain, len(chain) - 1, 1.0, 2)[:2]) == bits(general(chain, len(chain) - 1, 1.0, 2)[:2])
    assert sweep(chain, len(chain) - 1, 1.0, 2)[1] == -math.inf  # (an overflow, signed as the sweep's)
    # one record, the seed's, its parents the same sink or not (x * x, x * y, a closure's three reals)
    for one in [(0, 2.0, 0, 3.0), (1, -0.0, 0, 1e308), (0, 1e308, 0, 1e308), (2, 0.5, 0, -1.0, 2, math.nan),
                (1, 1.0, 1, 2.0, 1, 3.0)]:
        tape = [SINK, SINK, SINK, one]
        for ct in (1.0, -0.0, 2.5):
            assert bits(sweep(tape, 3, ct, 3)[:3]) == bits(general(tape, 3, ct, 3)[:3]), (one, ct)

    def body(captured, ct):  # a generic record: adds 2 ct to the first sink
        backend.contribute(0, captured[0] * ct)
    generic = (GENERIC, Code(1, body), (2.0,))
    for tape in ([SINK, SINK, 3.0, generic, (3, 0.5, 1, 4.0)], [SINK, SINK, (0, 1.0, 1, 2.0, 0, 3.0, 1, 4.0), 0.5]):
        calls = []
        monkeypatch.setattr(backend, "sweep_one", lambda *a, _g=general: calls.append(1) or _g(*a))
        quick_sweep = quick.sweep_short(backend.sweep_one)
        assert bits(quick_sweep(tape, len(tape) - 1, 1.5, 2)[:2]) == bits(general(tape, len(tape) - 1, 1.5, 2)[:2])
        assert calls == [1]


# ---- a partial application of a top-level function, made by the compiled code (lang/back/compiler.py, `call`)

PARTIALS = "def h (a : Real) (b : Real) (c : Real) = a + b * c\n"


@pytest.mark.parametrize("mode", ["backprop", "tape", "forward", "numeric"])
def test_a_partial_application_of_a_top_level_function_is_apply_s(mode):
    """`h 1.0` for a top-level h of three parameters is the Fun `apply` makes: the same values, the same counters
    as through a local name (which goes through `apply`), in primal code and inside a derivative."""
    direct = PARTIALS + ("def main = let p = h 1.0 in let q = h 1.0 2.0 in "
                         "(p 2.0 3.0, q 3.0, grad (fun x -> h x 2.0 x) 0.5, grad (h 1.0 2.0) 4.0, "
                         "grad (fun x -> let r = h x in r x x) 3.0)")
    through = PARTIALS + ("def main = let g = h in let p = g 1.0 in let q = g 1.0 2.0 in "
                          "(p 2.0 3.0, q 3.0, grad (fun x -> g x 2.0 x) 0.5, grad (g 1.0 2.0) 4.0, "
                          "grad (fun x -> let r = g x in r x x) 3.0)")
    for counting in (False, True):
        a, ma = run_deep(lambda: run_main(load_source(direct), [], get(mode), counting))
        b, mb = run_deep(lambda: run_main(load_source(through), [], get(mode), counting))
        assert bits(a) == bits(b)
        assert ma.counters.as_dict() == mb.counters.as_dict()
    # by hand: 1 + 2 * 3, 1 + 2 * 3, d/dx (x + 2x) = 3, d/dc (1 + 2c) = 2, d/dx (x + x^2) = 1 + 2x = 7
    assert a == pytest.approx((7.0, 7.0, 3.0, 2.0, 7.0))


def generated(text):
    """The generated Python of every function compiled while running `text`."""
    from lang.back.compiler import Gen
    sources = []
    original = Gen.build

    def build(self, name):
        out = original(self, name)
        sources.append(self.source)
        return out
    mp = pytest.MonkeyPatch()
    mp.setattr(Gen, "build", build)
    try:
        run(text)
    finally:
        mp.undo()
    return "\n".join(sources)


def test_the_generated_call_makes_the_partial_application():
    """Direct: one Fun built in place; through a local name: `apply` (what the test above compares it with)."""
    direct = generated(PARTIALS + "def main = let p = h 1.0 in p 2.0 3.0")
    assert re.search(r"v\d+ = _Fun\(k\d+, \(k\d+, \(1\.0,\)\)\)", direct)
    through = generated(PARTIALS + "def main = let g = h in let p = g 1.0 in p 2.0 3.0")
    assert "_apply(" in through and "_Fun(" not in through
