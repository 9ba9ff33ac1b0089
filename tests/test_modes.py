"""The workbench (issue 4): every mode against every other, jvp against vjp, growth exponents.

Growth exponents are fitted on the exact counters (`dl compare`'s
machinery), never on wall time.
"""
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EXACT_MODES, MODES, ROOT, cli, close, diagnostic, dl, get, load_source, run
from lang.tools.compare import compare
from lang.tools.pipeline import main_call
from lang.tools.repl.core import execute, new_state
from lang.tools.report import format_json, format_table

AGREE = [
    ("def f x1 x2 = log x1 + x1 * x2 - sin x2\ndef main = grad (fun (a, b) -> f a b) (2.0, 5.0)",
     (5.5, 1.7163378145367738)),
    ("def g (y, mu, sigma) = -0.5 * ((y - mu) / sigma) ^ 2 - log sigma\ndef main = grad g (1.0, 0.0, 1.0)",
     (-1.0, 1.0, 0.0)),
    ("def loss xs = fold (fun acc x -> acc + sin x * x) 0 xs\ndef main = grad loss [0.1, 0.2, 0.3]",
     [0.19933383317463074, 0.3946826463633095, 0.5821211533990214]),
    ("def apply_grad f x = grad f x\ndef main = apply_grad (fun x -> x ^ 3) 2.0", 12.0),
    ("def h x = if x > 0 then x * x else 0 - x\ndef main = (grad h 3.0, grad h (-1.0))", (6.0, -1.0)),
    ("def power n x = if n == 0 then 1.0 else x * power (n - 1) x\ndef main = grad (power 5) 2.0", 80.0),
    ("def f xs = get xs 0 * get xs 0 + get xs 0 * get xs 2 + get xs 2\ndef main = grad f [2.0, 7.0, 1.0]",
     [5.0, 0.0, 3.0]),
    ("def main = value_and_grad (fun x -> (x - 1) ^ 2) 0.5", (0.25, -1.0)),
    ("def main = jvp (fun x -> (x * x, sin x)) 2.0 1.0", ((4.0, 0.9092974268256817), (4.0, -0.4161468365471424))),
    ("def main = let (y, pb) = vjp (fun (a, b) -> [a * b, a + b]) (2.0, 3.0) in (y, pb [1.0, 2.0])",
     ([6.0, 5.0], (5.0, 4.0))),
    # x^0 is the constant 1 (the textbook partial y x^(y-1) is 0 * inf at 0); sigma' far out
    ("def main = (grad (fun x -> x ^ 0) 0.0, grad (fun x -> pow x 0.0) 0.0, grad (fun x -> x ^ 2) 0.0)",
     (0.0, 0.0, 0.0)),
    ("def main = (grad sigmoid (-3.0), grad sigmoid 40.0)", (0.045176659730912144, 4.248354255291589e-18)),
    # Int and Bool inputs are not differentiated, but every mode evaluates f at them
    ("def main = grad (fun (x, n) -> x ^ 3.0 + float n * x) (2.0, 4)", (16.0, 0)),
    ("def main = grad (fun (x, b) -> if b then x * 3.0 else x) (2.0, true)", (3.0, False)),
    ("def main = let (y, pb) = vjp (fun (a, n) -> a * float n) (3.0, 2) in (y, pb 1.0)", (6.0, (2.0, 0))),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source,expected", AGREE)
def test_every_mode_computes_the_same_derivatives(source, expected, mode):
    rel = 1e-6 if get(mode).tolerance > 1e-9 else 1e-12
    assert close(run(source, mode=mode), expected, rel=rel, abs_=1e-9)


@pytest.mark.parametrize("mode", EXACT_MODES)
def test_at_a_pole_every_exact_mode_gives_the_same_infinity(mode):
    """A constant contributes nothing, even times an infinite partial: forward mode drops a constant's
    zero tangent as reverse mode drops its zero backpropagator (not 0 * inf = nan)."""
    source = ("def main = (grad (fun x -> 1.0 / x) 0.0, grad (fun x -> x / 0.0) 1.0, "
              "derivative (fun x -> 2.0 / x) 0.0, grad (fun x -> 3.0 * (1.0 / x) + float 2) 0.0)")
    assert run(source, mode=mode) == (-math.inf, math.inf, -math.inf, -math.inf)


VECTOR_FUNCTION = """
def f (a, b, c) = (a * b + sin c, [exp (a - c), a * b * c, tanh (b / (1.0 + c * c))])
"""


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=3, max_size=3),
       st.lists(st.floats(-2, 2, allow_nan=False), min_size=3, max_size=3),
       st.lists(st.floats(-2, 2, allow_nan=False), min_size=4, max_size=4))
