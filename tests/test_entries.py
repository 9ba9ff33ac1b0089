"""Scalar entries (lang/back/entries.py): `grad f x`, `value_and_grad f x` and `vjp f x` of primal code, on a fixed
tuple of reals, or lists and tuples of them, into Real, run by one generated function instead of the kernel's general path.

The entry must be invisible: the same values bit for bit as the general path (run here by turning the
entries off), values right against gradients worked out by hand, the general path taken for what the
entry does not handle (a non-finite gradient, whose order-free pass it must not skip; arrays; counting;
nested differentiation), the same counters and the same diagnostics.
"""
import math

import numpy as np
import pytest

from conftest import load_source, run
from lang.back import kernel as kernel_module
from lang.back.deep import run_deep
from lang.back.kernel import ADKernel
from lang.model.errors import DlError
from lang.modes.table import get
from lang.tools.pipeline import run_main

W1 = "def f ((x1, x2) : Real * Real) = log x1 + x1 * x2 - sin x2\n"
W6 = "def g ((y, mu, s) : Real * Real * Real) = -0.5 * ((y - mu) / s) ^ 2 - log s\n"


def w1_oracle(x1, x2):
    """f and its gradient by hand: (1/x1 + x2, x1 - cos x2)."""
    return (math.log(x1) + x1 * x2 - math.sin(x2), (1.0 / x1 + x2, x1 - math.cos(x2)))


def w6_oracle(y, mu, s):
    """g and its gradient by hand: (-(y-mu)/s^2, (y-mu)/s^2, (y-mu)^2/s^3 - 1/s)."""
    r = y - mu
    return (-0.5 * (r / s) ** 2 - math.log(s), (-r / s ** 2, r / s ** 2, r ** 2 / s ** 3 - 1.0 / s))


def run_both(text, monkeypatch, **kw):
    """The value of `main` with the scalar entries, then without them (the general path)."""
    program = load_source(text)

    def once():
        return run_deep(lambda: run_main(program, [], get(kw.get("mode", "backprop")), kw.get("counting", False),
                                         preaccumulate=kw.get("preaccumulate", True)))
    fast = once()
    with monkeypatch.context() as m:
        m.setattr(kernel_module, "scalar_entry", lambda *a: None)
        slow = once()
    return fast, slow


def general_calls(monkeypatch):
    """Count the calls of the kernel's general `grad` and `value_and_grad` (the entries' fallback)."""
    calls = []
    for name in ("grad", "value_and_grad", "vjp_value"):
        original = getattr(ADKernel, name)
        monkeypatch.setattr(ADKernel, name, lambda self, *a, _o=original, _n=name: calls.append(_n) or _o(self, *a))
    return calls


def bits(v):
    """A value with each float as its bit pattern (-0.0 and nan kept apart), for exact comparison."""
    if isinstance(v, (tuple, list)):
        return type(v)(bits(x) for x in v)
    return float(v).hex() if type(v) is float else v


POINTS = [(2.0, 5.0), (0.3, -1.7), (7.5, 1e-3), (1e-3, 40.0)]


@pytest.mark.parametrize("p", POINTS)
def test_w1_value_and_gradient_against_the_hand_gradient(p, monkeypatch):
    text = W1 + f"def main = value_and_grad f ({p[0]!r}, {p[1]!r})\n"
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    y, g = w1_oracle(*p)
    assert fast[0] == pytest.approx(y, rel=1e-14)
    assert fast[1] == pytest.approx(g, rel=1e-13)
    assert bits(fast) == bits(slow)


@pytest.mark.parametrize("p", [(1.0, 0.0, 1.0), (0.5, -2.0, 0.3), (3.0, 3.0, 2.5)])
def test_w6_gradient_against_the_hand_gradient(p, monkeypatch):
    text = W6 + f"def main = (grad g ({p[0]!r}, {p[1]!r}, {p[2]!r}), value_and_grad g ({p[0]!r}, {p[1]!r}, {p[2]!r}))\n"
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    y, g = w6_oracle(*p)
    assert fast[0] == pytest.approx(g, rel=1e-13, abs=1e-15)
    assert fast[1][0] == pytest.approx(y, rel=1e-14)
    assert fast[1][1] == fast[0]
    assert bits(fast) == bits(slow)


def test_the_entry_is_taken_and_the_general_path_is_not(monkeypatch):
    """A finite gradient of a fixed tuple never reaches the kernel's general path (else this file tests
    nothing)."""
    calls = general_calls(monkeypatch)
    value = run(W1 + "def main = value_and_grad f (2.0, 5.0)")
    assert calls == []
    assert value[1] == pytest.approx((5.5, 2.0 - math.cos(5.0)), rel=1e-14)


# (program, expected by hand): shapes and special cases of the entry
CASES = [
    # a lone Real in and out
    ("def main = grad (fun x -> x * x * x) 2.0", 12.0),
    # Int, Bool and Unit leaves get their zeros; nested tuples keep their shape
    ("def main = grad (fun ((x, n), (b, y)) -> if b then x * float n * y else y) ((2.0, 3), (true, 5.0))",
     ((15.0, 0), (False, 6.0))),
    ("def main = value_and_grad (fun (x, u, y) -> x - y) (1.0, (), 4.0)", (-3.0, (1.0, (), -1.0))),
    # a constant function: no backpropagator at all, settled zeros
    ("def main = value_and_grad (fun (x, y) -> 3.0) (1.0, 2.0)", (3.0, (0.0, 0.0))),
    # an input nothing reaches
    ("def main = grad (fun (x, y) -> x * x) (3.0, 1.0)", (6.0, 0.0)),
    # the output is an input: the seed lands on a sink
    ("def main = grad (fun (x, y) -> y) (3.0, 1.0)", (0.0, 1.0)),
    # a closure: its captured values lifted on every call
    ("def main = let a = 3.0 in map (fun x0 -> grad (fun (x, y) -> a * x * y) (x0, 2.0)) [1.0, 2.0]",
     [(6.0, 3.0), (6.0, 6.0)]),
    # a partial application of a two-argument function
    ("def h (a : Real) ((x, y) : Real * Real) = a * x + y * y\ndef main = grad (h 4.0) (1.0, 3.0)", (4.0, 6.0)),
    # a shared subterm (merges in the sweep): d/dx of (x*y)^2 + x*y = 2xy^2 + y
    ("def main = grad (fun (x, y) -> let u = x * y in u * u + u) (2.0, 3.0)", (39.0, 26.0)),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_shapes_and_special_cases(text, expected, monkeypatch):
    calls = general_calls(monkeypatch)
    assert run(text) == expected
    assert calls == []  # the entry, never the general path
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow)


