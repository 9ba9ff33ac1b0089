"""The dualrev stages (docs/transforms.md, dualrev): printed targets, exact counters, function values, refusals.

Stage 0 is backprop-naive; stages 1-5 are dualrev-staged, -cayley, -ids, -defun and dualrev. Agreement
with backprop on random programs and on the shared cases comes from the mode table (test_ad_random,
test_modes, test_transform_check pick every row up); here are the things particular to the chain:

- the printed target of `def f x = x * sin x` at every stage, type-checked and read back;
- exact counters on small programs, derived by hand in the comments;
- gradients of every kind of function value against values computed here by hand (math module);
- the targets' own rules (linear backpropagators, a threaded supply) reject broken terms;
- nested differentiation is refused with a diagnostic at the inner call.
"""
from __future__ import annotations

import math

import pytest

from conftest import cli, close, get, load_source, run, run_with_machine
from lang.back.deep import run_deep
from lang.front.mono import Specializer
from lang.model import core as c
from lang.model.errors import DlError
from lang.model.printer import show_term
from lang.model.types import REAL, SUPPLY, TFun, TTuple, show_scheme
from lang.modes.table import compared, listed
from lang.tools.workbench import language, transform_term
from lang.transforms.check import TransformBug, check
from lang.transforms.dualrev import check_backpropagators, check_supply
from lang.transforms.read import parse_target

STAGES = ["dualrev-staged", "dualrev-cayley", "dualrev-ids", "dualrev-defun", "dualrev"]
ORDERED = STAGES[2:]  # the stages that resolve the largest ID first

# ---- the printed target of f x = x * sin x, stage by stage ---------------------------------------------------

F = "def f x = x * sin x"
PRINTED = {
    "dualrev-staged": ("Real * (Real -> Staged) -> Real * (Real -> Staged)", """\
fun x ->
  let (x1, x1') = x in
  let (x2, x2') = let (x, x') = x in (sin x, fun a -> stage x' (cos x * a)) in
  (x1 * x2, fun a -> plusS (stage x1' (x2 * a)) (stage x2' (x1 * a)))"""),
    "dualrev-cayley": ("Real * (Real -> Staged -> Staged) -> Real * (Real -> Staged -> Staged)", """\
fun x ->
  let (x1, x1') = x in
  let (x2, x2') = let (x, x') = x in (sin x, fun a acc -> stageC x' (cos x * a) acc) in
  (x1 * x2, fun a acc -> stageC x2' (x1 * a) (stageC x1' (x2 * a) acc))"""),
    "dualrev-ids": ("Real * ID * (Real -> Staged -> Staged) -> Supply -> (Real * ID * (Real -> Staged -> Staged)) "
                    "* Supply", """\
fun x s ->
  let (x, x_i, x') = x in
  let (j, s1) = fresh s in
  let (x1, x1_i, x1') = (sin x, j, fun a acc -> stageAt x_i x' (cos x * a) acc) in
  let (j1, s2) = fresh s1 in
  ((x * x1, j1, fun a acc -> stageAt x1_i x1' (x * a) (stageAt x_i x' (x1 * a) acc)),
   s2)"""),
    "dualrev-defun": ("Real * ID * Contrib -> Supply -> (Real * ID * Contrib) * Supply", """\
fun x s ->
  let (x, x_i, x_c) = x in
  let (j, s1) = fresh s in
  let (x1, x1_i, x1_c) = (sin x, j, contrib1 x_i x_c (cos x)) in
  let (j1, s2) = fresh s1 in
  ((x * x1, j1, contrib2 x_i x_c x1 x1_i x1_c x), s2)"""),
}
PRINTED["dualrev"] = PRINTED["dualrev-defun"]  # stage 5 runs stage 4's term; only the resolve differs
# Simplified, stages 1-2 are ←D's simplified term at the stage's type: the inner `let (x, x') = x` takes
# apart the pair the outer one took apart already, so x, x' are x1, x1' (lang/transforms/lets.py). Stages
# 3-5 print as they are: their rules leave nothing to clean.
SIMPLIFIED = {
    "dualrev-staged": """\
fun x ->
  let (x1, x1') = x in
  let (x2, x2') = (sin x1, fun a -> stage x1' (cos x1 * a)) in
  (x1 * x2, fun a -> plusS (stage x1' (x2 * a)) (stage x2' (x1 * a)))""",
    "dualrev-cayley": """\
fun x ->
  let (x1, x1') = x in
  let (x2, x2') = (sin x1, fun a acc -> stageC x1' (cos x1 * a) acc) in
  (x1 * x2, fun a acc -> stageC x2' (x1 * a) (stageC x1' (x2 * a) acc))""",
}