def test_dot_product_identity(x, v, u):
    """<v, vjp(u)> = <jvp(v), u>: forward mode's jvp against reverse mode's vjp at random points."""
    x, v = tuple(x), tuple(v)
    cot = (u[0], u[1:])
    src = VECTOR_FUNCTION + (
        f"def main = let (y, pb) = vjp f {x!r} in let (y2, t) = jvp f {x!r} {v!r} in (pb ({cot[0]!r}, {list(cot[1])!r}), t)"
    )
    for mode in ("backprop", "backprop-naive", "tape"):
        g, (t0, t1) = run(src, mode=mode)
        lhs = sum(a * b for a, b in zip(v, g))
        rhs = t0 * cot[0] + sum(a * b for a, b in zip(t1, cot[1]))
        assert math.isclose(lhs, rhs, rel_tol=1e-9, abs_tol=1e-9), mode


def test_nested_forward_mode_has_no_perturbation_confusion():
    assert run("def main = derivative (fun x -> x * derivative (fun y -> x + y) 1.0) 1.0") == 1.0


@pytest.mark.parametrize("source,expected", [
    ("def main = derivative (derivative (fun x -> x * x * x)) 2.0", 12.0),
    ("def main = derivative (fun x -> derivative (fun y -> x * y * y) 2.0) 3.0", 4.0),
    ("def main = derivative (fun x -> derivative (derivative (fun y -> x * y * y * y)) 1.0) 1.0", 6.0),
    ("def main = jvp (fun x -> derivative (fun y -> sin (x * y)) 1.0) 0.5 1.0",
     (0.5 * math.cos(0.5), math.cos(0.5) - 0.5 * math.sin(0.5))),
])
def test_higher_derivatives_by_nested_forward_mode(source, expected):
    assert close(run(source), expected, rel=1e-12)


def exponents(text: str, sizes, modes):
    program = load_source(text)
    report = compare(program.world, lambda n: main_call(program, [str(n)]), sizes, [get(m) for m in modes], budget=60)
    assert all(r.status == "ok" for r in report.rows), [(r.mode, r.status) for r in report.rows]
    return report.exponents, report


def test_growth_sharing_backprop_linear_naive_exponential():
    text = (ROOT / "examples" / "sharing.dl").read_text()
    slopes, report = exponents(text, [4, 8, 12, 16], ["backprop", "backprop-naive", "forward"])
    assert 0.9 <= slopes["backprop"]["bp_apps"] <= 1.1
    assert slopes["backprop-naive"]["bp_apps"] > 4  # exponential: 2^(n+1) - 1
    assert 0.8 <= slopes["forward"]["prims"] <= 1.2
    naive = {r.n: r.metrics["bp_apps"] for r in report.rows if r.mode == "backprop-naive"}
    assert naive[16] == 2 ** 17 - 1


def test_growth_many_inputs_forward_and_numeric_grow_with_the_inputs():
    text = (ROOT / "examples" / "many_inputs.dl").read_text()
    slopes, _ = exponents(text, [10, 40, 160], ["backprop", "tape", "forward", "numeric"])
    for mode in ("backprop", "tape"):
        assert 0.9 <= slopes[mode]["prims"] <= 1.1
    for mode in ("forward", "numeric"):
        assert 1.8 <= slopes[mode]["prims"] <= 2.1


LOGISTIC = "def logistic n x = if n == 0 then x else logistic (n - 1) (4.0 * x * (1.0 - x))\n" \
           "def main n = grad (logistic n) 0.3"


def test_growth_logistic_symbolic_swells_backprop_does_not():
    slopes, report = exponents(LOGISTIC, [2, 4, 6, 8], ["backprop", "symbolic"])
    assert 0.8 <= slopes["backprop"]["prims"] <= 1.2
    sizes = {r.n: r.metrics["term"] for r in report.rows if r.mode == "symbolic"}
    assert sizes[8] / sizes[6] > 3  # the unrolled expression more than doubles at every step


def test_numeric_mode_loses_accuracy_on_the_logistic_map():
    program = load_source(LOGISTIC)
    report = compare(program.world, lambda n: main_call(program, [str(n)]), [5, 100],
                     [get(m) for m in ("backprop", "forward", "numeric")], budget=60)
    err = {(r.mode, r.n): r.error for r in report.rows}
    assert err[("forward", 100)] < 1e-6
    assert err[("numeric", 5)] < 1e-6
    assert err[("numeric", 100)] > 0.5  # all accuracy lost: chaos amplifies the step's rounding


