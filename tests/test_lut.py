"""The lut and lut-recompute modes (docs/transforms.md, lut): linearize, unzip, transpose.

Every expected number here is derived by hand (the derivation is beside it)
or computed with Python's math module, never by running dl. The agreement of
both modes with every other mode on the shared tables and the random programs
is in test_modes.py, test_zeros.py, test_jvp.py and test_ad_random.py, which
read the mode table; here are the three programs themselves (typed, linear,
printed and read back, transposition checked by the dot-product test on
random programs), the counters, the residual policies and the refusals.
"""
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, cli, close, diagnostic, load_source, run, run_with_machine
from lang.back.compiler import Counters
from lang.back.deep import run_deep
from lang.back.machine import Machine
from lang.front.infer import unify
from lang.model.printer import show_term
from lang.model.types import TFun, prune
from lang.modes.lut import Runner, linearizations
from lang.modes.table import get
from lang.tools.pipeline import main_call
from lang.transforms.linearity import NotLinear, check_linear_function, classify, infer_type
from lang.transforms.lut_print import Names, program_terms, program_types, read_term
from test_ad_random import real_expr
from test_complexity import PROGRAMS, primal_of, steps

MODES = ["lut", "lut-recompute"]
CHAIN = (ROOT / "examples" / "chain.dl").read_text()
X_SIN_X = "def f x = x * sin x\ndef main = grad f 1.0\n"


def linearized(source: str, mode: str = "lut") -> list:
    """What each derivative call of `main` linearized (lang/modes/lut.py, Linearized)."""
    program = load_source(source)
    machine = Machine(program.world, get(mode))
    return run_deep(lambda: linearizations(machine, mode, machine.compile_expression(main_call(program, []))))


def terms(lin):
    """The primal, linear and transposed programs of one linearization as core terms."""
    return program_terms(lin.unzipped.primal, lin.unzipped.linear, lin.transposed.program, Names())


# ---- `dl transform`: the three programs of x * sin x ------------------------------------------

# By hand, at x = 1: sin's tangent t1 = cos x * dx; the product's t2 = sin x * dx, t3 = x * t1, t4 = t2 + t3.
# The primal program computes sin x (p1), the partial cos x (p2) and the value x * sin x (p3); the residuals
# are what the linear program reads: p2, p1 and x. Transposed, read backwards: c4 goes to both summands, then
# c1 = x * c3, and dx gets p1 * c2 and, accumulated, p2 * c1.
X_SIN_X_STORE = """\
-- (1) primal program (value, residuals) : Real -> Real * (Real * Real * Real)
fun x -> let p1 = sin x in let p2 = cos x in let p3 = x * p1 in (p3, (p2, p1, x))
-- residuals at the point: p2 = {cos1!r}, p1 = {sin1!r}, x = 1.0
-- (2) linear program : Real * Real * Real -> (Real ⊸ Real)
fun res ->
  let (p2, p1, x) = res in
  fun dx -o
    let t1 = p2 * dx in let t2 = p1 * dx in let t3 = x * t1 in let t4 = t2 + t3 in t4
-- (3) transposed program : Real * Real * Real -> (Real ⊸ Real)
fun res ->
  let (p2, p1, x) = res in
  fun c4 -o
    let c2 = c4 in
    let c3 = c4 in
    let c1 = x * c3 in
    let cx = p1 * c2 in
    let cx' = cx + p2 * c1 in
    cx'""".format(cos1=math.cos(1.0), sin1=math.sin(1.0))


def test_transform_prints_the_three_typed_programs_of_x_sin_x(tmp_dl):
    path = tmp_dl("f.dl", X_SIN_X)
    code, out, err = cli("transform", path, "--def", "f", "--mode", "lut")
    assert code == 0, err
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "-- lut mode: `f` at 1.0, linearized, unzipped (residuals stored) and transposed"
    assert lines[1] == ("-- the trace: 3 primal equations, 4 tangent equations in 2 groups, 0 loops "
                        "(a loop's body counted once)")
    assert "\n".join(lines[2:]) == X_SIN_X_STORE


def test_recompute_keeps_the_input_and_recomputes_the_residuals(tmp_dl):
    """Under recompute the linear program takes x and recomputes sin x and cos x (not x * sin x, which it
    does not read) before its linear part."""
    path = tmp_dl("f.dl", X_SIN_X)
    code, out, err = cli("transform", path, "--def", "f", "--mode", "lut-recompute", "2.0")
    assert code == 0, err
    assert "-- kept for the backward pass: the input (x = 2.0)" in out
    assert "-- (2) linear program : Real -> (Real ⊸ Real)" in out
    linear = out.split("-- (2)")[1].split("-- (3)")[0]
    assert "let p1 = sin x in" in linear and "let p2 = cos x in" in linear and "x * p1" not in linear