def test_relu_and_min_zero_by_construction(monkeypatch):
    """A partial that is zero by construction (relu below 0, min's unselected argument): the sink is 0.0,
    not -0.0 or nan, as on the general path."""
    text = "def main = (grad (fun (x, y) -> relu x * y) (-1.0, 2.0), grad (fun (x, y) -> min x y * 3.0) (1.0, 2.0))"
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow) == bits(((0.0, 0.0), (3.0, 0.0)))


# non-finite gradients: the general path's order-free pass decides (docs/transforms.md, Zeros and infinities)
NON_FINITE = [
    # ∂y = sqrt x * 1/(2 sqrt y) = 1 * inf; ∂x = sqrt y * 1/(2 sqrt x) = 0 * 0.5 = 0
    ("grad (fun (x, y) -> sqrt x * sqrt y) (1.0, 0.0)", (0.0, math.inf)),
    # ∂x = log y = -inf; ∂y = x / y = inf
    ("grad (fun (x, y) -> x * log y) (1.0, 0.0)", (-math.inf, math.inf)),
    # u = sqrt x - 1 at x = 0: u = -1, u' = inf; f = u * u / u has three paths through u, of partials
    # u/u = 1, u/u = 1 and -u*u/u^2 = -1, times inf: +inf, +inf, -inf meet, so nan — though summing the
    # finite partials first (1 + 1 - 1) and then multiplying by inf, as the preaccumulated sweep does, gives inf
    ("grad (fun (x, y) -> let u = sqrt x - 1.0 in u * u / u + y) (0.0, 1.0)", (math.nan, 1.0)),
]


LIST_NON_FINITE = [
    # ∂ sqrt x = 1 / (2 sqrt x): inf at 0
    ("grad (fun xs -> sum (map sqrt xs)) [1.0, 0.0, 4.0]", [0.5, math.inf, 0.25]),
    # ∂x0 = log x1 = -inf, ∂x1 = x0 / x1 = inf, ∂x2 = 1
    ("grad (fun xs -> head xs * log (get xs 1) + get xs 2) [1.0, 0.0, 5.0]", [-math.inf, math.inf, 1.0]),
    # u * u / u with u' = inf (see NON_FINITE): nan by the order-free pass
    ("grad (fun xs -> let u = sqrt (head xs) - 1.0 in u * u / u + get xs 1) [0.0, 1.0]", [math.nan, 1.0]),
    # a list inside a tuple
    ("grad (fun (xs, y) -> y * sum (map sqrt xs)) ([0.0, 1.0], 2.0)", ([math.inf, 1.0], 1.0)),
]


@pytest.mark.parametrize("text, expected", NON_FINITE + LIST_NON_FINITE)
def test_non_finite_gradients_take_the_order_free_pass(text, expected, monkeypatch):
    """The entry takes the general path's order-free pass for a non-finite gradient (without the general path's
    second run of the entry's own pass): the same value as without entries, the same `order_free_passes`, and
    the value every exact mode gives (forward mode sums in the other order)."""
    calls = general_calls(monkeypatch)
    (fast, fast_machine), (slow, slow_machine) = run_both("def main = " + text, monkeypatch)
    assert calls == ["grad"]  # (only the run without entries: the entry did not call the general path)
    assert bits(fast) == bits(slow)
    forward = run("def main = " + text, mode="forward")
    assert bits(fast) == bits(forward)
    if expected is not None:
        assert bits(fast) == bits(expected)
    assert fast_machine.counters.as_dict() == slow_machine.counters.as_dict()
    assert fast_machine.counters.extra.get("order_free_passes") == 1


@pytest.mark.parametrize("text, expected", [
    ("def main = grad (fun (x, y) -> 1e308 * x + 1e308 * y) (1.0, 1.0)", (1e308, 1e308)),
    ("def main = grad (fun xs -> sum (map (fun x -> 1e308 * x) xs)) [1.0, 1.0, 2.0]", [1e308, 1e308, 1e308]),
])
def test_a_finite_gradient_whose_sum_overflows_stays_as_computed(text, expected, monkeypatch):
    """Each real finite though their sum is not: kept as computed (the entry checks reals one by one)."""
    calls = general_calls(monkeypatch)
    (fast, m), (slow, _) = run_both(text, monkeypatch)
    assert fast == slow == expected
    assert calls == ["grad"]  # (only the run without entries)
    assert "order_free_passes" not in m.counters.extra


@pytest.mark.parametrize("text", [
    # a list input (an entry too: lists are tested below)
    "def main = grad (fun xs -> sum (map (fun x -> x * x) xs)) [1.0, 2.0, 3.0]",
    # an array inside f on reals: records with array weights, swept by the backend's own sweep
    "def main = grad (fun (x, y) -> asum (scalar x * array [1.0, 2.0] + scalar y * scalar y)) (3.0, 0.5)",
    # nested: the inner grad is inside a function being differentiated (not primal code)
    "def main = grad (fun (x, y) -> grad (fun z -> z * z * x) y * y) (2.0, 3.0)",
    # a custom rule inside f (a generic record in the sweep)
    "def naive x = log (1.0 + exp x)\ndef rule x = (naive x, fun ct -> ct * sigmoid x)\n"
    "def sp x = custom_vjp naive rule x\ndef main = value_and_grad (fun (x, y) -> sp (x * y)) (0.5, 2.0)",
])
def test_what_the_entry_does_not_do_alone_is_unchanged(text, monkeypatch):
    (fast, fm), (slow, sm) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow)
    assert fm.counters.as_dict() == sm.counters.as_dict()


