"""Map/fold fusion in backprop's preaccumulated term (lang/transforms/fusion.py; docs/transforms.md, Fusion).

Fused programs' gradients against numpy by hand; one backpropagator per element;
the printed fused term type-checks and reads back; and the programs where fusion
must not fire (a lambda not written in place, a step that can fail) keep their
map, and report the error the program as written reports.
"""
import math

import numpy as np
import pytest

from conftest import failure, get, load_source, run_with_machine
from lang.front.mono import Specializer
from lang.model.printer import show_term
from lang.tools.workbench import default_instance, language, transform_term
from lang.transforms.check import check
from lang.transforms.read import parse_target

XS = [0.3, -1.2, 2.5, 0.0, 7.1, -0.4]
YS = [1.5, 0.2, -3.0, 4.4, 0.9]  # one shorter: zipWith truncates

SUM_SIN = "def loss (xs : [Real]) = sum (map (fun x -> sin x * x) xs)\n"
DOT = "def loss (p : [Real] * [Real]) = let (xs, ys) = p in sum (zipWith (fun a b -> a * sin b) xs ys)\n"
PRELUDE_DOT = "def loss (p : [Real] * [Real]) = let (xs, ys) = p in dot xs (map cos ys)\n"


def lit(v: list[float]) -> str:
    return "[" + ", ".join(repr(x) for x in v) + "]"


def fused_and_faithful(text: str):
    """(value, counters) of `main` preaccumulated (fused) and as ←D writes it (--no-preaccumulate)."""
    (a, m), (b, n) = run_with_machine(text), run_with_machine(text, preaccumulate=False)
    return a, b, m.counters, n.counters


def test_sum_of_a_map_against_numpy():
    """d/dx_i sum_i sin x_i x_i = cos x_i x_i + sin x_i; one backpropagator per element fused, not two."""
    text = SUM_SIN + f"def main = value_and_grad loss {lit(XS)}"
    (y, g), (y0, g0), pre, faithful = fused_and_faithful(text)
    x = np.array(XS)
    assert math.isclose(y, float(np.sum(np.sin(x) * x)), rel_tol=1e-13)
    assert np.allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-13, atol=0)
    assert y == y0 and np.allclose(g, g0, rtol=1e-14, atol=0)
    assert pre.bp_created == len(XS) and faithful.bp_created > 2 * len(XS)


@pytest.mark.parametrize("n", [10, 20])
def test_counters_count_the_fused_loop(n):
    """Against the unfused preaccumulated term (7n + 4 prims, 3n + 2 betas, 2n backpropagators: the map's
    and the fold's, preaccumulated): the map's own prim, its n lambda applications and sum's call are gone."""
    text = SUM_SIN + "def main (n : Int) = grad loss (build n (fun i -> float i))"
    _, m = run_with_machine(text, args=[str(n)])
    k = m.counters
    assert (k.prims, k.betas, k.bp_created, k.bp_run) == (7 * n + 3, 2 * n + 1, n, n)


@pytest.mark.parametrize("source", [DOT, PRELUDE_DOT])
def test_a_dot_product_against_numpy(source):
    """sum (zipWith (fun a b -> a * sin b) xs ys): d/dxs = sin ys, d/dys = xs cos ys (to the shorter length);
    the prelude's dot of xs and map cos ys: d/dxs = cos ys, d/dys = -xs sin ys."""
    text = source + f"def main = grad loss ({lit(XS)}, {lit(YS)})"
    (gx, gy), (hx, hy), pre, _ = fused_and_faithful(text)
    x, y = np.array(XS[:len(YS)]), np.array(YS)
    if source is DOT:
        want_x, want_y = np.sin(y), x * np.cos(y)
    else:
        want_x, want_y = np.cos(y), -x * np.sin(y)
    assert np.allclose(gx[:len(YS)], want_x, rtol=1e-13, atol=1e-15) and gx[len(YS):] == [0.0]
    assert np.allclose(gy, want_y, rtol=1e-13, atol=1e-15)
    assert np.allclose(gx, hx, rtol=1e-14, atol=0) and np.allclose(gy, hy, rtol=1e-14, atol=0)


