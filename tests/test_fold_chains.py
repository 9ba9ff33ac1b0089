"""Sum chains (lang/back/chains.py) and unboxed fold loops (lang/back/compiler.py `_unboxed_fold`).

A fold whose accumulator's backpropagator is used once grows one record per loop (a chain) instead
of one record per step; its loop keeps the accumulator's dual pair in two locals, unpacks each element
in the `for` itself, and iterates fusion's pairs by `zip`. None of it may show: values right against
gradients worked out by hand (numpy), and the same bits as the step-by-step records (chains turned
off) on finite, infinite, nan and -0.0 inputs; and the chain sweep equal, bit for bit, to the sweep of
the records it stands for, on any weights and cotangents.
"""
import math
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lang.back import chains as chains_module
from lang.back.chains import chain, fold_chain
from lang.back.compiler import Counters
from lang.back.linear import SINK, Factoring
from lang.back.machine import Machine
from lang.front.loader import Loader, World
from lang.model.spans import Source
from lang.model.values import apply
from lang.model.zeros import ZERO, Paths
from lang.modes.table import get

PROGRAM = """\
def w4 (xs : [Real]) = sum (map (fun x -> sin x * x) xs)
def vg4 (xs : [Real]) = value_and_grad w4 xs
def vjp4 (xs : [Real]) (u : Real) = snd (vjp w4 xs) u
def dot2 ((xs, ys) : [Real] * [Real]) = dot xs ys
def vgdot (xs : [Real]) (ys : [Real]) = value_and_grad dot2 (xs, ys)
def same (x : Real) = sum (map (fun y -> y * y) [x, x, x, x])
def vgsame (x : Real) = value_and_grad same x
def live ((x, y) : Real * Real) = fold (fun acc z -> acc + z * y) x [1.0, 2.0, 3.0, 4.0]
def vglive (p : Real * Real) = value_and_grad live p
def sumsq (rows : [[Real]]) = sum (map (fun r -> sum (map (fun v -> v * v) r)) rows)
def vgsumsq (rows : [[Real]]) = value_and_grad sumsq rows
def twice (xs : [Real]) = let s = sum (map (fun x -> x * x) xs) in s * s + fold (fun acc x -> acc + x * s) s xs
def vgtwice (xs : [Real]) = value_and_grad twice xs
def loss (x : [Real]) (t : Real) (layers : [[[Real]] * [Real]]) = let e = head (mlp tanh layers x) - t in e * e
def vgmlp (x : [Real]) (t : Real) (layers : [[[Real]] * [Real]]) = value_and_grad (loss x t) layers
"""


def _in_thread(fn):
    """fn() on a thread with a big stack (as the CLI runs programs)."""
    out = {}
    threading.stack_size(1 << 27)
    t = threading.Thread(target=lambda: out.setdefault("v", fn()))
    t.start()
    t.join()
    return out["v"]


def call(name: str, *args, chains: bool = True, counting: bool = False):
    """`name args` on a fresh machine running backprop, with chains or with the step-by-step records."""
    def go():
        world = World()
        loader = Loader(world)
        loader.load_prelude()
        mod = loader.load_source(Source("chains.dl", PROGRAM), "chains.dl")
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


def bits(v):
    """A value with each float as its bit pattern (-0.0 and nan kept apart), for exact comparison."""
    if isinstance(v, (tuple, list)):
        return type(v)(bits(x) for x in v)
    return float(v).hex() if type(v) is float else v


def same_bits(name, *args):
    """The value with chains, after checking it against the step-by-step records and the counting machine."""
    fast = call(name, *args)
    assert bits(fast) == bits(call(name, *args, chains=False))
    assert bits(fast) == bits(call(name, *args, counting=True))
    return fast


XS = [0.3, -1.2, 2.5, 0.0, 7.0, -0.4, 1e-3, 3.1]


def test_w4_against_numpy():
    x = np.array(XS)
    y, g = same_bits("vg4", XS)
    assert y == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-14)
    assert g == pytest.approx(list(np.cos(x) * x + np.sin(x)), rel=1e-14)


@pytest.mark.parametrize("xs", [
    [1.0, math.inf, 2.0],           # sin inf: nan value and gradient
    [1.0, math.nan, -2.0],
    [-0.0, 0.0, -0.0, 1.0],         # d(sin x * x) at -0.0 is -0.0: kept
    [1e308, 1e308, -1e308, 1e308],  # sums near overflow
    [-0.0],
    [],
])
def test_w4_non_finite_and_signed_zeros_bit_for_bit(xs):
    same_bits("vg4", xs)