def test_nested_gradient_against_the_hand_gradient():
    # g(x, y) = d/dy(y^2 x) * y = 2 x y^2: ∂x = 2 y^2 = 18, ∂y = 4 x y = 24
    assert run("def main = grad (fun (x, y) -> grad (fun z -> z * z * x) y * y) (2.0, 3.0)") == (18.0, 24.0)


def test_custom_rule_against_the_hand_gradient():
    # softplus(x y): ∂x = y sigmoid(x y), ∂y = x sigmoid(x y) at (0.5, 2): sigmoid 1
    text = ("def naive x = log (1.0 + exp x)\ndef rule x = (naive x, fun ct -> ct * sigmoid x)\n"
            "def sp x = custom_vjp naive rule x\ndef main = grad (fun (x, y) -> sp (x * y)) (0.5, 2.0)")
    s = 1.0 / (1.0 + math.exp(-1.0))
    assert run(text) == pytest.approx((2.0 * s, 0.5 * s), rel=1e-14)


def test_array_inside_against_numpy():
    x, y = 3.0, 0.5
    value = run("def main = grad (fun (x, y) -> asum (scalar x * array [1.0, 2.0] + scalar y * scalar y)) (3.0, 0.5)")
    # asum(x [1, 2] + y^2) = 3x + 2y^2: ∂x = sum([1, 2]), ∂y = 2 * 2y
    assert value == pytest.approx((float(np.sum([1.0, 2.0])), 4.0 * y))


@pytest.mark.parametrize("preaccumulate", [True, False])
def test_counters_and_values_with_and_without_entries(preaccumulate, monkeypatch):
    """Counting turns the entries off (the counters are the general path's, exact); without counting the
    counters a run leaves are the same with and without entries, and so are the values."""
    text = W1 + W6 + "def main = (value_and_grad f (2.0, 5.0), grad g (1.0, 0.0, 1.0))\n"
    for counting in (False, True):
        (fast, fm), (slow, sm) = run_both(text, monkeypatch, counting=counting, preaccumulate=preaccumulate)
        assert bits(fast) == bits(slow)
        assert fm.counters.as_dict() == sm.counters.as_dict()
    assert fm.counters.bp_created > 0  # (the counting run counted something)


def test_backprop_naive_has_no_entries(monkeypatch):
    calls = general_calls(monkeypatch)
    value = run(W1 + "def main = value_and_grad f (2.0, 5.0)", mode="backprop-naive")
    assert calls == ["value_and_grad"]
    assert value[1] == pytest.approx(w1_oracle(2.0, 5.0)[1], rel=1e-14)


@pytest.mark.parametrize("text, expected", [
    # raised inside the differentiated function: at the primitive
    ("def main = grad (fun (x, y) -> head ([] : [Real]) * x * y) (1.0, 2.0)", "head of an empty list"),
    # raised while lifting f (it captures a pullback): at the grad
    ("def main = let (y, pb) = vjp (fun (a, b) -> a * b) (2.0, 5.0) in grad (fun (a, b) -> fst (pb a) * b) (1.0, 2.0)",
     "nested differentiation: a pullback or a function of the native language cannot be differentiated in the "
     "backprop language"),
])
def test_a_runtime_error_is_the_same_diagnostic(text, expected, monkeypatch):
    """An error raised inside the differentiated function, or at the call, is reported as on the general path."""

    def message():
        with pytest.raises(DlError) as info:
            run(text)
        return info.value.kind, str(info.value.span), info.value.message, info.value.notes
    fast = message()
    with monkeypatch.context() as m:
        m.setattr(kernel_module, "scalar_entry", lambda *a: None)
        slow = message()
    assert fast == slow
    assert fast[2] == expected


def test_the_generated_source_is_straight_line():
    """The entry for Real * Int * Real: one unpacking, the injected input, two sinks."""
    from lang.back.entries import scalar_entry
    from lang.back.machine import Machine
    from lang.front.loader import World
    from lang.model.types import INT, REAL, TTuple
    machine = Machine(World(), get("backprop"))
    entry = scalar_entry(machine.ad, "grad", TTuple((REAL, INT, REAL)), REAL, None, lambda f, x: None)
    assert "(a0, a1, a2) = x" in entry.source
    assert "x_dual = ((a0, 0), a1, (a2, 1))" in entry.source
    assert "return (g0, 0, g1)" in entry.source
    counting = Machine(World(), get("backprop"), counting=True)
    assert scalar_entry(counting.ad, "grad", TTuple((REAL, REAL)), REAL, None, lambda f, x: None) is None


def test_vjp_against_the_hand_gradient(monkeypatch):
    """vjp's pullback, called several times with different cotangents (0.0 included), on the same records."""
    text = W1 + "def main = let (y, pb) = vjp f (2.0, 5.0) in (y, pb 1.0, pb (-2.5), pb 0.0)\n"
    calls = general_calls(monkeypatch)
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert calls == ["vjp_value"]  # (only the run without entries)
    y, (g1, g2) = w1_oracle(2.0, 5.0)
    assert fast[0] == pytest.approx(y, rel=1e-14)
    assert fast[1] == pytest.approx((g1, g2), rel=1e-14)
    assert fast[2] == pytest.approx((-2.5 * g1, -2.5 * g2), rel=1e-14)
    assert bits(fast[3]) == bits((0.0, 0.0))
    assert bits(fast) == bits(slow)