def test_the_pullback_is_the_derivative_by_hand():
    (lin,) = linearized(X_SIN_X)
    assert lin.value == math.sin(1.0)
    assert close(lin.pullback(1.0), math.sin(1.0) + math.cos(1.0), rel=1e-15)
    assert close(lin.pushforward(2.0), 2.0 * (math.sin(1.0) + math.cos(1.0)), rel=1e-15)


# ---- maps and folds: map transposes to map, a left fold to a fold the other way -------------------


def test_a_fold_transposes_to_a_fold_over_the_reversed_range(tmp_dl):
    path = tmp_dl("l.dl", "def loss xs = fold (fun acc x -> acc + sin x * x) 0.0 xs\ndef main = 1.0\n")
    code, out, err = cli("transform", path, "--def", "loss", "--mode", "lut", "[0.1, 0.2, 0.3, 0.4]")
    assert code == 0, err
    primal, rest = out.split("-- (2) linear program : ")
    linear, transposed = rest.split("-- (3) transposed program : ")
    assert "fold" in primal and "xs" in primal
    # three residual lists: cos x, x and sin x per element (the partials of sin and of the product)
    assert linear.startswith("[Real] * [Real] * [Real] -> ([Real] ⊸ Real)")
    assert "(range 4)" in linear and "reverse" not in linear
    assert transposed.startswith("[Real] * [Real] * [Real] -> (Real ⊸ [Real])")
    assert "(reverse (range 4))" in transposed


def test_a_map_transposes_to_a_map(tmp_dl):
    path = tmp_dl("m.dl", "def sq xs = sum (map (fun x -> x * x) xs)\ndef main = 1.0\n")
    code, out, err = cli("transform", path, "--def", "sq", "--mode", "lut", "[1.0, 2.0, 3.0]")
    assert code == 0, err
    linear, transposed = out.split("-- (2) linear program : ")[1].split("-- (3) transposed program : ")
    # the linear program: a map (the squares' tangents) then sum's fold; transposed: the fold backwards,
    # then a map
    assert linear.index("map") < linear.index("fold")
    assert transposed.index("fold") < transposed.index("map")
    (lin,) = linearized("def sq xs = sum (map (fun x -> x * x) xs)\ndef main = grad sq [1.0, 2.0, 3.0]\n")
    assert lin.pullback(1.0) == [2.0, 4.0, 6.0]
    assert lin.unzipped.linear.eqs and sum(1 for e in lin.unzipped.linear.eqs if type(e).__name__ == "Loop") == 2


# ---- every program: typed, linear, printed and read back, transposed (dot-product test) ---------------


def flat(values) -> list:
    out = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def random_like(values, rng) -> list:
    return [[rng.uniform(-1, 1) for _ in v] if isinstance(v, list) else rng.uniform(-1, 1) for v in values]


def check_linearization(lin, rng) -> None:
    """The three programs type-check, the linear ones are linear, each prints and reads back to itself, and
    the transposed program is the transpose: <ct, L t> = <Lᵀ ct, t> at random t and ct."""
    primal, linear, transposed = terms(lin)
    expected = program_types(lin.unzipped.primal, lin.unzipped.linear, lin.transposed.program,
                             lin.res_values)
    unify(infer_type(primal), expected[0])
    for term, want in zip((linear, transposed), expected[1:]):
        t = prune(check_linear_function(term))
        assert isinstance(t, TFun)
        unify(t, want)
    for term in (primal, linear, transposed):
        assert read_term(show_term(term)) == term
    runner = Runner(Counters(), False)
    unz = lin.unzipped
    # component shapes of the input and output tangents, from one run on zeros
    t_in = random_like(runner.run(lin.transposed.program, lin.res_values,
                                  [[0.0] * v.length if v.is_list else 0.0 for v in lin.transposed.program.params]),
                       rng)
    lt = runner.run(unz.linear, lin.res_values, t_in)
    ct = random_like(lt, rng)
    ltct = runner.run(lin.transposed.program, lin.res_values, ct)
    left = sum(a * b for a, b in zip(flat(ct), flat(lt)))
    right = sum(a * b for a, b in zip(flat(ltct), flat(t_in)))
    assert close(left, right, rel=1e-9, abs_=1e-9), (left, right)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", [
    X_SIN_X,
    "def main = grad (fun xs -> fold (fun acc x -> acc * x + sin acc) 0.5 xs) [0.1, 0.2, 0.3, 0.4, 0.5]",
    "def main = grad (fun xs -> sum (zipWith (fun a b -> a * b) xs (reverse xs))) [1.0, 2.0, 3.0, 4.0]",
    "def main = grad (fun (x, y) -> sum (build 5 (fun i -> float i * x * y + (if i > 2 then x else y)))) (0.5, 2.0)",
    "def main = vjp (fun x -> map (fun k -> (x * k, sin (x + k))) [1.0, 2.0, 3.0, 4.0]) 0.7",
    PROGRAMS["mlp_loss"].replace("def main n = grad loss (init n)", "def main = grad loss (init 3)"),
])
def test_each_linearization_is_typed_linear_printed_and_transposed(source, mode):
    rng = random.Random(14)
    found = linearized(source, mode)
    assert found
    for lin in found:
        check_linearization(lin, rng)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(expr=real_expr(("x", "y"), 4), x=st.floats(-1.5, 1.5), y=st.floats(-1.5, 1.5))
