"""A [Real] input passed as its floats (lang/back/streams.py) and chains on consecutive sinks (width 0).

Where ←D(f)'s body only folds over its [Real] parameter, the scalar entry runs a second compilation of it
whose loops number the floats (`enumerate`) instead of reading the dual pairs, and a sum's chain appends
its weights alone. None of it may show: values against numpy by hand, and the same bits as the entry
without it (the pairs injected), the step-by-step records (chains off), the counting machine and the
unpreaccumulated term (on floats and on pairs), on finite, infinite, nan, -0.0 and huge inputs; the rule refused wherever the
parameter is read otherwise; the width-0 sweep equal to the sweep of the same chain with its parents
written out, on any weights, cotangents and pending arguments.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lang.back import streams
from lang.back.chains import chain, chain_pairs, sinks_of_chain, sweep_chain
from lang.back.compiler import Counters
from lang.back.linear import SINK, Factoring
from lang.back.machine import Machine
from lang.front.loader import Loader, World
from lang.model.spans import Source
from lang.model.values import apply
from lang.model.zeros import ZERO, Paths
from lang.modes.table import get
from test_fold_chains import _in_thread, bits  # (a big stack; floats as bit patterns)

PROGRAM = """\
def w4 (xs : [Real]) = sum (map (fun x -> sin x * x) xs)
def from_one (xs : [Real]) = fold (fun acc x -> acc + x * x) 1.0 xs
def prod (xs : [Real]) = fold (fun acc x -> acc * x) 1.0 xs
def twice (xs : [Real]) = let s = sum (map (fun x -> x * x) xs) in s * s + fold (fun acc x -> acc + x * s) s xs
def nested (xs : [Real]) = sum (map (fun x -> sin x * sum (map (fun y -> y * x) xs)) xs)
def pairs (xs : [Real]) = sum (map (fun x -> sum (map (fun y -> x * y) xs)) xs)
def pos (xs : [Real]) = fold (fun acc x -> if x > 0.0 then acc + x * x else acc - x) 0.0 xs
def counted (xs : [Real]) = sum (map (fun x -> x * x) xs) * float (length xs)
def captured (xs : [Real]) = fold (fun acc x -> acc + x * head xs) 0.0 xs
def mapped (xs : [Real]) = sum (map (fun x -> x * x) (map (fun x -> x + 1.0) xs))
"""
NAMES = ["w4", "from_one", "prod", "twice", "nested", "pairs", "pos", "counted", "captured", "mapped"]
# the others read xs otherwise: length, a closure, map, and folds whose steps do not take their element (pairs)
# or their accumulator (pos: in each branch) apart before anything else, so the loop does not unpack them
TAKES_FLOATS = {"w4", "from_one", "prod", "twice", "nested"}


def run(name: str, xs: list, op: str = "value_and_grad", u: float = 1.0, *, floats: bool = True,
        chains: bool = True, counting: bool = False, preaccumulate: bool = True):
    """(op name xs (applied to u for vjp), the source of name's body on floats or None) on a fresh machine."""
    def go():
        world = World()
        loader = Loader(world)
        loader.load_prelude()
        src = PROGRAM + f"def call (xs : [Real]) (u : Real) = {'snd (vjp ' + name + ' xs) u' if op == 'vjp' else f'{op} {name} xs'}\n"
        mod = loader.load_source(Source("streams.dl", src), "streams.dl")
        machine = Machine(world, mode=get("backprop"), counting=counting, preaccumulate=preaccumulate)
        value = apply(machine.global_value(mod.id, "call", ()), (xs, u))
        compiler = machine.ad.top_reverse(machine.runtime)
        dual = machine.global_value(mod.id, name, ()).code.info.get(compiler)
        return value, None if dual is None else dual.code.info.get("raw_list_python")
    saved = streams._compile, Factoring.fold_chain
    if not floats:
        streams._compile = lambda compiler, code: None
    if not chains:
        Factoring.fold_chain = lambda self, fn, depth: None
    try:
        return _in_thread(go)
    finally:
        streams._compile, Factoring.fold_chain = saved


def same_bits(name, xs, op="value_and_grad", u=1.0):
    """The value on floats, after checking it against the pairs, the step records and the counting machine (and
    the unpreaccumulated term on floats against it on pairs); and the body's source on floats."""
    fast, source = run(name, xs, op, u)
    assert (source is not None) == (name in TAKES_FLOATS)
    for other in ({"floats": False}, {"chains": False}, {"counting": True}):
        assert bits(fast) == bits(run(name, xs, op, u, **other)[0]), other
    # ←D's own term (no preaccumulation: its own rounding, docs/transforms.md) on floats and on the pairs
    plain, plain_source = run(name, xs, op, u, preaccumulate=False)
    assert bits(plain) == bits(run(name, xs, op, u, preaccumulate=False, floats=False)[0])
    return fast, source


XS = [0.3, -1.2, 2.5, 0.0, 7.0, -0.4, 1e-3, 3.1]
LONG = [math.sin(k) * 10.0 ** (k % 5 - 2) for k in range(150)]  # (past 64 steps: the slice)


@pytest.mark.parametrize("xs", [XS, LONG])
def test_w4_against_numpy(xs):
    x = np.array(xs)
    (y, g), source = same_bits("w4", xs)
    assert y == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-13)
    assert g == pytest.approx(list(np.cos(x) * x + np.sin(x)), rel=1e-13)
    # the floats themselves (the sink is read only where a chain starts: from the iterator's place), no test
    # for an absent sink (only acc' is tested), the chain's weights alone (width 0)
    assert " = iter(a0)" in source and "enumerate" not in source and source.count("is None:\n") == 1
    assert source.count(", 0, len(a0) - 1 - k0(v") == 2 and source.count(".append(") == 3