def test_vjp_non_finite_pullback_takes_the_order_free_pass(monkeypatch):
    """∂x = log y = -inf, ∂y = x / y = inf at (1, 0); with the cotangent 0.0 every path is 0 * inf: nan."""
    text = "def main = let (y, pb) = vjp (fun (x, y) -> x * log y) (1.0, 0.0) in (pb 1.0, pb 0.0, pb 2.0)"
    (fast, fm), (slow, sm) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow) == bits(((-math.inf, math.inf), (math.nan, math.nan), (-math.inf, math.inf)))
    assert fm.counters.as_dict() == sm.counters.as_dict()
    assert fm.counters.extra["order_free_passes"] == 3


def test_vjp_of_a_constant_and_with_int_leaves(monkeypatch):
    text = ("def main = (let (y, pb) = vjp (fun (x, y) -> 2.0) (1.0, 3.0) in (y, pb 1.0),"
            " let (y, pb) = vjp (fun (x, n) -> x * float n) (1.5, 4) in (y, pb 2.0))")
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert fast == ((2.0, (0.0, 0.0)), (6.0, (8.0, 0)))
    assert bits(fast) == bits(slow)


# ---- list inputs: [Real] injected by one comprehension, other lists (of tuples, of lists) by the general walks

W4 = "def loss (xs : [Real]) = sum (map (fun x -> sin x * x) xs)\n"


def dl_list(xs):
    return "[" + ", ".join(repr(float(x)) for x in xs) + "]"


@pytest.mark.parametrize("xs", [[0.5], [0.1, -2.0, 3.5], list(np.linspace(-3.0, 3.0, 50)), []])
def test_w4_list_against_numpy(xs, monkeypatch):
    """d/dx_i sum_j sin x_j * x_j = cos x_i * x_i + sin x_i; the empty list: (0.0, [])."""
    text = W4 + f"def main = (value_and_grad loss {dl_list(xs)}, grad loss {dl_list(xs)})\n"
    calls = general_calls(monkeypatch)
    (fast, fm), (slow, sm) = run_both(text, monkeypatch)
    assert calls == ["value_and_grad", "grad"]  # (only the run without entries)
    x = np.array(xs, dtype=float)
    (y, g), g2 = fast
    assert type(g) is list and type(g2) is list and len(g) == len(xs)
    assert y == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-13, abs=1e-15)
    assert g == pytest.approx(list(np.cos(x) * x + np.sin(x)), rel=1e-13, abs=1e-15)
    assert g2 == g
    assert bits(fast) == bits(slow)
    assert fm.counters.as_dict() == sm.counters.as_dict()


def mlp_oracle(w1, b1, w2, b2, x, t):
    """A one-hidden-layer tanh MLP's squared loss and its gradient by hand (numpy): h = tanh(W1 x + b1),
    e = W2 h + b2 - t, loss e^2; dW2 = 2e h, db2 = 2e, dz = W2^T 2e (1 - h^2), dW1 = dz x^T, db1 = dz."""
    w1, b1, w2, b2, x = map(np.array, (w1, b1, w2, b2, x))
    h = np.tanh(w1 @ x + b1)
    e = float((w2 @ h + b2)[0] - t)
    dz = (w2.T @ np.array([2.0 * e])) * (1.0 - h * h)
    return e * e, [(np.outer(dz, x).tolist(), dz.tolist()), (np.outer([2.0 * e], h).tolist(), [2.0 * e])]


def test_mlp_parameters_against_numpy(monkeypatch):
    """W5's shape, [[[Real]] * [Real]]: a list of (matrix, vector) layers, rebuilt by the general walks."""
    w1, b1 = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.25]], [0.0, 0.1, -0.1]
    w2, b2 = [[0.5, -0.6, 0.7]], [0.2]
    x, t = [0.8, -1.5], 0.3
    layers = f"[({[list(map(float, r)) for r in w1]}, {b1}), ({w2}, {b2})]"
    text = (f"def loss (layers : [[[Real]] * [Real]]) = let e = head (mlp tanh layers {x}) - {t} in e * e\n"
            f"def main = value_and_grad loss {layers}\n")
    calls = general_calls(monkeypatch)
    (fast, fm), (slow, sm) = run_both(text, monkeypatch)
    assert calls == ["value_and_grad"]  # (only the run without entries)
    y, g = mlp_oracle(w1, b1, w2, b2, x, t)
    assert fast[0] == pytest.approx(y, rel=1e-13)
    for (dw, db), (ow, ob) in zip(fast[1], g):
        assert [r for r in dw] == [pytest.approx(r, rel=1e-12, abs=1e-15) for r in ow]
        assert db == pytest.approx(ob, rel=1e-12, abs=1e-15)
    assert bits(fast) == bits(slow)
    assert fm.counters.as_dict() == sm.counters.as_dict()