def test_random_programs_linearize_to_checked_transposable_programs(expr, x, y):
    source = f"def f (x, y) = {expr}\ndef main = value_and_grad f ({x!r}, {y!r})"
    rng = random.Random(hash(expr) & 0xffff)
    for mode in MODES:
        for lin in linearized(source, mode):
            check_linearization(lin, rng)


def test_the_linearity_checker_refuses_what_is_not_linear():
    """It is not a checker that accepts everything: an affine body, a product of two tangents, and a
    tangent under a non-linear primitive are refused."""
    for text in ("fun w -> fun t -o t + 1.0", "fun w -> fun t -o t * t", "fun w -> fun t -o sin t"):
        term = read_term(text)
        with pytest.raises(NotLinear):
            classify(term)
    classify(read_term("fun w -> fun t -o let u = sin w in u * t + t"))


# ---- counters, derived by hand -------------------------------------------------------------------


def counts(source: str, mode: str, args=(), preaccumulate: bool = True) -> dict:
    _, m = run_with_machine(source, mode, list(args), preaccumulate=preaccumulate)
    c = m.counters
    return {"prims": c.prims, "betas": c.betas, "bp_created": c.bp_created, "bp_run": c.bp_run,
            "merges": c.merges, "sink_updates": c.sink_updates, "peak_pending": c.peak_pending, **c.extra}


def test_counters_of_x_sin_x():
    """grad f 1.0, f x = x * sin x. Primitive applications: grad, sin, *, and the one partial computed,
    cos x (the product's partials are its factors) = 4, as backprop. Groups: sin's (1 equation) and the
    product's (2 scalings and a sum) = 2 groups, 4 equations, both run backwards. dx receives two
    contributions, the second a merge. Residuals: cos x, sin x, x. The peak: after the product's group one
    cotangent (of sin x's tangent) is pending. Recompute keeps x alone and runs sin and cos again: 2 more."""
    store = {"prims": 4, "betas": 0, "bp_created": 2, "bp_run": 2, "merges": 1, "sink_updates": 2,
             "peak_pending": 1, "equations": 4, "residuals": 3}
    assert counts(X_SIN_X, "lut") == store
    assert counts(X_SIN_X, "lut-recompute") == {**store, "prims": 6, "residuals": 1, "recompute_prims": 2}


def test_derivative_runs_the_linear_program_forwards():
    """derivative f 1.0: the same trace (4 prims, 2 groups, 4 equations, 3 residuals), the linear program run
    on the tangent: no group runs backwards, no cotangent is merged or reaches a sink."""
    source = "def f x = x * sin x\ndef main = derivative f 1.0\n"
    assert close(run(source, "lut"), math.sin(1.0) + math.cos(1.0), rel=1e-15)
    assert counts(source, "lut") == {"prims": 4, "betas": 0, "bp_created": 2, "bp_run": 0, "merges": 0,
                                     "sink_updates": 0, "peak_pending": 0, "equations": 4, "residuals": 3}


