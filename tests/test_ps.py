"""The ps mode (docs/transforms.md, ps): the transform, the runtime, the counters, the refusals.

Every expected number is derived by hand (the derivation beside it) or computed
with Python's math module, never by running dl. ps's agreement with every other
mode on the shared tables, the random programs, and the type check and round
trip of every prelude and example definition are in test_modes.py,
test_ad_random.py and test_transform_check.py, which read the mode table.
"""
import math

import pytest

from conftest import ROOT, cli, close, diagnostic, load_source, run, run_with_machine
from lang.front.mono import Specializer
from lang.model.printer import show_term
from lang.model.types import ENV, INT, REAL, TFun, TList, TTuple, TVar
from lang.modes.table import get
from lang.transforms.ps import p_type, s_type
from lang.transforms.read import parse_target
from lang.tools.repl.core import execute, new_state
from lang.tools.workbench import language, transform_term
from test_delta import DEFS, FUNCTIONS as SHARED_FUNCTIONS

SHARING = (ROOT / "examples" / "sharing.dl").read_text()
BENCH = ROOT / "benchmarks" / "ps"

# P(x * sin x) by the rules: A-normal form names sin x (t) and the product (y); the partial cos x is computed
# forward; ρ runs the product's rule, then sin's, adding x's two contributions.
X_SIN_X = """fun x ->
  let t = sin x in
  let t_d = cos x in
  let y = x * t in
  (y,
   fun y_bar ->
     let (x_c, t_c) = rho y_bar (t, x) in
     let x_c1 = rho t_c t_d in
     let x_bar = oplus x_c x_c1 in
     (env 0 (), x_bar))"""


# ---- the transform ---------------------------------------------------------------------------

def test_transform_prints_the_backpropagator_of_each_function(tmp_dl):
    path = tmp_dl("f.dl", "def f (x : Real) = x * sin x\ndef main = grad f 1.0\n")
    code, out, err = cli("transform", path, "--def", "f", "--mode", "ps")
    assert code == 0, err
    assert out.rstrip("\n").split("\n") == [
        "-- P(f) in ps mode", "-- source type: Real -> Real",
        "-- target type: Real -> Real * (Real -> Env * Real)", *X_SIN_X.split("\n")]


def test_the_type_transforms():
    """P changes the result of every arrow; S maps a function to Env and a type variable to one of its own."""
    assert p_type(TFun(REAL, REAL)) == TFun(REAL, TTuple((REAL, TFun(REAL, TTuple((ENV, REAL))))))
    curried = p_type(TFun(INT, TFun(REAL, REAL)))  # Int -> (Real -> ...) * (Env -> Env * Int)
    assert curried.result.items[1] == TFun(ENV, TTuple((ENV, INT)))
    assert s_type(TTuple((TList(REAL), TFun(REAL, REAL)))) == TTuple((TList(REAL), ENV))
    a = TVar()
    sa = s_type(TList(a))
    assert isinstance(sa.item, TVar) and sa.item is not a  # 'a may be a function type: S('a) is not 'a


def test_printed_terms_read_back():
    text = ("def f x = x * sin x\ndef g xs = sum (map (fun x -> x * x) xs)\n"
            "def h y = let rec go (k : Int) = if k == 0 then 1.0 else y * go (k - 1) in go 3\n"
            "def k (a, b) = let (p, q) = (b, a) in fst (p, [q, p]) + get [q] 0")
    program = load_source(text)
    spec = Specializer(program.world)
    module = program.module
    resolve = program.world.resolver({d.name: (d.module, d.name) for d in module.defs}, dict(module.exports))
    lang = language(get("ps"), spec)
    for name in ("f", "g", "h", "k"):
        e = spec.get(module.id, name, ())
        term = transform_term(e, get("ps"))
        assert parse_target(show_term(term), resolve, lang.d_type(e.ty), lang) == term, name


def test_a_variable_nothing_reaches_has_no_rho():
    """In fun x -> let u = sin x in x * 2.0, u is never used: its ρ is not written at all."""
    program = load_source("def f (x : Real) = let u = sin x in x * 2.0")
    e = Specializer(program.world).get(program.module.id, "f", ())
    text = show_term(transform_term(e, get("ps")))
    assert "rho y_bar x" in text.replace("\n", " ") or "rho y_bar 2.0" in text
    assert text.count("rho") == 1


def test_a_program_cannot_write_the_target_language(tmp_dl):
    code, _, err = cli("run", tmp_dl("p.dl", "def main = oplus 1.0 2.0\n"))
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("name", 1, 12)
    code, _, err = cli("run", tmp_dl("q.dl", "def f (x : Env) = x\ndef main = 1.0\n"))
    assert code == 1 and diagnostic(err)["kind"] == "name"