@pytest.mark.parametrize("u", [1.0, -0.0, math.inf, -math.inf, math.nan, 1e308])
def test_w4_vjp_cotangents_bit_for_bit(u):
    """The pullback's cotangent goes down the chain as `1.0 * u` does down the records: -0.0, inf and nan too."""
    g = same_bits("vjp4", XS, u)
    if 0 < abs(u) < 1e300:  # (1e308: a gradient overflows, and the order-free pass runs the unpreaccumulated term)
        x = np.array(XS)
        assert g == pytest.approx(list(u * (np.cos(x) * x + np.sin(x))), rel=1e-14)


def test_dot_of_two_live_lists_against_numpy():
    """A chain of two pairs a step (x' and y'), on parents that are not consecutive."""
    xs, ys = XS, [2.0 - v for v in XS]
    y, (gx, gy) = same_bits("vgdot", xs, ys)
    assert y == pytest.approx(float(np.dot(xs, ys)), rel=1e-14)
    assert gx == pytest.approx(ys, rel=1e-15) and gy == pytest.approx(xs, rel=1e-15)


@pytest.mark.parametrize("x", [1.5, -0.0, math.inf, math.nan])
def test_one_parent_many_times(x):
    """[x, x, x, x]: every step's parent is the same sink (the chain's slice cannot apply)."""
    y, g = same_bits("vgsame", x)
    if math.isfinite(x):
        assert (y, g) == pytest.approx((4 * x * x, 8 * x), rel=1e-15)


@pytest.mark.parametrize("p", [(0.5, 2.0), (-0.0, 1.0), (1.0, math.inf)])
def test_a_live_initial_accumulator(p):
    """fold from x: the chain's first step passes 1.0 * ct to x's sink, before its own pairs."""
    y, g = same_bits("vglive", p)
    if all(map(math.isfinite, p)):
        assert y == pytest.approx(p[0] + 10 * p[1], rel=1e-15) and g == (1.0, 10.0)


def test_nested_sums_against_numpy():
    rows = [[0.5, -1.0], [2.0], [], [3.0, 0.25, -4.0]]
    y, g = same_bits("vgsumsq", rows)
    assert y == pytest.approx(sum(v * v for r in rows for v in r), rel=1e-15)
    assert g == [[2 * v for v in r] for r in rows]


def test_a_sum_used_twice_and_as_a_weight():
    """s feeds s * s and every step of a second fold (which starts from s): s's chain is reached from many
    records, so the sum must not be chained past its last step."""
    xs = [0.5, -1.5, 2.0]
    y, g = same_bits("vgtwice", xs)
    x = np.array(xs)
    s = float(np.sum(x * x))
    # twice = s^2 + s + s * sum x;  d/dx_i = (2 s + 1 + sum x) * 2 x_i + s
    assert y == pytest.approx(s * s + s + s * float(np.sum(x)), rel=1e-14)
    assert g == pytest.approx(list((2 * s + 1 + np.sum(x)) * 2 * x + s), rel=1e-14)


def test_w5_mlp_bit_for_bit_and_against_numpy():
    """The prelude's mlp (dense layers: map of dot, a fold over zipWith's pairs) against numpy by hand."""
    x = [-1.0 + 2.0 * i / 5 for i in range(6)]
    w1 = [[math.sin(1.0 + i + 3 * j) * 0.5 for j in range(6)] for i in range(4)]
    b1 = [0.1 * i - 0.2 for i in range(4)]
    w2 = [[math.cos(2.0 + i) for i in range(4)]]
    b2 = [0.3]
    layers = [(w1, b1), (w2, b2)]
    y, g = same_bits("vgmlp", x, 0.5, layers)
    X, W1, B1, W2, B2 = map(np.array, (x, w1, b1, w2, b2))
    h = np.tanh(W1 @ X + B1)
    e = float((W2 @ h + B2)[0]) - 0.5
    de = 2 * e
    dh = de * W2[0] * (1 - h * h)
    assert y == pytest.approx(e * e, rel=1e-13)
    (gw1, gb1), (gw2, gb2) = g
    assert np.allclose(gw1, np.outer(dh, X), rtol=1e-12, atol=1e-15)
    assert np.allclose(gb1, dh, rtol=1e-12, atol=1e-15)
    assert np.allclose(gw2, [de * h], rtol=1e-12, atol=1e-15) and np.allclose(gb2, [de], rtol=1e-12)


# ---- the chain's sweep against the sweep of the records it stands for

FLOATS = st.sampled_from([1.0, -1.0, 0.5, -0.0, 0.0, 3.0, 1e308, -1e308, 1e-320, math.inf, -math.inf, math.nan])