@pytest.mark.parametrize("n", [3, 10, 50])
def test_counters_of_a_long_chain(n):
    """examples/chain.dl: grad (iterate n step) 0.3, step x = 3.7 * x * (1.0 - x), iterate a fold.

    Per step: three primitives (3.7 * x, 1.0 - x, their product), none of whose partials needs a
    primitive (3.7, -1 and the factors); two applications (fold's lambda, step); three groups of five
    tangent equations (a scaling by 3.7, a negation, two scalings and a sum); x read twice, one merge; the
    two factors stored. Outside: grad, max, range, fold = 4 primitives (backprop counts the same), and
    iterate and its partial application, 2 applications. The fold is one Loop; its transpose carries the
    cotangent backwards and hands it to the input once (1 sink update). Peak: two cotangents in the body
    (the factors'), none outside. Recompute: the fold runs again for its states (3n primitives) and the
    body rebuilds the two factors from each state (2n)."""
    got = counts(CHAIN, "lut", [str(n)])
    store = {"prims": 3 * n + 4, "betas": 2 * n + 2, "bp_created": 3 * n, "bp_run": 3 * n, "merges": n,
             "sink_updates": 1, "peak_pending": 2, "equations": 5 * n, "loops": 1, "residuals": 2 * n}
    assert got == store
    assert counts(CHAIN, "lut-recompute", [str(n)]) == {**store, "prims": 8 * n + 4, "residuals": 1,
                                                         "recompute_prims": 5 * n}
    backprop = counts(CHAIN, "backprop", [str(n)], preaccumulate=False)  # ←D's own term, as lut transposes it
    assert {k: backprop[k] for k in ("prims", "betas", "bp_created", "bp_run", "merges")} == \
        {k: store[k] for k in ("prims", "betas", "bp_created", "bp_run", "merges")}


@pytest.mark.parametrize("n", [4, 8, 16])
def test_repeated_squaring_is_linear(n):
    """examples/sharing.dl: y used twice per step. The recursion is unrolled into n groups (two scalings by
    y and a sum); transposed, the two contributions to y's tangent are one merge per step, and each group
    runs once: n, as backprop. Residuals: y per step (both partials of y * y are y)."""
    source = (ROOT / "examples" / "sharing.dl").read_text()
    got = counts(source, "lut", [str(n)])
    assert (got["bp_created"], got["bp_run"], got["merges"], got["equations"], got["residuals"]) == \
        (n, n, n, 3 * n, n)
    assert close(run(source, "lut", [str(n)]), 2 ** n * 1.0000001 ** (2 ** n - 1), rel=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_gradient_cost_is_a_bounded_multiple_of_the_primal(name, mode):
    """The paper's claim on the counters: linearize + transpose costs a constant times the primal run, the
    same constant at every size (test_complexity.py's programs and measure)."""
    sizes = [10, 100, 1000] if name != "mlp_loss" else [4, 16, 64]
    ratios = []
    for n in sizes:
        _, grad = run_with_machine(PROGRAMS[name], mode, [str(n)])
        _, primal = run_with_machine(primal_of(PROGRAMS[name]), "backprop", [str(n)])
        assert grad.counters.bp_run <= grad.counters.bp_created
        ratios.append(steps(grad.counters) / steps(primal.counters))
    assert max(ratios) < 10, ratios
    assert max(ratios) / min(ratios) < 1.5, ratios


# ---- refusals are diagnostics ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_nested_derivatives_are_refused_with_a_diagnostic(mode, tmp_dl):
    path = tmp_dl("n.dl", "def f x = x * sin x\ndef main = grad (fun x -> derivative f x) 1.0\n")
    code, out, err = cli("run", path, "--mode", mode)
    assert code == 1
    d = diagnostic(err)
    assert (d["kind"], d["line"], d["col"]) == ("runtime", 2, 27)
    assert f"the {mode} mode is differentiating, and that mode does not nest" in d["message"]


def test_arrays_are_refused_with_a_diagnostic(tmp_dl):
    path = tmp_dl("a.dl", "def main = vjp (fun (a : Array) -> sin a) 2.0\n")
    code, out, err = cli("run", path, "--mode", "lut")
    assert code == 1
    d = diagnostic(err)
    assert (d["kind"], d["line"], d["col"]) == ("runtime", 1, 12)
    assert d["message"] == "an Array input: lut does not differentiate arrays yet"


def test_transform_needs_a_point_for_a_list_function(tmp_dl):
    path = tmp_dl("s.dl", "def sq xs = sum (map (fun x -> x * x) xs)\ndef main = 1.0\n")
    code, out, err = cli("transform", path, "--def", "sq", "--mode", "lut")
    assert code == 1
    d = diagnostic(err)
    assert (d["kind"], d["line"], d["col"]) == ("runtime", 1, 5)
    assert "give it after the file name" in d["message"]
