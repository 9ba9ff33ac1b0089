"""The shift-reset mode (docs/transforms.md, shift-reset): its CPS term, its discipline, its runtime and counters.

The mode is also in conftest's MODES, EXACT_MODES and TRANSFORM_MODES, so the mode-agreement tests, the
random-program property test and the transform type-check and round-trip test cover it. Here: what is
particular to it, with expected values from closed forms and finite differences computed in Python.
"""
import math
import re
import threading

import pytest

from conftest import cli, close, load_source, run, run_with_machine
from lang.back.deep import run_deep
from lang.front.mono import Specializer
from lang.model import core as c
from lang.model.errors import DlError
from lang.model.printer import show_term
from lang.model.types import CELL, REAL, UNIT, TFun, TTuple
from lang.modes.table import get
from lang.tools.pipeline import run_main
from lang.tools.workbench import language, transform_term
from lang.transforms.check import TransformBug, check
from lang.transforms.read import parse_target
from lang.transforms.cps import check_discipline
from test_backprop import AGAINST_FD, EXACT, _python_fold, fd

MODE = "shift-reset"

# ---- the term ----------------------------------------------------------------------------------

X_SIN_X = """\
-- f@Real: the instance main uses
-- K(f@Real) in shift-reset mode
-- source type: Real -> Real
-- target type: Real * Cell -> (Real * Cell -> Unit) -> Unit
fun x k ->
  let (x, x') = x in
  let y1 = sin x in
  let y1' = shift (fun a -> accum x' (cos x * a)) in
  let y2 = x * y1 in
  let y2' = shift (fun a -> let _ = accum x' (y1 * a) in accum y1' (x * a)) in
  k (y2, y2')
"""


def test_the_printed_term_of_x_sin_x(tmp_dl):
    """Each primitive a shift: the rest of the program (here k) is the shift's continuation, and its post
    passes the adjoint on when that has returned. A flat let-chain: the posts are the shifts' handlers."""
    path = tmp_dl("f.dl", "def f x = x * sin x\ndef main = grad f 1.0\n")
    code, out, err = cli("transform", path, "--def", "f", "--mode", MODE)
    assert (code, err) == (0, "") and out == X_SIN_X


def definition(source: str, name: str = "f"):
    program = load_source(source)
    spec = Specializer(program.world)
    d = next(d for d in program.module.defs if d.name == name)
    return program, spec, spec.get(d.module, d.name, ())


@pytest.mark.parametrize("source", [
    "def f x = x * sin x",
    "def f (x, y) = if x > y then let z = exp x in z * z else y / x",   # a join point, a named result
    "def f xs = fold (fun acc x -> acc + (if x > 0.0 then sin x else x * x)) 0.0 xs",
    "def f x = let g = fun y -> x * y in grad g 2.0",                     # a derivative call inside
    "def f (n : Int) x = if n == 0 then x else 2.0 * f (n - 1) (x * x)",  # recursion, a constant
    # a computed value used at two types: CPS binds it by a lambda (monomorphic), so it is computed once per type
    "def f x = let p = id (fun y -> y) in if p true then p x * x else x",
    # definitions named like the continuation and the posts' parameter: neither may capture them when read back
    "def k = 2.0\ndef a (y : Real) = y\ndef f x = a (k * sin x) * a x",
])
def test_terms_type_check_keep_the_discipline_and_read_back(source):
    program, spec, e = definition(source)
    lang = language(get(MODE), spec)
    own = {d.name: (d.module, d.name) for d in program.module.defs}
    resolve = program.world.resolver(own, dict(program.module.exports))
    for simplify in (False, True):
        term = transform_term(e, get(MODE), simplify)
        check(term, e.ty, lang)             # types, then the discipline
        back = run_deep(lambda: parse_target(show_term(term), resolve, lang.d_type(e.ty), lang))
        assert back == term