def transformed(text: str, name: str = "loss") -> str:
    """`name`'s printed term in backprop mode, simplified as backprop runs it; checked, and read back."""
    program = load_source(text)
    d = next(d for d in program.module.defs if d.name == name)
    spec = Specializer(program.world)
    e = spec.get(d.module, d.name, default_instance(d.scheme))
    mode = get("backprop")
    lang = language(mode, spec)
    term = transform_term(e, mode, True, spec)
    check(term, e.ty, lang)
    module = program.module
    resolve = program.world.resolver({x.name: (x.module, x.name) for x in module.defs}, dict(module.exports))
    assert parse_target(show_term(term), resolve, lang.d_type(e.ty), lang) == term
    return show_term(term)


@pytest.mark.parametrize("source", [SUM_SIN, DOT, PRELUDE_DOT])
def test_the_fused_term_checks_and_reads_back(source):
    """sum and dot are inlined where their lambda is known, and the fold runs over the list itself (or pairs)."""
    out = transformed(source)
    assert "sum" not in out and "dot" not in out and out.count("fold") == 1
    assert out.count("map") == (source is PRELUDE_DOT)  # the map of cos over ys stays: zipWith's, not fold's input


def test_the_faithful_term_is_not_fused():
    """Without simplification (and so with --no-preaccumulate) the term is ←D's own: the map stays."""
    program = load_source(SUM_SIN)
    d = next(d for d in program.module.defs if d.name == "loss")
    spec = Specializer(program.world)
    e = spec.get(d.module, d.name, default_instance(d.scheme))
    out = show_term(transform_term(e, get("backprop"), False, spec))
    assert "map" in out and "sum@Real" in out


NOT_FUSED = {
    # the lambdas are parameters, not written in place
    "unknown lambda": "def loss (g : Real -> Real -> Real) (f : Real -> Real) (xs : [Real]) = fold g 0.0 (map f xs)\n",
    # the step can fail (floor of inf): running it between the map's steps could report its error first
    "failing step": "def loss (xs : [Real]) = fold (fun acc y -> acc + float (floor (1.0 / (y - 1.0)))) 0.0 "
                    "(map (fun x -> float (floor x)) xs)\n",
    # the step captures a variable named like the map's parameter
    "capture": "def loss (xs : [Real]) (y : Real) = fold (fun acc x -> acc + x * y) 0.0 (map (fun y -> y * y) xs)\n",
}


@pytest.mark.parametrize("case", sorted(NOT_FUSED))
def test_fusion_does_not_fire(case):
    assert "map" in transformed(NOT_FUSED[case])


def test_a_capture_is_not_fused_and_the_gradient_is_right():
    """d/dx_i sum_i x_i^2 y = 2 x_i y, d/dy = sum x_i^2."""
    text = NOT_FUSED["capture"] + f"def main = grad (fun (xs, y) -> loss xs y) ({lit(XS)}, 3.0)"
    (gx, gy), _ = run_with_machine(text)
    assert np.allclose(gx, 2 * np.array(XS) * 3.0, rtol=1e-14) and math.isclose(gy, sum(x * x for x in XS))


def test_the_error_of_the_program_as_written(tmp_path):
    """map's floor fails on the second element (inf), the step's on the first (1 / 0): the map's error comes
    first, as the program is written (fusion does not fire: the step can fail)."""
    f = tmp_path / "e.dl"
    f.write_text(NOT_FUSED["failing step"] + "def main = grad loss [1.0, 1.0 / 0.0]\n")
    d = failure(str(f))
    assert (d["line"], d["col"], d["message"]) == (1, 110, "floor of inf is not an Int")


