"""Specialisation of a known function into a fold (lang/transforms/fusion.py, `specialise`): the review of its
side conditions (docs/transforms.md, Fusion).

Specialising may not make two variables one: `iterate n (step b b) x`, `f acc acc` in the step, a variable applied
that the function also captures, one variable given to two parameters of the global. Preaccumulation would add the
two contributions to that backpropagator before multiplying, where the call's record added them one by one: the
last bits of the gradient moved. Each program here is checked against its own gradient worked out by hand in Python
(forward mode on floats: `Dual`), and bit for bit against the same program with specialisation turned off. Where no
two variables become one (W7, `step x b` from x, a lambda capturing a variable named like the global's binders)
it still fires; a chain of scaled steps whose two fixed parents are one backpropagator (`let c = a` captured beside
a) sweeps as the step records do; an error inside a specialised function of the program's own keeps its position.
"""
import math

import pytest

from conftest import failure, run_with_machine
from lang.back.linear import Factoring
from lang.transforms import fusion

from test_fusion import transformed, unspecialised


class Dual:
    """A float with its partial derivatives with respect to the inputs (forward mode, by hand)."""

    def __init__(self, v: float, d: tuple):
        self.v, self.d = v, d

    def __add__(self, o):
        o = lift(o, len(self.d))
        return Dual(self.v + o.v, tuple(a + b for a, b in zip(self.d, o.d)))

    __radd__ = __add__

    def __mul__(self, o):
        o = lift(o, len(self.d))
        return Dual(self.v * o.v, tuple(a * o.v + self.v * b for a, b in zip(self.d, o.d)))

    __rmul__ = __mul__


def lift(x, k: int) -> Dual:
    return x if isinstance(x, Dual) else Dual(float(x), (0.0,) * k)


def tanh(x: Dual) -> Dual:
    t = math.tanh(x.v)
    return Dual(t, tuple((1.0 - t * t) * a for a in x.d))


def inputs(*values: float) -> list[Dual]:
    k = len(values)
    return [Dual(v, tuple(1.0 if i == j else 0.0 for j in range(k))) for i, v in enumerate(values)]


def by_hand(step, init, n: int, p: tuple):
    """(value, gradient) of `iterate n step (init p)` with respect to p, by forward mode."""
    xs = inputs(*p)
    y = init(*xs)
    for _ in range(n):
        y = step(y, *xs)
    return y.v, y.d


def value(text: str, **kw):
    return run_with_machine(text, counting=False, **kw)[0]


# name: (program defining f, the step and the start by hand, n, (x, a, b) where merging moved the last bits)
ALIASED = {
    # a partial application giving one variable twice: s's a and b become one b
    "given twice": ("def s a b y = (a + a) * (b * y) + y * a\n"
                    "def f (n : Int) ((x, a, b) : Real * Real * Real) = iterate n (s b b) x\n",
                    lambda y, x, a, b: (b + b) * (b * y) + y * b, lambda x, a, b: x,
                    5, (0.08288824308719445, 1.32, -0.46)),
    # the function applied to one variable twice
    "applied twice": ("def dup g (n : Int) (x : Real) = fold (fun acc _ -> g acc acc) x (range n)\n"
                      "def f (n : Int) ((x, a, b) : Real * Real * Real) = "
                      "dup (fun y z -> y * z * a + y * b + z * a) n x\n",
                      lambda y, x, a, b: y * y * a + y * b + y * a, lambda x, a, b: x,
                      8, (0.7294399812674932, 0.02, -0.5898944672012472)),
    # applied to the global's parameter k, given a: the lambda's c and its captured a become one
    "applied to a captured variable": (
        "def app g (k : Real) (n : Int) (x : Real) = fold (fun acc _ -> g acc k) x (range n)\n"
        "def f (n : Int) ((x, a, b) : Real * Real * Real) = app (fun y c -> y * c * a + c * b + a * y) a n x\n",
        lambda y, x, a, b: y * a * a + a * b + a * y, lambda x, a, b: x,
        3, (-0.3, -0.05931908094719152, -0.26)),
    # the same with a partial application's argument
    "applied to a given variable": (
        "def st a y c = y * c * a + c + a * y\n"
        "def app g (k : Real) (n : Int) (x : Real) = fold (fun acc _ -> g acc k) x (range n)\n"
        "def f (n : Int) ((x, a, b) : Real * Real * Real) = app (st a) a n x\n",
        lambda y, x, a, b: y * a * a + a + a * y, lambda x, a, b: x,
        2, (-0.0, -0.092, 0.6101462658115082)),
    # one variable given to two parameters of the global, which its body multiplies (here: let-bound, specialised)
    "two parameters": (
        "def app g (k : Real) (j : Real) (n : Int) (x : Real) = fold (fun acc _ -> g acc) (x * k + x * j + k * j) "
        "(range n)\n"
        "def f (n : Int) ((x, a, b) : Real * Real * Real) = app (fun y -> y * b) a a n x\n",
        lambda y, x, a, b: y * b, lambda x, a, b: x * a + x * a + a * a,
        5, (0.85, 0.06, -0.2)),
}