# (program, expected by hand): list shapes and special cases
LIST_CASES = [
    # sinks nothing reaches: 0.0
    ("def main = grad (fun xs -> head xs * head xs) [3.0, 1.0, 2.0]", [6.0, 0.0, 0.0]),
    # relu below 0: the symbolic zero at a sink, settled to 0.0 (not -0.0)
    ("def main = grad (fun xs -> sum (map relu xs) * 2.0) [-1.0, 2.0]", [0.0, 2.0]),
    # a constant function of a list: no backpropagator, every real 0.0
    ("def main = value_and_grad (fun (xs : [Real]) -> 3.0) [1.0, 2.0]", (3.0, [0.0, 0.0])),
    # a ragged list of lists: d/dx of sum x^2 = 2x, in the input's shape
    ("def main = grad (fun m -> sum (map (fun row -> sum (map (fun x -> x * x) row)) m)) [[1.0, 2.0], [], [3.0]]",
     [[2.0, 4.0], [], [6.0]]),
    # a tuple of a list, a Real and a list of Int: Int leaves get 0
    ("def main = grad (fun (xs, a, ns) -> a * dot xs (map float ns)) ([1.0, 2.0], 3.0, [4, 5])",
     ([12.0, 15.0], 14.0, [0, 0])),
    # a list of pairs
    ("def main = grad (fun ps -> sum (map (fun (x, y) -> x * y) ps)) [(1.0, 2.0), (3.0, 4.0)]",
     [(2.0, 1.0), (4.0, 3.0)]),
    # the output is an element: the seed lands on a sink
    ("def main = grad (fun xs -> get xs 1) [5.0, 6.0, 7.0]", [0.0, 1.0, 0.0]),
    # a closure over a list, lifted on every call
    ("def main = let c = [2.0, 3.0] in map (fun s -> grad (fun xs -> s * dot c xs) [1.0, 1.0]) [1.0, 2.0]",
     [[2.0, 3.0], [4.0, 6.0]]),
    # empty lists everywhere
    ("def main = grad (fun (xs, m) -> sum xs + sum (map sum m)) (([] : [Real]), ([] : [[Real]]))", ([], [])),
]


@pytest.mark.parametrize("text, expected", LIST_CASES)
def test_list_shapes_and_special_cases(text, expected, monkeypatch):
    calls = general_calls(monkeypatch)
    assert bits(run(text)) == bits(expected)
    assert calls == []  # the entry, never the general path
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow)


def test_list_vjp_against_numpy(monkeypatch):
    """vjp of a list input: the pullback called with several cotangents (0.0 included) on the same records,
    and one whose gradient is not finite (the order-free pass, once per call)."""
    xs = [0.1, -2.0, 3.5]
    text = (W4 + f"def main = let (y, pb) = vjp loss {dl_list(xs)} in (y, pb 1.0, pb (-2.5), pb 0.0,"
            " let (z, pz) = vjp (fun xs -> sum (map sqrt xs)) [0.0, 4.0] in (pz 1.0, pz 0.0))\n")
    (fast, fm), (slow, sm) = run_both(text, monkeypatch)
    x = np.array(xs)
    g = np.cos(x) * x + np.sin(x)
    assert fast[0] == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-14)
    assert fast[1] == pytest.approx(list(g), rel=1e-14)
    assert fast[2] == pytest.approx(list(-2.5 * g), rel=1e-14)
    assert fast[3] == [0.0, 0.0, 0.0]  # (signed zeros as the sweep sums them: checked against the general path)
    assert bits(fast[4]) == bits(([math.inf, 0.25], [math.nan, 0.0]))
    assert bits(fast) == bits(slow)
    assert fm.counters.as_dict() == sm.counters.as_dict()
    assert fm.counters.extra["order_free_passes"] == 2


def test_the_list_entry_source():
    """[Real]: one comprehension in, the pending arguments' slice out; a tuple with lists: the general walks."""
    from lang.back.entries import scalar_entry
    from lang.back.machine import Machine
    from lang.front.loader import World
    from lang.model.types import ARRAY, INT, REAL, TList, TTuple
    machine = Machine(World(), get("backprop"))
    entry = scalar_entry(machine.ad, "value_and_grad", TList(REAL), REAL, None, lambda f, x: None)
    assert "x_dual = None if raw is not None else list(zip(x, range(n)))" in entry.source  # (floats: streams.py)
    assert "return (y, g)" in entry.source
    entry = scalar_entry(machine.ad, "grad", TTuple((TList(TList(REAL)), REAL)), REAL, None, lambda f, x: None)
    assert "x_dual, n = inject(x, 0)" in entry.source
    assert "return rebuild(x, g, 0)[0]" in entry.source
    # no reals at all, or an array inside: the general path
    assert scalar_entry(machine.ad, "grad", TList(INT), REAL, None, lambda f, x: None) is None
    assert scalar_entry(machine.ad, "grad", TList(ARRAY), REAL, None, lambda f, x: None) is None


@pytest.mark.parametrize("adj, expected", [
    ([1.5, 2.0], [1.5, 2.0]),
    ([-0.0, 2.0], [-0.0, 2.0]),                   # a signed zero kept as the sweep gave it
    ("ZERO", [0.0, 2.0]),                         # the symbolic zero (equal to 0.0): settled, a float 0.0
    ([None, 2.0], [0.0, 2.0]),                    # a sink nothing reached
    ([1e308, 1e308], [1e308, 1e308]),             # finite reals whose sum overflows: settled one by one
    ([np.float64(1.0), 2.0], "general"),          # a real of another type: the general path
    ([1.0, math.inf], "order_free"),              # not finite: the order-free pass
    ([math.nan, None], "order_free"),
])
def test_the_list_entry_settles_what_the_sweep_gives(adj, expected):
    """The list entry's check of the gradient: every real a finite float, else settled or handed on — with the
    sweep's result put in by hand (the entry's `sweep_one`), so that each kind of pending argument is met."""
    from lang.back.entries import scalar_entry
    from lang.back.machine import Machine
    from lang.model.types import REAL, TList
    from lang.model.zeros import ZERO
    if adj == "ZERO":
        adj = [ZERO, 2.0]
    adj, expected = adj + [1.0, 1.0], expected + [1.0, 1.0] if isinstance(expected, list) else expected
    # (a record of four parents: not the one of two or three the entry sweeps itself)
    program = load_source("def loss (xs : [Real]) = head xs * get xs 1 * get xs 2 * get xs 3\n")
    machine = Machine(program.world, get("backprop"))
    f = run_deep(lambda: machine.global_value(program.module.id, "loss", ()))
    entry = scalar_entry(machine.ad, "value_and_grad", TList(REAL), REAL, None, lambda f, x: "general")
    entry.__globals__["sweep_one"] = lambda records, b, ct, n: list(adj)  # (the tape: the sinks and one record)
    entry.__globals__["order_free"] = lambda f, x, u, tape=None: "order_free"
    xs = [3.0, 0.5, 1.0, 1.0]
    y, g = run_deep(lambda: entry(f, xs)) if expected != "general" else (None, run_deep(lambda: entry(f, xs)))
    assert bits(g) == bits(expected)
    if isinstance(expected, list):
        assert y == 1.5 and [type(r) for r in g] == [float] * 4