# ---- gradients of every kind of function value and structural built-in ---------------------------

FUNCTIONS = SHARED_FUNCTIONS + [  # every kind of function value (test_delta.py's table), and the structural rules
    # fold: d/dxi of x0 x1 x2 is the product of the others
    ("grad (fun xs -> fold (fun a x -> a * x) 1.0 xs) [2.0, 3.0, 4.0]", [12.0, 8.0, 6.0]),
    # sum_i x_i x_(n-1-i): 2 x_(n-1-i)
    ("grad (fun xs -> sum (zipWith (fun a b -> a * b) xs (reverse xs))) [1.0, 2.0, 3.0]", [6.0, 4.0, 2.0]),
    # x1 * x1 + x0 + (2 + x0 + x1 + x2): (1 + 1, 2 x1 + 1, 1)
    ("grad (fun xs -> get xs 1 * head (tail xs) + head (xs ++ [1.0]) + sum (2.0 :: xs)) [1.0, 2.0, 3.0]",
     [2.0, 5.0, 1.0]),
    ("grad (fun x -> sum (build 3 (fun i -> x * float i))) 2.0", 3.0),        # 0 + 1 + 2
    ("grad (fun (x, y) -> let (a, b) = (y, x) in fst (a * b, 1.0) + snd (2.0, a)) (2.0, 3.0)", (3.0, 3.0)),
    # functions in a list: x * x + (1 + x)
    ("grad (fun x -> let fs = [fun y -> y * x, fun y -> y + x] in (get fs 0) x + (head (tail fs)) 1.0) 3.0", 7.0),
    ("grad (fun x -> if x > 0.0 then x * x else x) 3.0", 6.0),
    # a closure chosen by `if`: x * x + x
    ("grad (fun x -> let g = if x > 0.0 then (fun y -> y * x) else (fun y -> y) in g x + g 1.0) 3.0", 7.0),
]


@pytest.mark.parametrize("expr,expected", FUNCTIONS, ids=[e for e, _ in FUNCTIONS])
def test_grad_of_every_kind_of_function_value(expr, expected):
    assert close(run(DEFS + f"def main = {expr}", "ps"), expected, rel=1e-12)


@pytest.mark.parametrize("expr,col,name", [
    ("grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0", 27, "grad"),
    ("grad (fun x -> x * derivative sin x) 3.0", 31, "derivative"),
])
def test_nested_differentiation_is_refused_by_name(expr, col, name, tmp_dl):
    code, _, err = cli("run", tmp_dl("n.dl", f"def main = {expr}\n"), "--mode", "ps")
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("runtime", 1, col)
    assert d["message"].startswith(f"nested differentiation: this `{name}`") and "ps mode" in d["message"]


def test_debug_checks_every_transformed_term(tmp_dl):
    path = tmp_dl("d.dl", DEFS + "def main = (grad (f 2.0) 1.5, grad (compose exp sin) 0.2)\n")
    code, out, err = cli("--debug", "run", path, "--mode", "ps")
    assert code == 0, err
    assert close(eval(out.strip()), (6.0, math.exp(math.sin(0.2)) * math.cos(0.2)), rel=1e-12)


def test_a_deep_recursion_runs():
    """sum_{k<n} sin(0.3 * 0.99999^k), 10^5 calls deep (non-tail): its derivative by the formula."""
    n = 100000
    expected = sum(0.99999 ** k * math.cos(0.3 * 0.99999 ** k) for k in range(n))
    text = ("def sumsin (n : Int) x = if n == 0 then 0.0 else sin x + sumsin (n - 1) (x * 0.99999)\n"
            f"def main = grad (sumsin {n}) 0.3")
    assert close(run(text, "ps"), expected, rel=1e-9)


# ---- exact counters ---------------------------------------------------------------------------