def test_the_simplifier_propagates_constants():
    """2.0 * 3.0 + x * 2.0: the constant's cell is nocell, its updates go, and `c * c` of a let-bound
    constant is a constant: no cell, no shift."""
    _, spec, e = definition("def f x = let c = 2.0 in c * c + x * c")
    raw, simple = (show_term(transform_term(e, get(MODE), s)) for s in (False, True))
    # (c is a let-polymorphic constant since real literals are `Float 'a`: its Real instance prints c1)
    assert "accum nocell" in raw or re.search(r"accum c\d*'", raw)
    assert "nocell" not in simple.replace("(y1, nocell)", "") or "accum nocell" not in simple
    assert simple.count("shift (") == 2           # x * c and the sum; c * c is a constant
    assert run("def f x = let c = 2.0 in c * c + x * c\ndef main = grad f 5.0", mode=MODE) == 2.0



def test_a_partial_zero_on_a_branch_is_an_if_around_the_updates():
    """The zeros rule (docs/transforms.md, Zeros and infinities): relu's partial is zero on one branch, so
    that branch updates nothing instead of adding `0 * adjoint`; min's two partials share one `if`."""
    _, spec, e = definition("def f x y = relu x + min x y")
    for simplify in (False, True):
        text = show_term(transform_term(e, get(MODE), simplify))
        assert "else 0)" not in text and "then 0 " not in text
        # min's partials: 1/0 off a tie, 0.5/0.5 at one (docs/reference.md, Conventions)
        assert re.search(r"if x < y\s+then accum x' a\s+else if x == y\s+then let _ = accum x' \(0\.5 \* a\) in "
                         r"accum y' \(0\.5 \* a\)\s+else accum y' a", text), text
    simple = show_term(transform_term(e, get(MODE), True))
    assert re.search(r"if x > 0\.0 then accum x' a else \(\)", simple) or \
        re.search(r"if 0\.0 >= x then \(\) else accum x' a", simple), simple
    # d/dx (relu x + min x y) = [x > 0] + [x < y] + [x = y]/2; d/dy = [x > y] + [x = y]/2  (by hand)
    for (x, y), expected in [((1.0, 2.0), (2.0, 0.0)), ((-1.0, -2.0), (0.0, 1.0)), ((3.0, 2.0), (1.0, 1.0)),
                             ((2.0, 2.0), (1.5, 0.5))]:
        src = f"def f (x, y) = relu x + min x y\ndef main = grad f ({x}, {y})"
        assert run(src, mode=MODE) == expected

# ---- the discipline can fail ---------------------------------------------------------------------

K, X, Y, A = c.Var("k"), c.Var("x"), c.Var("y"), c.Var("a")


def fn(body: c.Expr, x: str = "x", k: str = "k") -> c.Lam:
    return c.Lam(x, c.Lam(k, body))


@pytest.mark.parametrize("term,words", [
    (fn(c.If(c.Lit(True), c.App(K, X), c.Lit(()))), "returning a value"),              # a branch returns
    (fn(c.Let("j", c.Lam("v", c.App(K, c.Var("v"))), c.If(c.Lit(True), c.App(c.Var("j"), X), c.App(K, X)))),
     "different continuations"),                                                       # one branch bypasses j
    (fn(c.Let("j", c.Lam("v", c.App(K, c.Var("v"))), c.App(K, X))), "join point"),     # j never called                                                                    # a join never called
    (fn(c.App(K, fn(c.App(K, Y), "y", "k2"))), "exactly once"),                        # a function captures k
    (fn(c.App(K, c.Tuple((X, c.Prim("shift", (c.Lam("a", c.Lit(())),)))))), "`shift`"),      # a shift as a value
    (fn(c.App(K, c.App(c.App(c.Var("f"), X), K))), "outside tail position"),         # a call as an argument
    (fn(c.Let("_", c.App(K, X), c.Prim("accum", (c.Var("x'"), c.Lit(1.0))))), "post outside a shift"),
    (fn(c.Let("y'", c.Prim("shift", (c.Lam("a", c.Prim("accum", (c.Var("x'"), c.Prim("*", (A, A))))),)),
              c.App(K, c.Tuple((Y, c.Var("y'")))))),
     "post is not"),                                                                   # not linear in a
    (fn(c.Let("y'", c.Prim("shift", (c.Lam("a", c.App(K, X)),)), c.App(K, c.Tuple((Y, c.Var("y'")))))),
     "post is not"),                                                                   # a post that calls k
])
def test_the_discipline_rejects_broken_terms(term, words):
    with pytest.raises(TransformBug) as e:
        check_discipline(term)
    assert words in str(e.value)