# ---- a partial application written at the site: `value_and_grad (recur n) y` (Gen.primitive, `entry.partial`)

def flat(v):
    """The floats of a nested value, in order (for pytest.approx)."""
    return [y for x in v for y in flat(x)] if isinstance(v, (tuple, list)) else [v]


PARTIAL = """\
def recur (n : Int) (y : Real) = if n == 0 then y else recur (n - 1) (sin y * y + 0.5 * y)
def named (s : String) (b : Bool) (n : Int) ((x, y) : Real * Real) = if b then x * y * float n else y
def scaled (a : Real) (n : Int) (y : Real) = a * recur n y
def listed (k : Int) (xs : [Real]) = sum (map (fun x -> exp (x * float k)) xs)
"""


@pytest.mark.parametrize("call, expected", [
    # Ints: the entry takes recur and n (the first call, before recur's transform exists, through the closure)
    ("map (fun n -> value_and_grad (recur n) 1.0) [0, 1, 3, 3, 10]", None),
    # a String, a Bool and an Int given
    ('map (fun b -> grad (named "s" b 3) (2.0, 5.0)) [true, false, true]', [(15.0, 6.0), (0.0, 1.0), (15.0, 6.0)]),
    # a Real given: lifted as a constant (the closure's entry), and a function given (the same)
    ("map (fun a -> grad (scaled a 2) 1.0) [2.0, 0.5]", None),
    ("map (fun n -> grad (iterate n sin) 1.0) [0, 2]", [1.0, math.cos(math.sin(1.0)) * math.cos(1.0)]),
    # a non-finite gradient: the order-free pass on the closure made then
    ("map (fun n -> grad (recur n) (1.0 / 0.0)) [0, 1]", None),
    # vjp
    ("map (fun n -> snd (vjp (recur n) 1.0) 2.0) [1, 4]", None),
    # a list input, the gradient finite, then not (the order-free pass on the closure)
    ("map (fun k -> grad (listed k) [0.5, 1.0]) [1, 2]", [[math.exp(0.5), math.exp(1.0)],
                                                          [2 * math.exp(1.0), 2 * math.exp(2.0)]]),
    ("map (fun k -> grad (listed k) [800.0, 1.0]) [1, 2]", None),
])
def test_a_partial_application_written_at_the_site(call, expected, monkeypatch):
    """The same bits as the general path, for every kind of argument given, finite or not."""
    text = PARTIAL + f"def main = {call}\n"
    calls = general_calls(monkeypatch)
    value = run(text)
    if "1.0 / 0.0" not in call and "800" not in call:
        assert calls == []  # the entry, never the general path
    (fast, _), (slow, _) = run_both(text, monkeypatch)
    assert bits(fast) == bits(slow) == bits(value)
    if expected is not None:
        if isinstance(expected[0], tuple):
            assert value == expected
        else:
            assert flat(value) == pytest.approx(flat(expected), rel=1e-15)


def test_a_partial_application_written_at_the_site_makes_no_closure():
    """The site's code calls the entry with the function and its arguments (no `_Fun`); the entry for one given
    argument checks it and calls the transform with it."""
    from lang.back.machine import Machine
    program = load_source(PARTIAL + "def vg (n : Int) (y : Real) = value_and_grad (recur n) y\n")
    machine = Machine(program.world, get("backprop"))
    fn = run_deep(lambda: machine.global_value(program.module.id, "vg", ()))
    source = fn.code.info["python"]
    assert "_Fun" not in source and "(k0, a0, a1)" in source
    first, again = run_deep(lambda: fn.body((), 3, 1.0)), run_deep(lambda: fn.body((), 3, 1.0))
    assert bits(first) == bits(again)  # (the first call through the closure, the second by the entry's own lift)


# ---- the walks of a nested input type (lang/back/shapes.py, `_nested_walk`): one comprehension each

from hypothesis import given, settings, strategies as st  # noqa: E402

from lang.back.shapes import Shapes, _nested_walk  # noqa: E402
from lang.model.types import BOOL, INT, REAL, UNIT, TList, TTuple  # noqa: E402

LEAF_TYPES = {REAL: st.floats(allow_nan=True, allow_infinity=True), INT: st.integers(-5, 5),
              BOOL: st.booleans(), UNIT: st.just(())}


def _types():
    """Types built of lists and tuples from Real, Int, Bool and Unit."""
    leaves = st.sampled_from(list(LEAF_TYPES))
    return st.recursive(leaves, lambda inner: st.one_of(
        inner.map(TList), st.lists(inner, min_size=2, max_size=3).map(lambda ts: TTuple(tuple(ts)))), max_leaves=6)


def _value(t):
    """A strategy for values of type t (lists of 0 to 3 elements)."""
    if isinstance(t, TList):
        return st.lists(_value(t.item), max_size=3)
    if isinstance(t, TTuple):
        return st.tuples(*[_value(i) for i in t.items])
    return LEAF_TYPES[t]


def inject_by_hand(v, t, i):
    """The k-th real r of v (in order: lists from the first element, tuples from the left) as (r, i + k)."""
    if t == REAL:
        return (v, i), i + 1
    if isinstance(t, TList):
        out = []
        for x in v:
            y, i = inject_by_hand(x, t.item, i)
            out.append(y)
        return out, i
    if isinstance(t, TTuple):
        out = []
        for x, ti in zip(v, t.items):
            y, i = inject_by_hand(x, ti, i)
            out.append(y)
        return tuple(out), i
    return v, i