@pytest.mark.parametrize("case", sorted(ALIASED))
def test_no_two_variables_made_one(case):
    """The gradient by hand, and to the bit the one of the program with specialisation off."""
    text, step, init, n, p = ALIASED[case]
    text += f"def main = value_and_grad (f {n}) {p!r}\n"
    got = value(text)
    want_y, want_g = by_hand(step, init, n, p)
    assert got[0] == pytest.approx(want_y, rel=1e-13, abs=1e-300)
    assert got[1] == pytest.approx(want_g, rel=1e-12, abs=1e-300)
    assert repr(got) == repr(unspecialised(lambda: value(text)))


@pytest.mark.parametrize("case,kept", [("given twice", "iterate"), ("applied twice", "dup"),
                                       ("applied to a captured variable", "app"),
                                       ("applied to a given variable", "app"), ("two parameters", None)])
def test_what_is_specialised_where_variables_coincide(case, kept):
    """The calls that would make two variables one keep their call; a variable given to two of the global's own
    parameters is let-bound for the second, and the call specialised."""
    out = transformed(ALIASED[case][0], "f")
    if kept is None:
        assert "app" not in out and "fold" in out
    else:
        assert kept in out


W7 = "def step a b x = tanh (a * x + b)\n"
STILL = {
    "w7": W7 + "def f (n : Int) ((x, a, b) : Real * Real * Real) = iterate n (step a b) x\n",
    # x given to step and to iterate: the step's x' is a fixed parent, the fold's start x: not one expression
    "start": W7 + "def f (n : Int) ((x, a, b) : Real * Real * Real) = iterate n (step x b) x\n",
    # a lambda capturing variables named as iterate's own binders and parameters (acc, f, x, n)
    "capture": "def g (acc : Real) (f : Real) (m : Int) (x : Real) = iterate m (fun y -> tanh (acc * y + f) + x) x\n"
               "def f (n : Int) ((x, a, b) : Real * Real * Real) = g a b n x\n",
}
STILL_BY_HAND = {
    "w7": (lambda y, x, a, b: tanh(a * y + b), lambda x, a, b: x),
    "start": (lambda y, x, a, b: tanh(x * y + b), lambda x, a, b: x),
    "capture": (lambda y, x, a, b: tanh(a * y + b) + x, lambda x, a, b: x),
}


@pytest.mark.parametrize("case", sorted(STILL))
@pytest.mark.parametrize("n,p", [(6, (0.5, 0.99, 0.001)), (3, (-0.7, 1.3, 0.25)), (0, (0.5, 0.2, 0.1))])
def test_specialised_where_no_variables_coincide(case, n, p):
    """Specialised (no call of iterate left), the gradient by hand and, to the bit, without specialisation."""
    out = transformed(STILL[case], "f" if case != "capture" else "g")
    assert "iterate" not in out
    text = STILL[case] + f"def main = value_and_grad (f {n}) {p!r}\n"
    got = value(text)
    want_y, want_g = by_hand(*STILL_BY_HAND[case], n, p)
    assert got[0] == pytest.approx(want_y, rel=1e-13, abs=1e-300)
    assert got[1] == pytest.approx(want_g, rel=1e-12, abs=1e-300)
    assert repr(got) == repr(unspecialised(lambda: value(text)))


