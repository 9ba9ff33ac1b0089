"""Chains of scaled steps (lang/back/chains.py, `scaled`): a fold whose step scales its accumulator and adds
into parents fixed for the loop's run (W7's `iterate n (step a b) x`, its step inlined by fusion) records
one list per loop instead of one record per step.

None of it may show: the programs' values and gradients the same bits as the step-by-step records (chains
turned off) and as the counting machine, on finite, infinite, nan and -0.0 inputs, with parents that
coincide or are the chain's own start; and the chain's sweep equal, bit for bit, to the sweep of the records
it stands for, on any weights, cotangents and pending arguments, `Paths` seeds included.
"""
import math

import pytest
from hypothesis import given, settings, strategies as st

from lang.back.chains import fold_chain, scaled, sweep_scaled
from lang.back.compiler import Counters
from lang.back.linear import SINK, Factoring
from lang.model import core as c
from lang.model.zeros import ZERO, Paths

from test_fold_chains import FLOATS, _in_thread, bits

PROGRAM = """\
def step a b x = tanh (a * x + b)
def w7 (n : Int) ((x, a, b) : Real * Real * Real) = iterate n (step a b) x
def vg7 (n : Int) (p : Real * Real * Real) = value_and_grad (w7 n) p
def same (n : Int) ((x, a) : Real * Real) = let c = a in iterate n (step a c) x
def vgsame (n : Int) (p : Real * Real) = value_and_grad (same n) p
def start (n : Int) ((x, b) : Real * Real) = iterate n (step x b) x
def vgstart (n : Int) (p : Real * Real) = value_and_grad (start n) p
def scale (n : Int) ((x, a) : Real * Real) = iterate n (fun y -> a * y) x
def vgscale (n : Int) (p : Real * Real) = value_and_grad (scale n) p
def three (n : Int) ((x, a, b, d) : Real * Real * Real * Real) = iterate n (fun y -> a * y + b * d * y + d) x
def vgthree (n : Int) (p : Real * Real * Real * Real) = value_and_grad (three n) p
def const (n : Int) (x : Real) = iterate n (step 0.9 0.1) x
def vgconst (n : Int) (x : Real) = value_and_grad (const n) x
def nested (n : Int) ((x, a) : Real * Real) = iterate n (fun y -> iterate 3 (step a y) y) x
def vgnested (n : Int) (p : Real * Real) = value_and_grad (nested n) p
def vjp7 (n : Int) (p : Real * Real * Real) (u : Real) = snd (vjp (w7 n) p) u
"""


def call(name: str, *args, chains: bool = True, counting: bool = False):
    """`name args` on a fresh machine running backprop, with chains or with the step-by-step records."""
    from lang.back.machine import Machine
    from lang.front.loader import Loader, World
    from lang.model.spans import Source
    from lang.model.values import apply
    from lang.modes.table import get

    def go():
        world = World()
        loader = Loader(world)
        loader.load_prelude()
        mod = loader.load_source(Source("scaled.dl", PROGRAM), "scaled.dl")
        machine = Machine(world, mode=get("backprop"), counting=counting)
        return apply(machine.global_value(mod.id, name, ()), args)
    if chains:
        return _in_thread(go)
    saved = Factoring.fold_chain
    Factoring.fold_chain = lambda self, fn, depth: None
    try:
        return _in_thread(go)
    finally:
        Factoring.fold_chain = saved


def same_bits(name, *args):
    """The value with chains, checked against the step-by-step records and the counting machine."""
    fast = call(name, *args)
    assert bits(fast) == bits(call(name, *args, chains=False))
    assert bits(fast) == bits(call(name, *args, counting=True))
    return fast


def by_hand(n, x, a, b):
    """W7 in Python: the value and d/d(x, a, b) by the chain rule, step by step."""
    dx, da, db = 1.0, 0.0, 0.0
    for _ in range(n):
        y = math.tanh(a * x + b)
        w = 1.0 - y * y
        dx, da, db = w * a * dx, w * (x + a * da), w * (1.0 + a * db)
        x = y
    return x, (dx, da, db)