def _f_term():
    program = load_source(F)
    spec = Specializer(program.world)
    d = program.module.defs[0]
    own = {x.name: (x.module, x.name) for x in program.module.defs}
    return program, spec, spec.get(d.module, d.name, ()), program.world.resolver(own, {})


@pytest.mark.parametrize("mode", STAGES)
def test_the_printed_target_of_x_sin_x(mode):
    def work():
        program, spec, e, resolve = _f_term()
        lang = language(get(mode), spec)
        out = []
        for simplify in (False, True):
            term = transform_term(e, get(mode), simplify)
            target_type = check(term, e.ty, lang)
            back = parse_target(show_term(term), resolve, lang.d_type(e.ty), lang)
            assert back == term
            out.append((show_scheme(target_type), show_term(term)))
        return out
    (plain_type, plain), (simple_type, simple) = run_deep(work)
    assert (plain_type, plain) == PRINTED[mode]
    assert (simple_type, simple) == (PRINTED[mode][0], SIMPLIFIED.get(mode, PRINTED[mode][1]))


def test_dl_transform_prints_the_stage():
    code, out, err = cli("transform", "examples/sharing.dl", "--def", "squarings", "--mode", "dualrev-ids")
    assert code == 0, err
    # squarings n x: n is in Eq and Num, and main's `(n : Int)` chooses the instance (as in backprop mode)
    assert out.startswith("-- squarings@Int@Real: the instance main uses\n-- Dids(squarings@Int@Real) in dualrev-ids mode\n")
    assert "fresh s" in out and "applyI (squarings@Int@Real" in out


# ---- exact counters, derived by hand ---------------------------------------------------------------------------------

SHARING = "def squarings n x = if n == 0 then x else squarings (n - 1) (x * x)\n" \
          "def main (n : Int) = grad (squarings n) 1.0000001"


def counters(text: str, mode: str, args=()) -> dict:
    # backprop on ←D's own term, as the stages (docs/transforms.md, Preaccumulation: --no-preaccumulate)
    _, machine = run_with_machine(text, mode, list(args), preaccumulate=False)
    return machine.counters.as_dict()


@pytest.mark.parametrize("mode", STAGES)
@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_repeated_squaring_runs_each_body_once_from_stage_1_on(mode, n):
    """squarings n x: n products y(k+1) = y(k) * y(k), each a backpropagator whose body calls y(k)'s twice.
    Stage 1 merges the two calls inside the body (plusS finds one backpropagator twice): one merge per
    body, and the input's sink receives one contribution. From stage 2 on, the two calls arrive one by one
    in the pending calls (stage 2), the map by ID (3, 4) or the array (5): the second merges into the first,
    the sink receives two (as in backprop). Forward: n + 1 comparisons, n subtractions, n products, n
    partial pairs that are variables (no primitive), and grad: 3n + 2 prims; n + 1 applications of
    squarings and the one of `squarings n` in main. Stage 1 merges each body's result into the pending
    calls (1 entry) after plusS moved 1: 2n map_unions; stages 3-4 push and pop each ID once: 2n map_ops,
    on a heap that never holds more than one ID (depth 1 each time: 2n map_depth)."""
    got = counters(SHARING, mode, [str(n)])
    want = {"prims": 3 * n + 2, "betas": n + 2, "bp_created": n, "bp_run": n, "merges": n,
            "sink_updates": 1 if mode == "dualrev-staged" else 2, "peak_pending": 1}
    by_id = {"map_ops": 2 * n, "map_depth": 2 * n}
    want.update({"dualrev-staged": {"map_unions": 2 * n}, "dualrev-ids": by_id, "dualrev-defun": by_id}.get(mode, {}))
    assert got == want