def test_a_fused_map_that_fails_reports_its_error(tmp_path):
    """The step is total, so fused, the map's function still fails first at its first failing element."""
    f = tmp_path / "e.dl"
    f.write_text("def loss (xs : [Real]) = sum (map (fun x -> float (floor x) * x) xs)\n"
                 "def main = grad loss [1.5, 2.0, 1.0 / 0.0]\n")
    assert "map" not in transformed(f.read_text())
    d = failure(str(f))
    assert (d["line"], d["col"], d["message"]) == (1, 52, "floor of inf is not an Int")


@pytest.mark.parametrize("xs", [[1000.0, 1.0], [800.0, -800.0], [float("nan"), 1.0]])
def test_non_finite_gradients_are_the_unfused_terms(xs):
    """exp overflows: the order-free pass runs ←D's own term, so fused or not the non-finite results are equal."""
    items = ", ".join("(0.0 / 0.0)" if math.isnan(x) else repr(x) for x in xs)
    text = "def loss (xs : [Real]) = sum (map (fun x -> exp x * x - exp x) xs)\n" \
           f"def main = grad loss [{items}]"
    a, _ = run_with_machine(text)
    b, _ = run_with_machine(text, preaccumulate=False)
    assert not all(math.isfinite(v) for v in a)
    assert [repr(v) for v in a] == [repr(v) for v in b]


def test_a_closure_fused_keeps_its_captured_variables():
    """The fused step reads b and a in the other order than the loops did; the lifted closure still gets
    each its own: d/dx_i sum_i b sin (a x_i) = a b cos (a x_i)."""
    text = "def mk (a : Real) (b : Real) = fun (xs : [Real]) -> " \
           "fold (fun acc x -> acc + x * b) 0.0 (map (fun x -> sin (x * a)) xs)\n" \
           f"def main = grad (mk 2.0 3.0) {lit(XS)}"
    g, _ = run_with_machine(text)
    assert np.allclose(g, 6.0 * np.cos(2.0 * np.array(XS)), rtol=1e-14, atol=0)


@pytest.mark.parametrize("step", ["fun acc y -> let (s, p) = acc in (s + y, p * y)", "fun (s, p) y -> (s + y, p * y)"])
def test_a_tuple_accumulator(step):
    """fold over pairs (sum, product) of exp x_i: the step has binders, so it is fused as `let x = f in g`
    (written `fun (s, p) y -> ...` too: the pattern moves under `fun y`);
    d/dx_i (sum e^x + prod e^x) = e^x_i + prod e^x."""
    text = f"def loss (xs : [Real]) = let (s, p) = fold ({step}) (0.0, 1.0) " \
           "(map (fun x -> exp x) xs) in s + p\n" \
           f"def main = grad loss {lit(XS[:4])}"
    assert "map" not in transformed(text)
    g, _ = run_with_machine(text)
    x = np.array(XS[:4])
    assert np.allclose(g, np.exp(x) + np.prod(np.exp(x)), rtol=1e-13, atol=0)


# ---- a global specialised to a known function argument (fusion.py, `specialise`) ----------------------------

SPECIALISED = {
    # W7: a partial application of a global; its fold's step becomes step's body
    "partial": "def step a b x = tanh (a * x + b)\n"
               "def loss (m : Int) ((x, a, b) : Real * Real * Real) = iterate m (step a b) x\n",
    # a global itself, and a lambda written in place
    "global": "def half x = 0.5 * sin x + x\ndef loss (m : Int) (x : Real) = iterate m half x\n",
    "lambda": "def loss (m : Int) ((x, a) : Real * Real) = iterate m (fun y -> a * sin y + y) x\n",
    # a function of the program's own, applying its parameter in a fold's step
    "fold": "def iter2 f (xs : [Real]) x = fold (fun acc y -> f acc y) x xs\n"
            "def loss ((xs, a) : [Real] * Real) = iter2 (fun u v -> a * u * v) xs a\n",
}