SAME_PARENT = W7 + "def f (n : Int) ((x, a) : Real * Real) = let c = a in iterate n (step a c) x\n"


@pytest.mark.parametrize("n,p", [(7, (0.5, 0.7)), (2, (-0.0, -0.3)), (4, (0.5, math.inf)), (3, (math.nan, 0.2))])
def test_a_scaled_chain_whose_fixed_parents_are_one_backpropagator(n, p, monkeypatch):
    """`let c = a` captured beside a: two variables, one backpropagator, so the chain's two fixed parents are one
    identity (the field-by-field sweep). The same bits as the step records (chains off) and the counting machine;
    the gradient by hand where finite."""
    text = SAME_PARENT + f"def main = value_and_grad (f {n}) ({p[0]!r}, {p[1]!r})\n".replace("inf", "1.0 / 0.0") \
        .replace("nan", "0.0 / 0.0")
    got = value(text)
    counted = run_with_machine(text, counting=True)[0]
    monkeypatch.setattr(Factoring, "fold_chain", lambda self, fn, depth: None)
    records = value(text)
    assert repr(got) == repr(records) == repr(counted)
    if all(math.isfinite(v) for v in p):
        want_y, want_g = by_hand(lambda y, x, a: tanh(a * y + a), lambda x, a: x, n, p)
        assert got[0] == pytest.approx(want_y, rel=1e-13) and got[1] == pytest.approx(want_g, rel=1e-12)


def test_an_error_in_a_specialised_function_of_the_program_keeps_its_position(tmp_path):
    """A global of the program's own whose body can fail (`head` of the empty list) specialised into the call: the
    error where the body wrote `head xs`, as without specialisation (its caret under `head xs`)."""
    program = "def myit f (xs : [Real]) (n : Int) = fold (fun acc _ -> f acc) (head xs) (range n)\n" \
              "def run (n : Int) ((x, a) : Real * Real) = myit (fun y -> y * a) (tail [x]) n + x\n"
    assert "myit" not in transformed(program, "run")
    path = tmp_path / "spec.dl"
    path.write_text(program + "def main (n : Int) = value_and_grad (run n) (0.5, 0.9)\n")
    d = failure(str(path), "3")
    assert (d["line"], d["col"], d["kind"]) == (1, 65, "runtime") and "head of an empty list" in d["message"]
    assert d["caret"].strip() == "^" * len("head xs")


def test_an_error_on_a_later_call_of_a_partial_application_entry(tmp_path):
    """`grad (f i) x` written at the site, i = 0, 1, 2: the third call, by the entry's own lift of f's transform, fails
    in f (index 2 of a list of 2) and reports it where f wrote `get`."""
    path = tmp_path / "later.dl"
    path.write_text("def f (n : Int) (x : Real) = x * get [1.0, 2.0] n\n"
                    "def main (n : Int) = fold (fun acc i -> acc + grad (f i) 1.5) 0.0 (range n)\n")
    d = failure(str(path), "4")
    assert (d["line"], d["col"], d["kind"]) == (1, 34, "runtime") and "index 2 out of range" in d["message"]
    assert d["caret"].strip() == "^" * len("get [1.0, 2.0] n")


def test_the_count_of_a_specialised_iterate_fails_at_the_call_on_a_later_call(tmp_path):
    """W7's `iterate n (step a b) x` specialised, reached through the entry of `value_and_grad (run n)` on its third
    call: `range` of a count too large, pointed at the program's call of iterate with the prelude's note."""
    path = tmp_path / "count.dl"
    path.write_text(W7 + "def run (n : Int) ((x, a, b) : Real * Real * Real) = iterate n (step a b) x\n"
                    "def main = map (fun n -> fst (value_and_grad (run n) (0.5, 0.99, 0.001))) "
                    "[2, 3, 100000000000000000]\n")
    out = failure(str(path))
    assert (out["line"], out["col"], out["kind"]) == (2, 54, "runtime")
    assert "range of 100000000000000000 elements" in out["message"]
    assert out["caret"].strip() == "^" * len("iterate n (step a b) x")