@st.composite
def chains(draw):
    sinks = draw(st.integers(1, 6))
    width = draw(st.integers(1, 2))
    steps = draw(st.integers(1, 6))
    consecutive = draw(st.booleans())
    pairs = []
    for k in range(steps):
        for j in range(width):
            p = (k * width + j) % sinks if consecutive else draw(st.integers(0, sinks - 1))
            pairs += [p, draw(FLOATS | st.floats(-10, 10))]
    prev = draw(st.none() | st.integers(0, sinks - 1))  # (None: the first step's acc' was zero)
    ct = draw(FLOATS | st.floats(-10, 10))
    pending = draw(st.lists(st.tuples(st.integers(0, sinks - 1), FLOATS), max_size=3))
    return sinks, width, pairs, prev, ct, pending


def step_records(sinks, width, pairs, prev):
    """The records a chain stands for: step j's (step j-1 or prev, 1.0, its pairs...) (prev None: no such parent)."""
    records = [SINK] * sinks
    below = prev
    step = 2 * width
    for k in range(0, len(pairs), step):
        records.append(tuple(pairs[k:k + step]) if below is None else (below, 1.0, *pairs[k:k + step]))
        below = len(records) - 1
    return records


def swept(sinks, width, pairs, prev, seed, pending=()):
    """The sinks' arguments after sweeping a chain, and after sweeping the records it stands for, from the
    seed at the top and `pending` contributions already made to sinks (so that additions land on something)."""
    backend = Factoring(Counters())
    chained = [SINK] * sinks + [chain(prev, width, pairs)]
    steps = step_records(sinks, width, pairs, prev)
    return (backend.backward(chained, [(len(chained) - 1, seed), *pending], sinks),
            backend.backward(steps, [(len(steps) - 1, seed), *pending], sinks))


@settings(max_examples=400, deadline=None)
@given(chains())
def test_the_chain_sweep_is_the_step_records_sweep(case):
    sinks, width, pairs, prev, ct, pending = case
    got, want = swept(sinks, width, pairs, prev, ct, pending)
    assert bits([None if g is ZERO else g for g in got]) == bits([None if g is ZERO else g for g in want])


@settings(max_examples=200, deadline=None)
@given(chains())
def test_the_chain_sweep_on_sums_over_paths(case):
    """The order-free pass's seeds (`Paths`): the chain is swept with objects, the same totals and kinds."""
    sinks, width, pairs, prev, ct, _ = case
    got, want = swept(sinks, width, pairs, prev, Paths.seed(ct))
    view = lambda gs: [g if g is ZERO else (bits(g.total), g.kinds) for g in gs]  # noqa: E731
    assert view(got) == view(want)


@pytest.mark.parametrize("ct", [1.5, -0.0, 0.0, math.inf, -math.inf, math.nan, 1e308])
@pytest.mark.parametrize("case", ["empty", "one pending", "prev among them", "prev None", "a weight nan"])
def test_a_long_chain_on_consecutive_parents(ct, case):
    """Past 64 steps on consecutive parents nothing has reached, the products are stored as one slice: the
    same bits as the step records' sweep (and where a parent has something pending, or prev is one of them,
    the pair-by-pair path)."""
    m, sinks = 100, 120
    weights = [math.sin(k) * 10.0 ** (k % 7 - 3) for k in range(m)]
    weights[3], weights[4] = -0.0, 0.0
    if case == "a weight nan":
        weights[50] = math.nan
    pairs = [v for k in range(m) for v in (10 + k, weights[k])]
    prev = {"prev among them": 40, "prev None": None}.get(case, 5)
    pending = [(60, 2.5)] if case == "one pending" else []
    got, want = swept(sinks, 1, pairs, prev, ct, pending)
    assert bits([None if g is ZERO else g for g in got]) == bits([None if g is ZERO else g for g in want])
    if case == "empty" and math.isfinite(ct):
        assert got[10:10 + m] == [w * ct for w in weights]  # (by hand: each parent gets w * ct)


@pytest.mark.parametrize("width", [2, 3])
@pytest.mark.parametrize("steps", [1, 4])
def test_a_step_with_one_parent_twice(width, steps):
    """Additions into one slot keep their order (float addition does not associate): a step whose pairs share a
    parent that has something pending — (1 + 1e-16) - 1 is 0.0, (1 - 1) + 1e-16 is 1e-16. The first step
    (swept last) is the sensitive one; the others add into another slot."""
    first = [0, 1e-16, 0, -1.0, 1, 2.0][:2 * width]
    pairs = first + [1, 2.0, 1, 3.0, 1, 0.5][:2 * width] * (steps - 1)
    for prev in (None, 0, 1):
        got, want = swept(2, width, pairs, prev, 1.0, [(0, 1.0)])
        assert bits(got) == bits(want)