@pytest.mark.parametrize("n", [0, 1, 2, 10, 200])
def test_w7_against_the_chain_rule(n):
    y, g = same_bits("vg7", n, (0.5, 0.99, 0.001))
    want_y, want_g = by_hand(n, 0.5, 0.99, 0.001)
    assert y == pytest.approx(want_y, rel=1e-13) and g == pytest.approx(want_g, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("p", [(0.5, 0.99, 0.001), (-0.0, 1.0, -0.0), (1.0, math.inf, 0.0), (math.nan, 0.5, 0.1),
                               (0.3, -2.0, 1e308), (2.0, 0.0, 0.0)])
def test_w7_non_finite_and_signed_zeros_bit_for_bit(p):
    same_bits("vg7", 5, p)


@pytest.mark.parametrize("u", [1.0, -0.0, math.inf, math.nan])
def test_w7_vjp_bit_for_bit(u):
    same_bits("vjp7", 7, (0.5, 0.99, 0.001), u)


@pytest.mark.parametrize("name,p", [("vgsame", (0.5, 0.7)), ("vgstart", (0.5, 0.2)), ("vgscale", (0.5, 1.1)),
                                    ("vgthree", (0.5, 0.3, -0.2, 0.1)), ("vgnested", (0.4, 0.6)),
                                    ("vgsame", (-0.0, math.inf)), ("vgstart", (math.nan, 1.0))])
def test_parents_that_coincide_or_are_the_start(name, p):
    """`step a c` with c = a: both fixed parents one sink (`step a a` itself is not specialised:
    tests/test_specialising.py); `step x b` from x: the chain's prev among its parents; one fixed parent, three
    (the field-by-field sweep), a chain inside another loop's steps."""
    for n in (1, 4, 40):
        same_bits(name, n, p)


def test_a_constant_closure():
    """`step 0.9 0.1`: no fixed parent present, the step's record is a link (no chain)."""
    y, g = same_bits("vgconst", 30, 0.5)
    want_y, (want_g, _, _) = by_hand(30, 0.5, 0.9, 0.1)
    assert y == pytest.approx(want_y, rel=1e-13) and g == pytest.approx(want_g, rel=1e-12)


def test_the_step_is_inlined_and_chained():
    """W7's fold step is `step`'s body (fusion.py, `specialise`) and its records one chain (not counting)."""
    from lang.back import chains as chains_module, entries as entries_module
    seen = []
    saved = chains_module.sweep_scaled

    def spy(rec, adj, ct):
        seen.append((len(rec) - 2) // (len(rec[1][1]) + 1))
        return saved(rec, adj, ct)
    chains_module.sweep_scaled = entries_module.sweep_scaled = spy  # (the entry calls it on a tape of one chain)
    try:
        call("vg7", 25, (0.5, 0.99, 0.001))
    finally:
        chains_module.sweep_scaled = entries_module.sweep_scaled = saved
    assert seen == [25]


# ---- the chain's sweep against the sweep of the records it stands for

@st.composite
def scaled_chains(draw):
    sinks = draw(st.integers(1, 5))
    fixed = draw(st.integers(1, 3))
    k = draw(st.integers(0, fixed))  # the accumulator's place among a step's fields
    steps = draw(st.integers(1, 6))
    parents = tuple(draw(st.integers(0, sinks - 1)) for _ in range(fixed))
    weights = [draw(FLOATS | st.floats(-10, 10)) for _ in range(steps * (fixed + 1))]
    prev = draw(st.none() | st.integers(0, sinks - 1))  # (None: the first step's acc' was zero)
    ct = draw(FLOATS | st.floats(-10, 10))
    pending = draw(st.lists(st.tuples(st.integers(0, sinks - 1), FLOATS), max_size=3))
    return sinks, k, parents, weights, prev, ct, pending


def step_records(sinks, k, parents, weights, prev):
    """The records a chain stands for: each step's fields in order, the accumulator's (the step below, or prev;
    left out where prev is None) at place k."""
    records = [SINK] * sinks
    below = prev
    s = len(parents) + 1
    for i in range(0, len(weights), s):
        step = weights[i:i + s]
        fields = []
        for f in range(s):
            if f == k:
                if below is not None:
                    fields += [below, step[-1]]
            else:
                fields += [parents[f if f < k else f - 1], step[f if f < k else f - 1]]
        records.append(tuple(fields))
        below = len(records) - 1
    return records


def swept(sinks, k, parents, weights, prev, seed, pending=()):
    backend = Factoring(Counters())
    chained = [SINK] * sinks + [scaled(prev, k, parents, weights)]
    steps = step_records(sinks, k, parents, weights, prev)
    return (backend.backward(chained, [(len(chained) - 1, seed), *pending], sinks),
            backend.backward(steps, [(len(steps) - 1, seed), *pending], sinks))


@settings(max_examples=500, deadline=None)
@given(scaled_chains())
def test_the_scaled_sweep_is_the_step_records_sweep(case):
    sinks, k, parents, weights, prev, ct, pending = case
    got, want = swept(sinks, k, parents, weights, prev, ct, pending)
    assert bits([None if g is ZERO else g for g in got]) == bits([None if g is ZERO else g for g in want])


@settings(max_examples=200, deadline=None)
@given(scaled_chains())
def test_the_scaled_sweep_on_sums_over_paths(case):
    sinks, k, parents, weights, prev, ct, _ = case
    got, want = swept(sinks, k, parents, weights, prev, Paths.seed(ct))
    view = lambda gs: [g if g is ZERO else (bits(g.total), g.kinds) for g in gs]  # noqa: E731
    assert view(got) == view(want)


@pytest.mark.parametrize("ct", [1.5, -0.0, math.inf, math.nan])
def test_the_order_free_float_sweep_runs_scaled_chains(ct):
    """`Factoring.paths_values`: a scaled chain of finite weights is run as its records are; an infinite weight
    refuses both (None)."""
    weights = [0.5 - j / 7 for j in range(3 * 40)]
    backend = Factoring(Counters())
    for w in (weights, weights[:50] + [math.inf] + weights[51:]):
        got = backend.paths_values([SINK] * 3 + [scaled(0, 1, (1, 2), w)], [(3, Paths.seed(ct))], 3)
        steps = step_records(3, 1, (1, 2), w, 0)
        want = backend.paths_values(steps, [(len(steps) - 1, Paths.seed(ct))], 3)
        assert bits(got) == bits(want)


def test_the_fast_sweep_keeps_each_parents_order():
    """Into one parent the steps add in the records' order: (1 + 1e-16) - 1 is 0.0, (1 - 1) + 1e-16 is 1e-16."""
    weights = [1e-16, 1.0, 1.0, -1.0, 1.0, 1.0]  # (w_p, w_acc) per step, the last step first swept
    adj = [1.0, None, None]
    sweep_scaled(scaled(None, 1, (0,), weights), adj, 1.0)
    want = Factoring(Counters()).backward(step_records(1, 1, (0,), weights, None), [(3, 1.0), (0, 1.0)], 1)
    assert bits(adj[:1]) == bits(want)


def test_which_parents_are_fixed():
    """`_fixed_at`: where acc' is used, a variable the step takes apart from a captured one is fixed, one made
    from the step's parameters is not."""
    a, acc = c.Var("a"), c.Var("acc")
    body = c.LinLam("ct", c.DSum(c.LinApp(c.Var("acc'"), c.Var("ct")),
                                c.DSum(c.LinApp(c.Var("a'"), c.Var("ct")), c.LinApp(c.Var("x'"), c.Var("ct")))))
    step = c.Lam("acc", c.Lam("x", c.LetTuple(("a", "a'"), a, c.LetTuple(("acc", "acc'"), acc,
                                                                         c.LetTuple(("x", "x'"), c.Var("x"),
                                                                                    c.Tuple((acc, body)))))))
    chain = fold_chain(step, 1)
    assert chain is not None
    assert chain.fixed[("a'", ())] is True and chain.fixed[("x'", ())] is False
    assert chain.fixed[("acc'", ())] is False and ("b'", ()) not in chain.fixed