def test_counters_of_x_sin_x():
    """grad f 1.0 with f x = x * sin x: primitives sin, its partial cos, the product, and grad itself (4);
    backpropagators created: f's (one call) and two inlined primitive ρs (3), all three run; x's two
    contributions meet once (one merge, one leaf); the kernel's own call is not an application."""
    value, m = run_with_machine("def f x = x * sin x\ndef main = grad f 1.0", "ps")
    assert close(value, math.sin(1.0) + math.cos(1.0), rel=1e-12)
    k = m.counters
    assert (k.prims, k.betas, k.bp_created, k.bp_run, k.merges) == (4, 0, 3, 3, 1)
    assert k.extra["sens_leaves"] == 1


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10])
def test_counters_on_repeated_squaring(n):
    """sharing.dl: squarings n x = if n == 0 then x else squarings (n - 1) (x * x). Primitives: n == 0,
    n - 1 and x * x per step, the last n == 0, and grad (3n + 2, as backprop). Applications: main's call and
    `squarings n` in the primal (2), and per step the curried call squarings (n - 1) (x * x), which P makes
    two applications (2n). Backpropagators: per step the two applications' and x * x's ρ, and the two of the
    kernel's own call (3n + 2). Run: the kernel's, and per step the inner call's and x * x's ρ (2n + 1),
    linear: ρ runs in reverse binding order, so x's two uses are summed before the step below runs — one
    merge per step."""
    value, m = run_with_machine(SHARING, "ps", [str(n)])
    assert close(value, 2 ** n * 1.0000001 ** (2 ** n - 1), rel=1e-12)
    k = m.counters
    assert (k.prims, k.betas, k.bp_created, k.bp_run, k.merges) == (3 * n + 2, 2 * n + 2, 3 * n + 2, 2 * n + 1, n)
    assert k.extra.get("sens_leaves", 0) == n


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_a_captured_list_costs_quadratic_leaves(n):
    """capture_list.dl: fold (fun acc i -> acc + head ps * float i) 0.0 (range n). Each of the n calls makes
    head's ρ a dense one-hot list (n leaves), and its closure's Env carries it out; fold adds the n Envs of
    one slot: the first is free (added to zero), each later one walks the slot (1), the list (n) and merges
    its element 0 (1). sens_leaves = n·n + (n - 1)(n + 2) = 2n² + n - 2, merges n - 1. The gradient: d/dps_0
    of sum_i ps_0 i = n (n - 1) / 2, the others 0."""
    value, m = run_with_machine((BENCH / "capture_list.dl").read_text(), "ps", [str(n)])
    assert close(value, n * (n - 1) / 2, rel=1e-12)
    k = m.counters
    assert k.extra["sens_leaves"] == 2 * n * n + n - 2 and k.merges == n - 1


@pytest.mark.parametrize("k", [2, 4, 8])
def test_a_closure_capturing_k_variables_costs_k_per_call(k):
    """captures.py's program: k variables a_j = x j captured by the loop body, one used, k calls. fold adds
    the body's k-slot Envs: k - 1 non-trivial sums, each walking k slots and merging slot a_1:
    sens_leaves = (k - 1)(k + 1) = k² - 1. backprop has none of it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("captures", BENCH / "captures.py")
    captures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(captures)
    counts = captures.measure(k, "ps")  # it checks the gradient k (k - 1) / 2 itself
    assert counts["sens_leaves"] == k * k - 1
    assert captures.measure(k, "backprop")["sens_leaves"] == 0


# ---- the tools ---------------------------------------------------------------------------------

def test_repl_mode_transform_and_cost():
    state = new_state()
    for line in ("def f x = x * sin x", ":mode ps"):
        state, out = execute(state, line)
        assert not out.error, out.text
    state, out = execute(state, ":transform f")
    assert not out.error, out.text
    assert out.text.split("\n")[-len(X_SIN_X.split("\n")):] == X_SIN_X.split("\n")
    state, out = execute(state, ":cost grad f 1.0")
    lines = out.text.split("\n")
    assert close(float(lines[0].split(" : ")[0]), math.sin(1.0) + math.cos(1.0), rel=1e-12)
    assert lines[1] == "cost (ps mode)"


def test_compare_growth_exponents_on_sharing():
    from lang.tools.compare import compare
    from lang.tools.pipeline import main_call
    program = load_source(SHARING)
    report = compare(program.world, lambda n: main_call(program, [str(n)]), [4, 8, 16],
                     [get("backprop"), get("ps")], budget=60)
    assert all(r.status == "ok" for r in report.rows)
    assert all(r.error is not None and r.error < 1e-12 for r in report.rows)
    bp = {(r.mode, r.n): r.metrics["bp_apps"] for r in report.rows}
    assert [bp[("ps", n)] for n in (4, 8, 16)] == [9, 17, 33]  # 2n + 1 (test_counters_on_repeated_squaring)
    assert 0.9 <= report.exponents["ps"]["bp_apps"] <= 1.0


def test_a_pullback_inside_a_differentiated_function_is_refused(tmp_dl):
    path = tmp_dl("pb.dl", "def main = let (y, pb) = vjp sin 1.0 in grad (fun x -> x * pb 1.0) 2.0\n")
    code, _, err = cli("run", path, "--mode", "ps")
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("runtime", 1, 41)
    assert d["message"].startswith("nested differentiation") and "ps" in d["message"]