def test_dot_of_a_list_with_itself():
    """dot xs xs: each step's two pairs have one parent."""
    y, (gx, gy) = same_bits("vgdot", XS, XS)
    assert y == pytest.approx(float(np.dot(XS, XS)), rel=1e-14) and gx == gy == XS


def test_only_a_once_used_accumulator_chains():
    """fold_chain reads the step: the accumulator taken apart once, its backpropagator used once."""
    from lang.model import core as c
    a = c.Var("a")

    def step(body):
        return c.Lam("acc", c.Lam("x", c.LetTuple(("acc", "acc'"), c.Var("acc"), body)))
    once = c.LinLam("a", c.LinApp(c.Var("acc'"), a))
    assert fold_chain(step(c.Tuple((c.Var("acc"), once))), 1) is not None
    twice = c.LinLam("a", c.DSum(c.LinApp(c.Var("acc'"), a), c.LinApp(c.Var("acc'"), a)))
    assert fold_chain(step(c.Tuple((c.Var("acc"), twice))), 1) is None
    whole = c.Lam("acc", c.Lam("x", c.Let("y", c.Var("acc"), c.LetTuple(("v", "v'"), c.Var("acc"), c.Var("y")))))
    assert fold_chain(whole, 1) is None  # (the pair itself used elsewhere)


@pytest.mark.parametrize("ct", [1.5, -0.0, 1e308])
def test_the_order_free_float_sweep_runs_chains(ct):
    """`Factoring.paths_values` (the order-free pass on floats): a chain of finite weights is run, as its step
    records are (the same totals); a chain with an infinite weight is refused (None), as its records are."""
    pairs = [v for k in range(70) for v in (k % 5, 0.5 - k / 7)]
    backend = Factoring(Counters())
    chained = [SINK] * 5 + [chain(None, 1, pairs)]
    steps = step_records(5, 1, pairs, None)
    got = backend.paths_values(chained, [(len(chained) - 1, Paths.seed(ct))], 5)
    want = backend.paths_values(steps, [(len(steps) - 1, Paths.seed(ct))], 5)
    assert got is not None and bits(got) == bits(want)
    pairs[11] = math.inf
    assert backend.paths_values([SINK] * 5 + [chain(None, 1, pairs)], [(5, Paths.seed(ct))], 5) is None
    assert backend.paths_values(step_records(5, 1, pairs, None), [(74, Paths.seed(ct))], 5) is None


# ---- a chain that is always the last record: no test that it is (`FoldChain.alone`)

def reverse_source(text: str, name: str) -> str:
    """The Python of the top-level `name`'s preaccumulated transform, and of the closures it makes."""
    def go():
        world = World()
        loader = Loader(world)
        loader.load_prelude()
        mod = loader.load_source(Source("alone.dl", text), "alone.dl")
        machine = Machine(world, mode=get("backprop"))
        compiler = machine.ad.top_reverse(machine.runtime)
        return compiler.global_value(mod.id, name, ()).code.info["python"]
    return _in_thread(go)


OTHER = "def other (xs : [Real]) = fold (fun acc x -> let y = sin x in acc + y * y + y) 0.0 xs\n"


@pytest.mark.parametrize("name, kept", [("w4", 0), ("dot2", 0), ("sumsq", 1)])
def test_a_step_writing_its_chain_alone_has_no_tape_test(name, kept):
    """sumsq's inner sum has none; its outer sum's step runs the inner loop, whose records land on its chain: kept."""
    source = reverse_source(PROGRAM, name)
    assert ".append(" in source and source.count("[-1] is") == kept, source


def test_a_step_writing_another_record_keeps_the_tape_test(monkeypatch):
    """y = sin x has a record of its own (y' is used three times), written before the step's: the step's chain is
    then never the last record, and each step starts one. Against the gradient by hand; and with the test taken
    away regardless, the chain would grow on y's records above it, which the sweep has passed: wrong."""
    assert "[-1] is" in reverse_source(OTHER, "other")
    xs = [0.3, -1.2, 2.5, 0.7]
    expected = [2 * math.sin(x) * math.cos(x) + math.cos(x) for x in xs]

    def gradient():
        def go():
            world = World()
            loader = Loader(world)
            loader.load_prelude()
            mod = loader.load_source(Source("alone.dl", OTHER + "def g (xs : [Real]) = grad other xs\n"), "alone.dl")
            return apply(Machine(world, mode=get("backprop")).global_value(mod.id, "g", ()), (xs,))
        return _in_thread(go)
    assert gradient() == pytest.approx(expected, rel=1e-12)

    def regardless(self, gen, fn, start):
        for i, line in self.checks:
            gen.lines[i] = line
    monkeypatch.setattr(chains_module.FoldChain, "alone", regardless)
    assert gradient() != pytest.approx(expected, rel=1e-12)