def test_the_type_checker_rejects_a_cell_used_as_a_number():
    lang = language(get(MODE), Specializer(load_source("def main = 1.0").world))
    bad = fn(c.App(K, c.Tuple((c.Prim("nocell", ()), c.Prim("nocell", ())))))
    with pytest.raises(TransformBug):
        check(bad, TFun(REAL, REAL), lang)
    good = fn(c.App(K, X))
    assert check(good, TFun(REAL, REAL), lang) == TFun(TTuple((REAL, CELL)), TFun(TFun(TTuple((REAL, CELL)), UNIT),
                                                                                   UNIT))


# ---- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("source,py,point", AGAINST_FD)
def test_gradient_against_finite_differences(source, py, point):
    got = run(f"{source}\ndef main = grad f {point!r}".replace("'", ""), mode=MODE)
    assert close(list(got), fd(py or _python_fold, list(point)), rel=1e-6, abs_=1e-8)


@pytest.mark.parametrize("source,expected", EXACT)
def test_exact_gradients_on_every_kind_of_function_value(source, expected):
    assert close(run(source, mode=MODE), expected, rel=1e-12)


FUNCTION_VALUES = [
    # partial applications of partial applications (lifted by the CPS partial code), a global function
    ("def three a b c = a * b * c\ndef main = let p = three 2.0 in let q = p 3.0 in grad q 4.0", 6.0),
    ("def f x y = x * y + sin x\ndef g = f 2.0\ndef main = (grad g 1.0, grad (f 2.0) 1.0)", (2.0, 2.0)),
    # prelude functions, primitives and sections as values
    ("def main = (grad square 3.0, grad (uncurry (fun a b -> a * b)) (2.0, 5.0), grad exp 0.0)",
     (6.0, (5.0, 2.0), 1.0)),
    # top-level values, one of them computed by a derivative, captured by a differentiated closure
    ("def w = 3.0 * 2.0\ndef ws = [1.0, 2.0]\ndef cg = grad sin 0.0\n"
     "def main = let a = 1.5 in grad (fun x -> a * x * w + cg * x + sum ws * x) 2.0", 1.5 * 6 + 1 + 3),
    # loops whose function is not written in place, and bodies that are not straight-line
    ("def sq x = x * x\ndef main = grad (fun xs -> sum (map sq xs) + fold max 0.0 xs) [1.0, 3.0, 2.0]",
     [2.0, 7.0, 4.0]),
    ("def main = grad (fun xs -> sum (zipWith (fun a b -> if a > b then a * b else a + b) xs (reverse xs))) "
     "[1.0, 2.0, 3.0]", [4.0, 2.0, 2.0]),   # (1 + 3) + (2 + 2) + 3 * 1, each x twice
    ("def main = grad (fun x -> sum (build 4 (fun i -> if i == 2 then x * x else x * float i))) 3.0", 10.0),
]


@pytest.mark.parametrize("source,expected", FUNCTION_VALUES)
def test_function_values_of_every_kind(source, expected):
    assert close(run(source, mode=MODE), expected, rel=1e-12)
    assert close(run(source, mode="backprop"), expected, rel=1e-12)


def test_a_pullback_runs_the_post_stack_again_for_each_cotangent():
    src = ("def f (x, y) = (x * y, [sin x, y * y])\n"
           "def main = let (v, pb) = vjp f (2.0, 3.0) in (v, pb (1.0, [0.0, 0.0]), pb (0.0, [1.0, 0.0]), "
           "pb (0.0, [0.0, 1.0]), pb (1.0, [1.0, 1.0]))")
    value, g1, g2, g3, g4 = run(src, mode=MODE)
    assert close(value, (6.0, [math.sin(2.0), 9.0]))
    assert close(g1, (3.0, 2.0)) and close(g2, (math.cos(2.0), 0.0)) and close(g3, (0.0, 6.0))
    assert close(g4, (3.0 + math.cos(2.0), 8.0))