def rebuild_by_hand(shape, t, reals, i):
    """A value shaped like `shape` whose reals are reals[i], reals[i + 1], ...; Int, Bool, Unit leaves zero."""
    if t == REAL:
        return reals[i], i + 1
    if isinstance(t, (TList, TTuple)):
        out = []
        for x, ti in zip(shape, [t.item] * len(shape) if isinstance(t, TList) else t.items):
            y, i = rebuild_by_hand(x, ti, reals, i)
            out.append(y)
        return (out if isinstance(t, TList) else tuple(out)), i
    return {INT: 0, BOOL: False, UNIT: ()}[t], i


@settings(max_examples=300, deadline=None)
@given(st.data(), _types(), st.integers(0, 4))
def test_nested_walks_against_walks_by_hand(data, t, first):
    """inject and rebuild of any nested type: the identities and reals of the walks written out by hand (the
    general walks' order), and the next identity / index; a type with no list or [Real] alone: no generated walk."""
    walk = _nested_walk("inject", t)
    has_list = "TList" in repr(t)
    if not has_list or t == TList(REAL):
        assert walk is None
        return
    v = data.draw(_value(t))
    injected, nxt = walk(v, first)
    assert bits((injected, nxt)) == bits(inject_by_hand(v, t, first))
    reals = [float(k) + 0.5 for k in range(first)] + data.draw(st.lists(st.floats(), min_size=nxt - first,
                                                                        max_size=nxt - first + 2))
    for kind in ("rebuild", "rebuild_leaves"):
        assert bits(_nested_walk(kind, t)(v, reals, first)) == bits(rebuild_by_hand(v, t, reals, first))
    shapes = Shapes()  # (and the walks the kernel and the entries fetch are these)
    assert shapes._get("inject", t, shapes._make_inject).source == walk.source


def test_the_mlp_walks_are_one_comprehension():
    """[[[Real]] * [Real]]: the injection draws identities from one counter, the rebuild slices the reals:
    no call per row, no recursion."""
    t = TList(TTuple((TList(TList(REAL)), TList(REAL))))
    assert _nested_walk("inject", t).source == (
        "def walk(v, i):\n    c = count(i)\n"
        "    return [([list(zip(a1, c)) for a1 in a0], list(zip(a2, c))) for (a0, a2) in v], next(c)\n")
    assert _nested_walk("rebuild_leaves", t).source == (
        "def walk(v, reals, i):\n"
        "    return [([reals[i:(i := i + len(a1))] for a1 in a0], reals[i:(i := i + len(a2))]) for (a0, a2) in v], i\n")


@pytest.mark.parametrize("site", ["vg", "vj"])
def test_the_tape_is_let_go_before_the_collector_is_back(site, monkeypatch):
    """grad and value_and_grad drop the records and the injected input while the collector is still off (vjp the
    injected input: its pullback sweeps the records later): on an MLP's 577 parameters (a tape of ~1,300 objects
    made with the collector off) a collection the call starts once the collector is back walks a few objects,
    not the tape, which holding it on would make it walk (and keep for the older generations). The value is
    the general path's, bit for bit."""
    import gc
    import threading

    from benchmarks.workloads import w5_inputs
    from lang.back.machine import Machine
    from lang.front.loader import Loader, World
    from lang.model.spans import Source
    from lang.model.values import apply
    text = open("benchmarks/workloads/w5_mlp.dl").read() + (
        "def vj (x : [Real]) (t : Real) (layers : [[[Real]] * [Real]]) =\n"
        "  let (y, pb) = vjp (loss x t) layers in (y, pb 1.0)\n")

    def go():
        world = World()
        loader = Loader(world)
        loader.load_prelude()
        mod = loader.load_source(Source("w5.dl", text), "w5.dl")
        vg = Machine(world, mode=get("backprop")).global_value(mod.id, site, ())
        args = w5_inputs()
        apply(vg, args)  # (compiles)
        starts = []
        callback = lambda phase, info: phase == "start" and starts.append(  # noqa: E731
            sum(len(gc.get_objects(k)) for k in range(info["generation"] + 1)))
        gc.collect()
        gc.callbacks.append(callback)
        try:
            out = apply(vg, args)
        finally:
            gc.callbacks.remove(callback)
        return out, starts
    result = {}
    threading.stack_size(1 << 27)
    t = threading.Thread(target=lambda: result.setdefault("v", go()))
    t.start()
    t.join()
    (y, grad), starts = result["v"]
    assert all(walked < 200 for walked in starts), starts
    x, t_, layers = w5_inputs()
    (w1, b1), (w2, b2) = layers
    oy, og = mlp_oracle(w1, b1, w2, b2, x, t_)
    assert y == pytest.approx(oy, rel=1e-13)
    assert grad[0][1] == pytest.approx(og[0][1], rel=1e-11, abs=1e-15)
    text_main = text.replace("def main = fst (vg", f"def main = ({site}")
    (fast, _), (slow, _) = run_both(text_main, monkeypatch)
    assert bits(fast) == bits(slow)


# ---- a site's own function of the function it is called with (`fuse`, `_FUSED`): ←D(f)'s body on the floats
# written in the site's function, from the site's second call with f on

FUSED = W4 + """\
def logsum (xs : [Real]) = log (sum (map (fun x -> x * x) xs))
def big (xs : [Real]) = sum (map exp xs)
def bad (xs : [Real]) = sum (map (fun x -> if x > 2.0 then head ([] : [Real]) else x * x) xs)
def vg (f : [Real] -> Real) (xs : [Real]) = value_and_grad f xs
def gr (f : [Real] -> Real) (xs : [Real]) = grad f xs
def vj (f : [Real] -> Real) (xs : [Real]) = let (y, pb) = vjp f xs in (y, pb 2.0)
"""
LISTS = [[0.5, -1.25, 2.0], [0.0, -0.0, 3.0, 1e-300], [], [float(v) for v in np.linspace(-4.0, 4.0, 300)], [0.25] * 7]