def test_compare_command_formats_and_budget(tmp_path):
    p = dl("compare", "examples/sharing.dl", "--sweep", "n=4,8", "--modes", "backprop,backprop-naive",
           "--format", "csv")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith("n,mode,status,error")
    assert len(lines) == 1 + 4
    p = dl("compare", "examples/sharing.dl", "--sweep", "n=4,26", "--modes", "backprop,backprop-naive",
           "--budget", "1")
    assert p.returncode == 0, p.stderr
    timeouts = [ln for ln in p.stdout.splitlines() if "timeout" in ln]
    assert len(timeouts) == 1 and "backprop-naive" in timeouts[0]
    assert "growth exponents" in p.stdout
    p = dl("compare", "examples/sharing.dl", "--sweep", "n=4", "--format", "json")
    assert p.returncode == 0 and p.stdout.lstrip().startswith("{")


def test_compare_measures_a_main_that_is_a_value_each_time(tmp_path):
    """A `main` with no argument is a top-level value, computed once per machine: each timed run and
    the measured run compute it again, so time and memory are the evaluation's."""
    program = load_source("def main = grad (fun xs -> sum (map (fun x -> x * x) xs)) (build 2000 float)")
    report = compare(program.world, lambda n: main_call(program, []), [None], [get("backprop")], budget=60,
                     memory=True)
    [row] = report.rows
    # one backpropagator per element: sum's fold and the map are fused (docs/transforms.md, Fusion)
    assert row.metrics["prims"] > 4000 and row.metrics["bp_apps"] == 2000
    assert row.metrics["time"] > 1e-4 and row.metrics["memory"] > 2000 * 8


GRAD_2000 = "def main = grad (fun xs -> sum (map (fun x -> x * x) xs)) (build 2000 float)"  # ~0.05 s a run


def test_compare_traces_memory_only_when_asked(monkeypatch):
    """tracemalloc slows a run 10 to 60 times: without memory=True it is never started."""
    import lang.tools.compare as measuring

    def refuse():
        raise AssertionError("tracemalloc started without memory=True")
    monkeypatch.setattr(measuring.tracemalloc, "start", refuse)
    program = load_source(GRAD_2000)
    report = compare(program.world, lambda n: main_call(program, []), [None], [get("backprop")], budget=60)
    [row] = report.rows
    assert row.status == "ok" and "memory" not in row.metrics and row.metrics["bp_apps"] == 2000


def test_the_budget_bounds_one_evaluation_not_the_measuring_around_it():
    """An evaluation well inside the budget is measured, although timing it again and counting it take
    longer than the budget all together."""
    program = load_source(GRAD_2000)
    report = compare(program.world, lambda n: main_call(program, []), [None], [get("backprop"), get("tape")],
                     budget=1.0)
    assert [(r.mode, r.status) for r in report.rows] == [("backprop", "ok"), ("tape", "ok")]
    # every record run in each: tape's two per element (x * x, then sum's +), backprop's one (fused: Fusion)
    assert (report.rows[0].metrics["bp_apps"], report.rows[1].metrics["bp_apps"]) == (2000, 4000)


SQUARE_30 = "def main = grad (fun x -> fold (fun a i -> a * a) x (range 30)) 1.0000001"  # x^(2^30): d/dx overflows


def test_compare_flags_an_error_beyond_the_modes_tolerance():
    """Central differences of x^(2^30) give inf where backprop gives a finite number: that row disagrees,
    as :gradcheck says; rows within their tolerance agree."""
    program = load_source(SQUARE_30)
    modes = [get(m) for m in ("backprop", "forward", "numeric")]
    report = compare(program.world, lambda n: main_call(program, []), [None], modes, budget=60)
    rows = {r.mode: r for r in report.rows}
    assert math.isfinite(rows["backprop"].value) and rows["numeric"].error == math.inf
    assert (rows["backprop"].agrees, rows["forward"].agrees, rows["numeric"].agrees) == (True, True, False)
    table = format_table(report)
    assert re.search(r"^ *numeric +disagrees +inf ", table, re.M)
    assert "numeric: disagrees with backprop: error inf is beyond the mode's tolerance 1e-05" in table
    assert re.search(r"^ *forward +ok ", table, re.M)
    assert '"status": "disagrees"' in format_json(report)


def test_a_small_error_within_tolerance_agrees():
    program = load_source("def main = grad (fun x -> x * sin x) 1.0")
    report = compare(program.world, lambda n: main_call(program, []), [None], [get("backprop"), get("numeric")],
                     budget=60)
    numeric = report.rows[1]
    assert 0 < numeric.error < 1e-5 and numeric.agrees is True and numeric.shown_status == "ok"


def test_term_counts_the_lambdas_of_an_expression_as_those_of_a_definition():
    """`:compare grad (fun x -> x * sin x) 1.0` compiles the term of `def f x = x * sin x`: 5 nodes
    (fun, *, x, sin, x) in the modes that run the untransformed program."""
    state, _ = execute(new_state(), "def f x = x * sin x")

    def terms(text: str) -> dict:
        out = execute(state, text)[1].text
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^ *(\S+) +ok +\S+ +(\d+) ", out, re.M)}
    by_name, inline = terms(":compare grad f 1.0"), terms(":compare grad (fun x -> x * sin x) 1.0")
    assert by_name["tape"] == by_name["numeric"] == 5
    assert inline == by_name