DIAMOND = "def f y = let u = sin y in let v = sin (sin u) in u * v\ndef main = grad f 0.5"


@pytest.mark.parametrize("mode", ["backprop", *STAGES])
def test_a_value_reached_by_a_short_and_a_long_path(mode):
    """u = sin y (U), v1 = sin u (V1), v = sin v1 (V2), r = u * v (R): u reaches r directly and through V1, V2.

    Largest ID first (backprop, stages 3-5): R, V2, V1, U: four bodies, U's two calls merged (1 merge),
    one contribution to the sink of y, at most U and V2 pending at once. Oldest first (stages 1-2): R
    stages U then V2; U runs (y's sink: 1), V2, V1 (which stages U again: no merge, U has run), U again
    (y's sink: 2, merged with the first): five bodies. prims: grad, three sin, one product, and the
    three partials cos: 8, except that stages 1-2 compute cos y inside U's body, which runs twice: 9.
    Stage 1 moves 7 entries (plusS in R: 1; the bodies' results: 2 + 1 + 1 + 1 + 1); stages 3-4 push
    R, U, V2, V1 and pop them: 8 map operations, at heap depths push R 1, pop R 1, push U 1, push V2 2,
    pop V2 2, push V1 2, pop V1 2, pop U 1: 12."""
    got = counters(DIAMOND, mode)
    oldest_first = mode in ("dualrev-staged", "dualrev-cayley")
    want = {"prims": 9 if oldest_first else 8, "betas": 0, "bp_created": 4, "bp_run": 5 if oldest_first else 4,
            "merges": 1, "sink_updates": 2 if oldest_first else 1, "peak_pending": 2}
    by_id = {"map_ops": 8, "map_depth": 12}
    want.update({"dualrev-staged": {"map_unions": 7}, "dualrev-ids": by_id, "dualrev-defun": by_id}.get(mode, {}))
    assert got == want
    y = 0.5  # d/dy sin y * sin (sin (sin y))
    u, v1 = math.sin(y), math.sin(math.sin(y))
    v = math.sin(v1)
    want_grad = math.cos(y) * (v + u * math.cos(v1) * math.cos(u))
    assert close(run(DIAMOND, mode), want_grad, rel=1e-14)


CHAIN = "def chainL (n : Int) y = if n == 0 then y else chainL (n - 1) (y + 0.01 * sin y)\n" \
        "def main (n : Int) = grad (chainL n) 0.5"