def fused_calls(calls: list, names=("vg", "gr")):
    """Each (site, function, list) call in turn on one machine, and each site's Site after them."""
    from lang.back.entries import Site
    from lang.back.machine import Machine
    from lang.model.values import apply
    program = load_source(FUSED)
    machine = Machine(program.world, get("backprop"))
    fns = {n: machine.global_value(program.module.id, n, ()) for n in ("loss", "logsum", "big", "bad", *names)}
    out = [run_deep(lambda: apply(fns[site], (fns[f], xs))) for site, f, xs in calls]
    sites = {}
    for n in names:
        found = [c.cell_contents for c in fns[n].body.__closure__ if type(c.cell_contents) is Site]
        sites[n] = found[0]
    return out, sites


def general_values(calls: list, monkeypatch):
    """The same calls on the general path (no entries)."""
    with monkeypatch.context() as m:
        m.setattr(kernel_module, "scalar_entry", lambda *a: None)
        from lang.back.machine import Machine
        from lang.model.values import apply
        program = load_source(FUSED)
        machine = Machine(program.world, get("backprop"))
        fns = {n: machine.global_value(program.module.id, n, ()) for n in ("loss", "logsum", "big", "vg", "gr", "vj")}
        return [run_deep(lambda: apply(fns[site], (fns[f], xs))) for site, f, xs in calls]


def test_the_fused_function_against_numpy_and_the_general_path(monkeypatch):
    """From the second call on, the site calls its own function of `loss` (its body on the floats written in it):
    the value and gradient by hand with numpy, bit for bit the general path's, on lists short and long (past
    GC_INPUTS: the collector switched off), empty, and with signed zeros (a gradient real equal to 0.0)."""
    calls = [(site, "loss", xs) for xs in LISTS for site in ("vg", "gr")]
    out, sites = fused_calls(calls)
    for s in sites.values():
        assert s.call.__name__ == "fused" and not s.fresh
        assert "for v" in s.call.source and "return entry(f, x)" in s.call.source
    for (site, _, xs), v in zip(calls, out):
        x = np.array(xs, dtype=float)
        g = list(np.cos(x) * x + np.sin(x))
        if site == "vg":
            assert v[0] == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-13, abs=1e-300)
            v = v[1]
        assert type(v) is list and all(type(r) is float for r in v)
        assert v == pytest.approx(g, rel=1e-13, abs=1e-300)
    assert bits(out) == bits(general_values(calls, monkeypatch))
    assert bits(out[3][:2]) == bits(out[2][1][:2]) == bits([0.0, -0.0])


def test_the_fused_function_gives_way_to_the_entry_for_another_function(monkeypatch):
    """A site made its own function of the first function with a body on the floats (`loss`); called with another
    (`logsum`, whose gradient is not a chain on the sinks alone: the general sweep), it calls the entry."""
    xs = [[0.5, -1.25, 2.0], [3.0, 1.0], [1e-3, 2.0, -7.0, 0.5]]
    calls = [("vg", f, x) for x in xs for f in ("loss", "logsum")]
    out, sites = fused_calls(calls, names=("vg",))
    assert sites["vg"].call.__globals__["F"] is not None and sites["vg"].call.__name__ == "fused"
    for (_, f, x), (y, g) in zip(calls, out):
        x = np.array(x)
        if f == "logsum":
            s = float(np.sum(x * x))
            assert y == pytest.approx(math.log(s), rel=1e-14)
            assert g == pytest.approx(list(2.0 * x / s), rel=1e-13)
    assert bits(out) == bits(general_values(calls, monkeypatch))


def test_the_fused_function_on_a_gradient_that_is_not_finite_and_on_an_error(monkeypatch):
    """The fused function's gradient that is not finite takes the order-free pass, as the entry's does; an error
    raised in its loop is the same diagnostic as on the general path."""
    calls = [("vg", "big", [1.0, 2.0]), ("vg", "big", [1.0, 800.0]), ("gr", "big", [0.5]), ("gr", "big", [-1e3, 1e3])]
    out, sites = fused_calls(calls)
    assert sites["vg"].call.__name__ == "fused"
    assert bits(out[1]) == bits((math.inf, [math.e, math.inf]))
    assert bits(out[3]) == bits([math.exp(-1e3), math.inf])
    assert bits(out) == bits(general_values(calls, monkeypatch))

    def message(text):
        with pytest.raises(DlError) as info:
            run(text)
        return info.value.kind, str(info.value.span), info.value.message
    text = FUSED + "def main = map (fun xs -> vg bad xs) [[1.0], [0.5, 1.5], [1.0, 3.0]]\n"
    fast = message(text)
    with monkeypatch.context() as m:
        m.setattr(kernel_module, "scalar_entry", lambda *a: None)
        assert message(text) == fast
    assert fast[2] == "head of an empty list"


def test_a_vjp_site_keeps_its_entry(monkeypatch):
    """vjp's entry has no function of its own: called again and again, it returns its pullback each time."""
    calls = [("vj", "loss", xs) for xs in LISTS]
    out, sites = fused_calls(calls, names=("vj",))
    assert sites["vj"].call.__name__ == "entry"
    for xs, (y, g) in zip(LISTS, out):
        x = np.array(xs, dtype=float)
        assert y == pytest.approx(float(np.sum(np.sin(x) * x)), rel=1e-13, abs=1e-300)
        assert g == pytest.approx(list(2.0 * (np.cos(x) * x + np.sin(x))), rel=1e-13, abs=1e-300)
    assert bits(out) == bits(general_values(calls, monkeypatch))