def test_compare_asks_for_a_sweep_when_main_takes_an_argument(tmp_dl):
    p = dl("compare", tmp_dl("arg.dl", "def main n = float n * 2.0\n"))
    assert p.returncode == 1
    assert "arg.dl:1:5: runtime error: main takes an argument: give its values with --sweep" in p.stderr


@pytest.mark.parametrize("mode,expected", [
    ("backprop", "fun x -> let (x, x') = x in (x * x, fun a -o x' (x * a) + x' (x * a))"),
    ("forward", "fun x -> let (x, x_dot) = x in (x * x, x * x_dot + x * x_dot)"),
])
def test_transform_prints_the_paper_form(mode, expected, tmp_dl):
    path = tmp_dl("sq.dl", "def sq x = x * x\n")
    p = dl("transform", path, "--def", "sq", "--mode", mode)
    assert p.returncode == 0, p.stderr
    assert expected in p.stdout
    assert "¬Real" in p.stdout or mode == "forward"


def test_transform_of_a_prelude_or_imported_definition(tmp_dl):
    path = tmp_dl("f.dl", "def f x = x * x\n")
    p = dl("transform", path, "--def", "logsumexp")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("-- ←D(logsumexp@Real) in backprop mode\n-- source type: [Real] -> Real\n")
    user = tmp_dl("g.dl", 'import "f.dl"\ndef g x = f x + 1.0\n')
    p = dl("transform", user, "--def", "f", "--mode", "forward")
    assert p.returncode == 0, p.stderr
    assert "fun x -> let (x, x_dot) = x in (x * x, x * x_dot + x * x_dot)" in p.stdout


def test_transform_shows_the_instance_main_uses():
    """examples/sharing.dl's main calls `squarings n` with n : Int: that instance, where the counter gets no
    backpropagator, is the one shown; the Real one is there when asked for."""
    p = dl("transform", "examples/sharing.dl", "--def", "squarings")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("-- squarings@Int@Real: the instance main uses\n"
                               "-- ←D(squarings@Int@Real) in backprop mode\n"
                               "-- source type: Int -> Real -> Real\n"
                               "-- target type: Int -> Real * ¬Real -> Real * ¬Real\n")
    p = dl("transform", "examples/sharing.dl", "--def", "squarings@Real@Real")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("-- ←D(squarings@Real@Real) in backprop mode\n-- source type: Real -> Real -> Real\n")


def test_transform_names_the_other_instances_main_uses(tmp_dl):
    path = tmp_dl("two.dl", "def sq x = x * x\ndef main = (sq (2 : Int), sq 2.0)\n")
    p = dl("transform", path, "--def", "sq", "--mode", "forward")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("-- main uses 2 instances of sq; this is sq@Real (ask for `sq@Int` to see it)\n"
                               "-- →D(sq@Real) in forward mode\n")


@pytest.mark.parametrize("written,col,width,message", [
    ("squarings@Bool@Real", 11, 4, "`Bool` is not in class Num, as that type variable of "
                                    "`squarings : (Eq 'a, Num 'a, Num 'b) => 'a -> 'b -> 'b` must be"),
    ("squarings@Int", 1, 13, "`squarings : (Eq 'a, Num 'a, Num 'b) => 'a -> 'b -> 'b` has 2 type variables to choose, "
                             "so its instances are written with 2 types, like `squarings@Real@Real`"),
    ("squarings@'a@Real", 11, 2, "an instance is written with concrete types, not `'a`"),
    ("squarings 3", 1, 11, "expected the name of a definition, optionally with an instance (`sq@Int`), not "
                           "`squarings 3`"),
])
def test_transform_of_an_instance_that_does_not_exist(written, col, width, message):
    code, out, err = cli("transform", "examples/sharing.dl", "--def", written)
    assert (code, out) == (1, "")
    d = diagnostic(err)
    assert (d["file"], d["line"], d["col"], d["kind"], d["message"]) == ("--def", 1, col, "type", message)
    assert d["caret"] == "    " + " " * (col - 1) + "^" * width


def test_transform_symbolic_shows_the_swell(tmp_dl):
    path = tmp_dl("l.dl", "def l n x = if n == 0 then x else l (n - 1) (4.0 * x * (1.0 - x))\n"
                          "def main = grad (l 1) 0.3\n")
    p = dl("transform", path, "--mode", "symbolic")
    assert p.returncode == 0, p.stderr
    assert "4.0 * x1 * (1.0 - x1)" in p.stdout
    assert "d/dx1 =" in p.stdout