# ---- nesting is refused, by name -----------------------------------------------------------------


@pytest.mark.parametrize("source,col,name", [
    ("def main = grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0", 27, "grad"),
    ("def main = grad (fun x -> derivative sin x) 1.0", 27, "derivative"),
    ("def main = grad (fun x -> fst (vjp (fun y -> x * y) 1.0)) 3.0", 32, "vjp"),
    ("def inner x = jvp (fun y -> x * y) 1.0 1.0\ndef main = grad (fun x -> fst (inner x)) 3.0", 15, "jvp"),
])
def test_nested_differentiation_is_refused_naming_the_inner_call(source, col, name):
    with pytest.raises(DlError) as e:
        run(source, mode=MODE)
    assert e.value.kind == "runtime" and e.value.span.col == col
    assert f"this `{name}` runs inside a function that the shift-reset mode is differentiating" in e.value.message


def test_derivatives_from_primal_code_and_jvp_use_forward_mode():
    src = "def main = (derivative (fun x -> x * sin x) 1.0, jvp (fun x -> (x * x, sin x)) 2.0 1.0)"
    assert close(run(src, mode=MODE), (math.sin(1.0) + math.cos(1.0), ((4.0, math.sin(2.0)), (4.0, math.cos(2.0)))))


# ---- counters, derived by hand -------------------------------------------------------------------


def counters(source: str) -> dict:
    _, machine = run_with_machine(source, mode=MODE)
    return machine.counters.as_dict()


def test_counters_of_x_sin_x():
    """grad f 1.0, f x = x * sin x. prims: grad, sin, its partial cos x, * (the partials of * are
    variables). Two shifts, two records; the backward pass runs both, the input's cell receives two
    contributions (one merged). The driver makes two calls: f, then the final continuation (k_calls 1)."""
    assert counters("def f x = x * sin x\ndef main = grad f 1.0") == {
        "prims": 4, "betas": 0, "bp_created": 2, "bp_run": 2, "merges": 1, "sink_updates": 2,
        "peak_pending": 1, "k_calls": 1, "bounces": 2}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_counters_of_repeated_squaring(n):
    """grad (squarings n) at Int n. Each level: n == 0, n - 1 and x * x (3 prims, one shift whose record
    adds twice into one cell: one merge), and one call of squarings (a beta); then n == 0 once more, and
    grad. Bounces: the lifted partial application `squarings n` enters through 3 (the partial, squarings
    returning its inner function to the continuation, that continuation applying it to x); each level
    3 more (call squarings, return the inner function, apply it); the last level calls the final
    continuation (2). Continuation calls: the first continuation, one per level, the final one."""
    got = counters(f"def squarings n x = if n == 0 then x else squarings (n - 1) (x * x)\n"
                   f"def main = grad (squarings {n}) 1.0000001")
    assert got == {"prims": 3 * n + 2, "betas": n + 1, "bp_created": n, "bp_run": n, "merges": n,
                   "sink_updates": 2, "peak_pending": 1, "k_calls": n + 2, "bounces": 3 * n + 5}


@pytest.mark.parametrize("n", [1, 3, 5])
def test_counters_of_a_fold_written_in_place(n):
    """grad of fold (fun acc y -> acc * y + x) 1.0 over n copies of x. prims: grad; replicate's max and
    build; fold; per element * and + (two shifts, two records: y is x, so even the first * has a cell).
    betas: replicate, then one per element for build's function and one for fold's. Both loop bodies
    call nothing but their continuation, so they run in place, with no bounce per element. The driver's
    rounds: the function (which calls replicate), replicate (returning its inner function to the
    continuation), that continuation (applying it to x), the inner function (build in place), its
    continuation (fold in place), the final continuation — 6, of them 3 continuation calls."""
    got = counters(f"def main = grad (fun x -> fold (fun acc y -> acc * y + x) 1.0 (replicate {n} x)) 0.5")
    assert got == {"prims": 4 + 2 * n, "betas": 1 + 2 * n, "bp_created": 2 * n, "bp_run": 2 * n,
                   "merges": 2 * n - 1, "sink_updates": 2 * n, "peak_pending": 1, "k_calls": 3, "bounces": 6}