@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("mode", STAGES)
def test_oldest_first_runs_the_chain_quadratically(mode, n):
    """Each step k makes S(k) = sin y(k), M(k) = 0.01 * S(k), A(k) = y(k) + M(k): 3n backpropagators.
    Largest first runs each once. Oldest first, A(k) is run when A(k+1) has called it, before M(k)'s
    chain (M, then S, then A again) reaches it: for n = 1 the order is A0, M0, S0 (y0 is the input: no
    re-run): 3; n = 2: A1, A0, M1, M0, S1, S0, A0 again, M0 again, S0 again: 9. In general step k (from the
    top, k = 1..n) is run k times: 3 n (n + 1) / 2 bodies."""
    got = counters(CHAIN, mode, [str(n)])
    assert got["bp_created"] == 3 * n
    assert got["bp_run"] == (3 * n * (n + 1) // 2 if mode in STAGES[:2] else 3 * n)


def test_the_chain_sweep_separates_oldest_first_from_largest_id_first():
    code, out, err = cli("compare", "examples/chain_order.dl", "--sweep", "n=8,16,32", "--modes",
                         "backprop,dualrev-cayley,dualrev", "--format", "json")
    assert code == 0, err
    import json
    report = json.loads(out)
    slopes = report["exponents"]
    assert abs(slopes["dualrev"]["bp_apps"] - 1.0) < 0.01 and abs(slopes["backprop"]["bp_apps"] - 1.0) < 0.01
    assert slopes["dualrev-cayley"]["bp_apps"] > 1.8


# ---- gradients of every kind of function value ---------------------------------------------------------------

FUNCTION_VALUES = [
    # (program, expected value computed here)
    ("def main = grad (fun x -> x * sin x) 1.3", math.sin(1.3) + 1.3 * math.cos(1.3)),            # a lambda
    ("def f x = x * sin x\ndef main = grad f 1.3", math.sin(1.3) + 1.3 * math.cos(1.3)),         # a global
    ("def main = grad sin 0.7", math.cos(0.7)),                                                    # a primitive
    ("def main = grad (compose sin cos) 0.4", -math.cos(math.cos(0.4)) * math.sin(0.4)),          # the prelude
    ("def main = grad (pow 2.0) 3.0", 2.0 ** 3.0 * math.log(2.0)),                                 # partial prim
    ("def h k x = k * x * x\ndef main = grad (h 2.5) 3.0", 2 * 2.5 * 3.0),                          # partial global
    ("def main = let k = 2.5 in let h = fun x -> fun y -> k * x * y in grad (h 3.0) 1.0", 7.5),  # partial closure
    ("def main = let c = 3.0 in grad (fun x -> c * x * x) 2.0", 12.0),                             # a captured real
    ("def main = let g = fun y -> y * y in grad (fun x -> g (g x)) 1.1", 4 * 1.1 ** 3),          # a captured closure
    ("def r = 3.9\ndef main = grad (fun x -> r * x * (1.0 - x)) 0.2", 3.9 * (1 - 0.4)),           # a global value
    ("def g = compose sin cos\ndef main = grad g 0.4", -math.cos(math.cos(0.4)) * math.sin(0.4)),  # a global fn value
    ("def main = grad (fun x -> let rec go n acc = if n == 0 then acc else go (n - 1) (acc * x) in go 5 1.0) 1.5",
     5 * 1.5 ** 4),                                                                                # local recursion
    ("def main = grad (iterate 3 (fun y -> y * y)) 0.9", 8 * 0.9 ** 7),                             # higher order
    ("def main = grad (fun xs -> fold (fun a x -> a * x) 1.0 xs) [2.0, 3.0, 5.0]", [15.0, 10.0, 6.0]),
    ("def main = grad (fun xs -> fold (*) 1.0 xs) [2.0, 3.0, 5.0]", [15.0, 10.0, 6.0]),            # fold of a prim
    # 2 x0 x2 + x1^2
    ("def main = grad (fun xs -> sum (zipWith (*) xs (reverse xs))) [1.0, 2.0, 3.0]", [6.0, 4.0, 2.0]),
    ("def main = grad (fun x -> sum (build 4 (fun i -> pow x (float i)))) 2.0", 1 + 2 * 2 + 3 * 4),
    ("def main = grad (fun xs -> sum (map sin xs)) [1.0, 2.0]", [math.cos(1.0), math.cos(2.0)]),  # map of a prim
    ("def main = grad (uncurry (fun a b -> a * b)) (2.0, 5.0)", (5.0, 2.0)),
    ("def main = grad (fun (x, n) -> x ^ float n) (2.0, 3)", (12.0, 0)),                             # Int input
    ("def main = let (y, pb) = vjp (fun (a, b) -> [a * b, sin a]) (2.0, 3.0) in (y, pb [1.0, 2.0])",
     ([6.0, math.sin(2.0)], (3.0 + 2 * math.cos(2.0), 2.0))),
    ("def main = value_and_grad (fun x -> (x - 1) ^ 2) 0.5", (0.25, -1.0)),
    ("def main = grad (fun x -> 3.0) 1.0", 0.0),                                                     # a constant
    ("def main = grad (fun x -> x) 1.0", 1.0),                                                       # an input
    ("def main = grad (fun x -> if x > 0.0 then x * x else 0.0 - x) 2.0", 4.0),
]


@pytest.mark.parametrize("mode", STAGES)
@pytest.mark.parametrize("source,expected", FUNCTION_VALUES, ids=[f"v{i}" for i in range(len(FUNCTION_VALUES))])
def test_gradients_of_every_kind_of_function_value(source, expected, mode):
    assert close(run(source, mode), expected, rel=1e-12, abs_=1e-12)


# ---- a binder floated out of a subterm captures nothing ----------------------------------------------------------

def _found_by_test_ad_random(x: float, y: float) -> tuple:
    """f (x, y) = y / (1.5 + x * (y / (1.5 + 0.5 y))) and its gradient, by hand."""
    d = 1.5 + 0.5 * y
    u = y / d
    big = 1.5 + x * u
    du = 1.5 / d ** 2
    return y / big, (-y * u / big ** 2, 1 / big - y * x * du / big ** 2)


# Stages 3-5 float every let out of its subterm (one flat chain of lets); a later binder of the same name, in
# a sibling subterm or a function's parameter, used to shadow the floated one where the rest still read it.
FLOATED = [
    # (f (x, y), the point, value and gradient computed here)
    ("(let (p, q) = (y, y) in p) + (let (p, q) = (x, x) in x)", (0.3, 0.4), (0.7, (1.0, 1.0))),    # y + x
    ("(let p = y * y in p) + (let p = x in p)", (0.3, 0.4), (0.46, (1.0, 0.8))),                    # y^2 + x
    ("let a = (let p = y * x in p) in (let g = fun p -> a * p in g x)", (0.3, 0.4),
     (0.036, (2 * 0.3 * 0.4, 0.09))),                                                               # x^2 y
    ("(let h = (let rec p n = if n == 0 then y else p (n - 1) * y in p 1) in h) + "
     "(let rec p n = if n == 0 then x else p (n - 1) in p 2)", (0.3, 0.4), (0.46, (1.0, 0.8))),     # y^2 + x
    # found by test_ad_random (DL_AD_RANDOM_EXPLORE=1): stage 3 gave 1.333.. for 7.9e-8
    ("((let (p1, q1) = (y, 0.5) in p1) / (1.5 + (let (p1, q1) = (2.0, y) in x) * (y / (1.5 + 0.5 * y))))",
     (1.192092896e-07, 1.192092896e-07), _found_by_test_ad_random(1.192092896e-07, 1.192092896e-07)),
    ("((let (p1, q1) = (y, 0.5) in p1) / (1.5 + (let (p1, q1) = (2.0, y) in x) * (y / (1.5 + 0.5 * y))))",
     (0.7, -1.1), _found_by_test_ad_random(0.7, -1.1)),
]


@pytest.mark.parametrize("mode", STAGES)
@pytest.mark.parametrize("body,point,expected", FLOATED, ids=[f"f{i}" for i in range(len(FLOATED))])
def test_a_floated_binder_is_not_captured_by_a_later_one_of_the_same_name(body, point, expected, mode):
    source = f"def f (x, y) = {body}\ndef main = value_and_grad f ({point[0]!r}, {point[1]!r})"
    assert close(run(source, mode), expected, rel=1e-12, abs_=1e-15)


# ---- nested differentiation: refused at the inner call ---------------------------------------------------------


@pytest.mark.parametrize("mode", STAGES)
@pytest.mark.parametrize("inner,col", [("grad (fun y -> x * y * y) 1.0", 27), ("derivative (fun y -> x * y) 1.0", 27)])
def test_nesting_is_refused_with_a_diagnostic_at_the_inner_call(mode, inner, col):
    with pytest.raises(DlError) as e:
        run(f"def main = grad (fun x -> {inner}) 3.0", mode)
    assert e.value.kind == "runtime"
    assert (e.value.span.line, e.value.span.col) == (1, col)
    assert "nested differentiation" in e.value.message and mode in e.value.message


def test_the_rows_do_not_nest_and_the_intermediate_stages_stay_out_of_the_default_comparison():
    rows = {m.name: m for m in listed()}
    assert all(not rows[m].nests for m in STAGES)
    assert [m.name for m in compared() if m.name.startswith("dualrev")] == ["dualrev"]
    code, out, _ = cli("modes")
    assert code == 0 and all(m in out for m in STAGES)


# ---- the targets' own rules catch broken terms -----------------------------------------------------------------


def _typed(term: c.Expr, transform_mode: str, ty) -> None:
    program, spec, _, _ = _f_term()
    check(term, ty, language(get(transform_mode), spec))


def test_a_supply_used_twice_is_a_transform_bug():
    """fun x s -> (x, s) is threaded; fun x s -> let (j, s1) = fresh s in let (k, s2) = fresh s in ... hands
    out one ID twice (two reals would share an adjoint)."""
    s = c.Var("s", ty=SUPPLY)
    twice = c.LetTuple(("j", "s1"), c.Prim("fresh", (s,)),
                       c.LetTuple(("k", "s2"), c.Prim("fresh", (s,)), c.Tuple((c.Var("x"), c.Var("s2")))))
    with pytest.raises(TransformBug, match="used 2 times"):
        check_supply(_infer(c.Lam("x", c.Lam("s", twice))))
    # a supply dropped: the result can only pass on another, used twice then
    dropped = c.Lam("x", c.Lam("s", c.LetTuple(("j", "s1"), c.Prim("fresh", (s,)), c.Tuple((c.Var("x"), s)))))
    with pytest.raises(TransformBug, match="used [02] times"):
        check_supply(_infer(dropped))
    check_supply(_infer(c.Lam("x", c.Lam("s", c.Tuple((c.Var("x"), s))))))  # threaded: accepted


def test_a_backpropagator_that_is_not_linear_is_a_transform_bug():
    a, acc, p = c.Var("a"), c.Var("acc"), c.Var("p")
    squared = c.Lam("a", c.Lam("acc", c.Prim("stageC", (p, c.Prim("*", (a, a)), acc))))
    with pytest.raises(TransformBug, match="non-linearly"):
        check_backpropagators(_infer(squared, {"p": TFun(REAL, TFun(_staged(), _staged()))}))
    dropped = c.Lam("a", c.Lam("acc", c.Prim("stageC", (p, a, c.Prim("zeroS", ())))))
    with pytest.raises(TransformBug, match="accumulator"):
        check_backpropagators(_infer(dropped, {"p": TFun(REAL, TFun(_staged(), _staged()))}))
    good = c.Lam("a", c.Lam("acc", c.Prim("stageC", (p, c.Prim("*", (c.Lit(2.0), a)), acc))))
    check_backpropagators(_infer(good, {"p": TFun(REAL, TFun(_staged(), _staged()))}))


def _staged():
    from lang.model.types import STAGED
    return STAGED


def _infer(term: c.Expr, env: dict | None = None) -> c.Expr:
    """The term typed by the target checker's inference (what TargetLanguage.checks receive)."""
    from lang.transforms.check import TargetInferencer, TargetLanguage
    inf = TargetInferencer(TargetLanguage("test", lambda t: t, lambda *k: None))
    for name, t in (env or {}).items():
        inf.locals[name] = t
    return inf.infer(term)


def test_debug_checks_every_transformed_term_as_it_runs():
    for mode in STAGES:
        code, out, err = cli("--debug", "run", "examples/many_inputs.dl", "10", "--mode", mode)
        assert code == 0, (mode, err)
        assert close(float(out), math.sqrt(sum((math.sin(i / 10) + i / 10 * math.cos(i / 10)) ** 2
                                               for i in range(10))), rel=1e-12)


def test_stage_3_and_4_types():
    _, spec, e, _ = _f_term()
    for mode in ("dualrev-ids", "dualrev-defun"):
        t = get(mode).load_transform().type(e.ty)
        assert isinstance(t, TFun) and isinstance(t.result, TFun) and t.result.arg == SUPPLY
        assert isinstance(t.result.result, TTuple) and t.result.result.items[1] == SUPPLY


@pytest.mark.parametrize("mode", STAGES)
def test_an_error_inside_a_prelude_function_is_reported_at_the_programs_call(mode):
    """chunks takes two arguments: from stage 3 on its body runs in the call `applyI (chunks 0 s) xs`, which
    must point the error at the program's call as the first call would."""
    with pytest.raises(DlError) as e:
        run("def main = grad (fun x -> sum (concat (chunks 0 [x]))) 2.0", mode)
    assert e.value.kind == "runtime" and "division by zero" in e.value.message
    assert (e.value.span.line, e.value.span.col) == (1, 40)
    assert any("raised inside the prelude's `chunks`" in note for note in e.value.notes)