def test_a_sink_read_in_the_step_is_numbered():
    """twice's second fold adds x' and s' at each step (width 2): the loop numbers the floats."""
    _, source = same_bits("twice", XS)
    assert "in enumerate(v" in source and "in v" in source  # (the first fold's loop: the floats alone)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("xs", [XS, LONG, [], [-0.0], [2.0]])
def test_every_program_bit_for_bit(name, xs):
    same_bits(name, xs)


def test_the_others_against_numpy():
    x = np.array(XS)
    (y, g), _ = same_bits("from_one", XS)
    assert y == pytest.approx(1.0 + float(np.sum(x * x)), rel=1e-14) and g == pytest.approx(list(2 * x), rel=1e-14)
    (y, g), _ = same_bits("nested", XS)  # T * sum_i x_i sin x_i, T = sum_j x_j (a loop over xs in each step)
    t, s = float(np.sum(x)), float(np.sum(x * np.sin(x)))
    assert y == pytest.approx(t * s, rel=1e-13)
    assert g == pytest.approx(list(s + t * (np.cos(x) * x + np.sin(x))), rel=1e-13)
    (y, g), _ = same_bits("pairs", XS)
    assert y == pytest.approx(float(np.sum(x)) ** 2, rel=1e-13)
    assert g == pytest.approx([2 * float(np.sum(x))] * len(XS), rel=1e-13)
    (y, g), _ = same_bits("pos", XS)
    assert y == pytest.approx(float(np.sum(np.where(x > 0, x * x, -x))), rel=1e-14)
    assert g == pytest.approx(list(np.where(x > 0, 2 * x, -1.0)), rel=1e-14)
    (y, g), _ = same_bits("counted", XS)
    assert y == pytest.approx(len(XS) * float(np.sum(x * x)), rel=1e-14)
    assert g == pytest.approx(list(2 * len(XS) * x), rel=1e-14)


@pytest.mark.parametrize("xs", [
    [1.0, math.inf, 2.0],           # sin inf: nan value and gradient
    [1.0, math.nan, -2.0],
    [-0.0, 0.0, -0.0, 1.0],         # d(sin x * x) at -0.0 is -0.0: kept
    [1e308, 1e308, -1e308, 1e308],  # sums near overflow
    [1e308] * 80 + [math.nan] * 3,  # (the slice, then a nan: the order-free pass)
    [1e200] * 100,                  # products overflow
])
@pytest.mark.parametrize("name", ["w4", "from_one", "twice", "nested", "pos"])
def test_non_finite_and_signed_zeros_bit_for_bit(name, xs):
    same_bits(name, xs)


@pytest.mark.parametrize("u", [1.0, -0.0, 2.5, math.inf, -math.inf, math.nan, 1e308])
@pytest.mark.parametrize("xs", [XS, LONG])
def test_vjp_cotangents_bit_for_bit(u, xs):
    """The pullback sweeps the same chain from its cotangent: -0.0, inf and nan too."""
    g, _ = same_bits("w4", xs, "vjp", u)
    if 0 < abs(u) < 1e300:
        x = np.array(xs)
        assert g == pytest.approx(list(u * (np.cos(x) * x + np.sin(x))), rel=1e-13)


# ---- the chain on consecutive sinks against the same chain with its parents written out

FLOATS = st.sampled_from([1.0, -1.0, 0.5, -0.0, 0.0, 3.0, 1e308, -1e308, 1e-320, math.inf, -math.inf, math.nan])


@st.composite
def consecutive(draw):
    sinks = draw(st.integers(1, 80))
    first = draw(st.integers(0, sinks - 1))
    steps = draw(st.integers(1, sinks - first))
    weights = draw(st.lists(FLOATS | st.floats(-10, 10), min_size=steps, max_size=steps))
    prev = draw(st.none() | st.integers(0, sinks - 1))
    ct = draw(FLOATS | st.floats(-10, 10))
    pending = draw(st.lists(st.tuples(st.integers(0, sinks - 1), FLOATS), max_size=3))
    return sinks, first, weights, prev, ct, pending


def _view(gs):
    return [None if g is ZERO or g is None else (bits(g.total), g.kinds) if type(g) is Paths else bits(g) for g in gs]


@settings(max_examples=300, deadline=None)
@given(consecutive(), st.booleans())
def test_a_consecutive_chain_sweeps_as_its_parents_written_out(case, paths):
    sinks, first, weights, prev, ct, pending = case
    seed = Paths.seed(ct) if paths else ct
    backend = Factoring(Counters())
    short = [SINK] * sinks + [[prev, 0, first, *weights]]
    long = [SINK] * sinks + [chain(prev, 1, chain_pairs(first, weights))]
    got = backend.backward(short, [(sinks, seed), *pending], sinks)
    want = backend.backward(long, [(sinks, seed), *pending], sinks)
    assert _view(got) == _view(want)


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS | st.floats(-1e3, 1e3), min_size=1, max_size=120), FLOATS | st.floats(-10, 10))
def test_the_sinks_of_one_chain_are_its_sweep(weights, ct):
    """A tape of the sinks and one chain over all of them: the gradient list straight from the weights (the
    weights themselves from the seed 1.0 when all finite) is what the chain's sweep leaves in the sinks."""
    rec = [None, 0, 0, *weights]
    got = sinks_of_chain(rec, len(weights), ct)
    adj = [None] * len(weights)
    sweep_chain(rec, adj, ct)
    if type(ct) is float and ct == ct:
        assert got is not None and bits(got) == bits(adj)
    else:
        assert got is None
    assert sinks_of_chain([5, 0, 0, *weights], len(weights), 1.0) is None  # (prev: not the chain alone)
    assert sinks_of_chain(rec, len(weights) + 1, 1.0) is None               # (a sink the chain misses)