def test_counters_agree_with_backprop_on_the_backward_pass():
    """The post records are backprop's records: the backward counters are the same on any program (as
    ←D writes it: preaccumulated, backprop fuses sum's fold with the map and keeps fewer records)."""
    src = ("def f (x, y) = let z = x * y in if z > 1.0 then sum (map (fun t -> t * z) [x, y, z]) else z / y\n"
           "def main = (grad f (2.0, 3.0), grad f (0.1, 0.2))")
    mine = counters(src)
    _, machine = run_with_machine(src, mode="backprop", preaccumulate=False)
    theirs = machine.counters.as_dict()
    for k in ("bp_created", "bp_run", "merges", "sink_updates", "peak_pending", "betas"):
        assert mine[k] == theirs[k], k


# ---- deep programs -----------------------------------------------------------------------------


def test_a_recursion_100000_deep():
    """sumsin n x = sin x + sumsin (n - 1) (0.99999 x): d/dx = Σ_{i<n} c^i cos(c^i x)."""
    n, c0, x = 100000, 0.99999, 0.3
    src = f"def sumsin (n : Int) x = if n == 0 then 0.0 else sin x + sumsin (n - 1) (x * {c0})\n" \
          f"def main = grad (sumsin {n}) {x}"
    want, ci = 0.0, 1.0
    for _ in range(n):
        want += ci * math.cos(ci * x)
        ci *= c0
    assert close(run(src, mode=MODE), want, rel=1e-9)


@pytest.mark.parametrize("body", ["acc * 0.999999 + x",                                # written in place
                                  "(if acc > 1.0e9 then acc else acc * 0.999999) + x"])  # a join: Loops.foldK
def test_a_fold_of_1000000_steps(body):
    """acc' = a acc + x from 0: d/dx = (1 - a^n) / (1 - a)."""
    n, a = 1000000, 0.999999
    src = f"def decay (n : Int) x = fold (fun acc _ -> {body}) 0.0 (range n)\ndef main = grad (decay {n}) 0.3"
    assert close(run(src, mode=MODE), (1 - a ** n) / (1 - a), rel=1e-9)


def test_the_host_stack_stays_flat():
    """The trampoline: 20000 nested calls under grad at Python's default recursion limit (1000), on an
    ordinary thread, where a direct-style evaluation needs a frame per call."""
    program = load_source("def down (n : Int) x = if n == 0 then x else sin (down (n - 1) x)\n"
                          "def main = grad (down 20000) 0.1")
    out = {}

    def work():
        try:
            out["value"], _ = run_main(program, [], get(MODE))
        except RecursionError:
            out["value"] = "RecursionError"
    t = threading.Thread(target=work)
    t.start()
    t.join()
    want, y = 1.0, 0.1
    for _ in range(20000):
        want *= math.cos(y)
        y = math.sin(y)
    assert close(out["value"], want, rel=1e-9)


def test_a_recursion_that_does_not_end_is_a_stack_overflow_not_a_memory_hog():
    with pytest.raises(DlError) as e:
        run("def f (n : Int) x = 1.0 + f n x\ndef main = grad (f 1) 2.0", mode=MODE)
    assert e.value.kind == "runtime" and "stack overflow" in e.value.message
    assert (e.value.span.line, e.value.span.col) == (2, 12)   # the grad


def test_errors_inside_are_diagnostics_at_their_place():
    with pytest.raises(DlError) as e:
        run("def f xs x = head xs * x\ndef main = grad (f []) 1.0", mode=MODE)
    assert (e.value.span.line, e.value.span.col, e.value.message) == (1, 14, "head of an empty list")
    with pytest.raises(DlError) as e:
        run("def main = grad (fun x -> sum (build (0 - 2) (fun i -> x))) 1.0", mode=MODE)
    assert e.value.span.col == 32 and "negative count" in e.value.message