NOT_SPECIALISED = {
    # the application's result is used in the step (preaccumulation would merge across it)
    "not in tail": "def plus f x = fold (fun acc _ -> f acc + 1.0) x [1.0, 2.0]\n"
                   "def loss (x : Real) = plus (fun y -> y * y) x\n",
    # its argument is made in the step
    "made in the step": "def twice f x = fold (fun acc _ -> let y = acc * acc in f y) x [1.0, 2.0]\n"
                        "def loss (x : Real) = twice (fun y -> sin y) x\n",
    # the function can fail (floor of inf)
    "can fail": "def loss (m : Int) (x : Real) = iterate m (fun y -> y + float (floor y)) x\n",
    # the function is handed on, not applied
    "handed on": "def each f (xs : [Real]) = map f xs\ndef loss (xs : [Real]) = sum (each (fun y -> y * y) xs)\n",
    # applied in a map's lambda: inlined, the map would fuse with sum, and the application leave tail position
    "map": "def each f (xs : [Real]) = map (fun x -> f x) xs\n"
           "def loss ((xs, a) : [Real] * Real) = sum (each (fun y -> a * y * y) xs)\n",
}


def unspecialised(fn):
    """fn() with fusion's `specialise` turned off."""
    from lang.transforms import fusion
    saved = fusion._Fusion.specialise
    fusion._Fusion.specialise = lambda self, e: None
    try:
        return fn()
    finally:
        fusion._Fusion.specialise = saved


@pytest.mark.parametrize("case", sorted(SPECIALISED))
def test_a_known_function_is_taken_in_place(case):
    """The global's body is inlined, the application of its function parameter replaced by the function's body:
    no call of iterate (or each) is left, and the term checks and reads back. (A count written as a literal
    would be let-bound and `max 0 5` computed by the simplifier: one `prims` fewer, as for any inlined body.)"""
    out = transformed(SPECIALISED[case])
    assert not any(name in out for name in ("iterate", "iter2", "half", "step"))
    assert "fold" in out or "map" in out


@pytest.mark.parametrize("case", sorted(NOT_SPECIALISED))
def test_a_known_function_is_not_taken_in_place(case):
    out = transformed(NOT_SPECIALISED[case])
    assert any(name in out for name in ("plus", "twice", "iterate", "each"))
    if case == "map":
        assert "fold" not in out  # (sum not fused with each's map)


ARGS = {"partial": "(loss 6) (0.5, 0.99, 0.001)", "global": "(loss 5) 0.7", "lambda": "(loss 5) (0.5, 1.3)",
        "fold": f"loss ({lit(XS)}, 0.5)"}


@pytest.mark.parametrize("case", sorted(SPECIALISED))
def test_the_same_bits_and_counters_but_calls(case):
    """Specialised or not, the same value and gradient to the bit, and the same counters but `betas` (the calls
    of the global and of its function argument are gone)."""
    text = SPECIALISED[case] + f"def main = value_and_grad {ARGS[case]}"
    a, m = run_with_machine(text)
    b, n = unspecialised(lambda: run_with_machine(text))
    assert repr(a) == repr(b)
    k, j = m.counters.as_dict(), n.counters.as_dict()
    assert k.pop("betas") < j.pop("betas") and k == j
    assert repr(a) == repr(unspecialised(lambda: run_with_machine(text, counting=False))[0])


@pytest.mark.parametrize("n", ["1000000000000000", "0 - 1"])
def test_an_inlined_prelude_function_reports_its_error_at_the_call(n):
    """iterate's `range` of a count too large (or, here, `max 0 n` of a negative one: none) fails inside the
    inlined body as it does inside the prelude: pointed at the program's call, with the prelude's note."""
    text = SPECIALISED["partial"] + \
        f"def main = value_and_grad (loss ({n})) (0.5, 0.99, 0.001)\n"
    from lang.model.errors import DlError, render

    def outcome():
        try:
            return repr(run_with_machine(text, counting=False)[0])
        except DlError as err:
            return render(err)
    got = outcome()
    assert got == unspecialised(outcome)
    if n.startswith("1"):
        assert got.startswith("test.dl:2:") and "raised inside the prelude's `iterate`" in got
        assert "range of 1000000000000000 elements" in got
