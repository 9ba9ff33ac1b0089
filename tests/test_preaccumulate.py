"""Preaccumulation (docs/transforms.md, Preaccumulation): ←D's single-use backpropagators inlined and
contributions to one parent merged at compile time, in the printed term and in what backprop runs.

The gradients are checked against derivatives written by hand (math), and against the unsimplified
term (`preaccumulate=False`): equal to the last bits where finite, identical where not.
"""
import math

import pytest

from conftest import ROOT, cli, load_source, run_with_machine
from lang.back.deep import run_deep
from lang.tools.pipeline import run_main
from lang.modes.table import get

LOGISTIC = (ROOT / "benchmarks" / "workloads" / "w2_logistic.dl").read_text()


def shown(tmp_dl, source: str, name: str, *flags: str) -> str:
    code, out, err = cli("transform", tmp_dl("t.dl", source), "--def", name, "--simplify", *flags)
    assert code == 0, err
    return out.split("\n", 3)[3].rstrip("\n")


def test_the_logistic_step_keeps_one_backpropagator(tmp_dl):
    # d/dx 3.7 x (1 - x) = 3.7 (1 - x) - 3.7 x: the weights 3.7 * x4 and -x3 of x3 * x4, merged on x'
    assert shown(tmp_dl, LOGISTIC, "logistic").endswith("""\
           (let (x, x') = x in
            let x3 = 3.7 * x in
            let x4 = 1.0 - x in
            (x3 * x4, fun a -o x' ((3.7 * x4 - x3) * a)))""")


def test_a_weight_used_twice_is_computed_once(tmp_dl):
    """tanh (a x + b): the backpropagator of a x + b has two parents, so tanh's weight 1 - r^2 is bound
    once in front of the backpropagator rather than copied into three contributions."""
    out = shown(tmp_dl, "def step a b x = tanh (a * x + b)\n", "step")
    assert "let w1 = 1.0 - r3 * r3 in" in out
    assert "fun ct -o a' (x * w1 * ct) + x' (a * w1 * ct) + b' (w1 * ct)" in out


def test_a_quotient_backpropagator_is_inlined_with_its_weight_bound_before(tmp_dl):
    """x / s: ←D binds 1 / s before the quotient's backpropagator (`let w1 = 1.0 / s in fun a -o ...`), which is
    bound before the pair instead, so that linear β inlines it: W6's value and gradient one record (its
    gradient by hand: -(y - mu) / s^2, (y - mu) / s^2, (y - mu)^2 / s^3 - 1 / s)."""
    w6 = (ROOT / "benchmarks" / "workloads" / "w6_gaussian.dl").read_text()
    out = shown(tmp_dl, w6, "g")
    assert "let w1 = 1.0 / s in\n  let x3 = r2 in" in out
    assert out.count("fun a -o") == 1
    assert "fun a -o\n     y' (w1 * w2 * -0.5 * a)" in out
    for y, mu, s in [(1.0, 0.0, 1.0), (0.5, -2.0, 0.3), (3.0, 3.0, 2.5), (-1.0, 4.0, 1e-3)]:
        text = w6.replace("def main = vg (1.0, 0.0, 1.0)", f"def main = vg ({y!r}, {mu!r}, {s!r})")
        (value, (gy, gmu, gs)), counters = gradient(text, [], True)
        r = y - mu
        assert value == pytest.approx(-0.5 * (r / s) ** 2 - math.log(s), rel=1e-14)
        assert (gy, gmu, gs) == pytest.approx((-r / s ** 2, r / s ** 2, r ** 2 / s ** 3 - 1.0 / s), rel=1e-12)
        assert counters.as_dict()["bp_created"] == 1


def test_a_backpropagator_used_in_a_function_stays(tmp_dl):
    """y' inside `fun z -> ...` (called once per element) is not inlined: that would move a shared
    backpropagator into every call."""
    out = shown(tmp_dl, "def f x xs = let y = sin x in sum (map (fun z -> y * z) xs)\n", "f")
    assert "(sin x, fun a -o x' (cos x * a))" in out


def test_the_naive_mode_prints_the_transform_own_term(tmp_dl):
    out = shown(tmp_dl, LOGISTIC, "logistic", "--mode", "backprop-naive")
    assert "fun a -o x3' (x4 * a) + x4' (x3 * a)" in out


def gradient(text: str, args: list[str], preaccumulate: bool):
    program = load_source(text)
    value, machine = run_deep(lambda: run_main(program, args, get("backprop"), True, preaccumulate=preaccumulate))
    return value, machine.counters


@pytest.mark.parametrize("n", [1, 2, 10, 100])
def test_logistic_gradients_against_the_chain_rule(n):
    """d x_n / d x_0 = prod 3.7 (1 - 2 x_k), by hand; and the unsimplified term's, to 1e-12."""
    x, d = 0.3, 1.0
    for _ in range(n):
        d *= 3.7 * (1.0 - 2.0 * x)
        x = 3.7 * x * (1.0 - x)
    (y, g), pre = gradient(LOGISTIC, [str(n)], True)
    (y0, g0), faithful = gradient(LOGISTIC, [str(n)], False)
    assert y == y0 == x
    assert math.isclose(g, d, rel_tol=1e-11) and math.isclose(g, g0, rel_tol=1e-12)
    # one backpropagator per step either way preaccumulated, three unsimplified
    assert (pre.bp_created, faithful.bp_created) == (n, 3 * n)


@pytest.mark.parametrize("n", [3000, 10000])
def test_an_overflowing_gradient_is_the_unsimplified_terms(n):
    """Past n of about 2000 the logistic map's derivative overflows: the order-free pass runs the
    unsimplified term, so the non-finite result is exactly the one ←D's own term gives."""
    (y, g), pre = gradient(LOGISTIC, [str(n)], True)
    (y0, g0), _ = gradient(LOGISTIC, [str(n)], False)
    assert not math.isfinite(g)
    assert y == y0 and repr(g) == repr(g0)
    assert pre.extra.get("order_free_passes") == 1


EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_agree_with_the_unsimplified_term(path, monkeypatch):
    """Every example gives the same value with and without preaccumulation (to rounding)."""
    monkeypatch.chdir(path.parent)  # the array examples read their data relative to the example
    text = path.read_text()
    program = load_source(text)
    from lang.tools.pipeline import main_arity
    if main_arity(program) != 0:
        pytest.skip("main takes arguments")
    a = run_with_machine(text, "backprop", preaccumulate=True)[0]
    b = run_with_machine(text, "backprop", preaccumulate=False)[0]
    assert close(a, b), (a, b)


def close(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if type(a).__name__ == "ndarray":
        return a.shape == b.shape and all(close(float(x), float(y)) for x, y in zip(a.ravel(), b.ravel()))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    return a == b


# ---- long sums (issue 19): inlining stays linear in the length of a chain

def test_a_sum_of_one_variable_keeps_one_literal_weight(tmp_dl):
    """x + x + x + x + x: the weights 1.0 of `+` are summed as they are inlined, so each backpropagator of the
    chain holds one contribution (2.0, 3.0, ...), not k of them (n^2 in all): the last one is x' (5.0 * a)."""
    out = shown(tmp_dl, "def f x = x + x + x + x + x\n", "f")
    assert out.endswith("(x3 + x, fun a -o x' (5.0 * a))"), out
    # literals of two signs are not summed before the last merge: x + x - x - x keeps 2.0 and -2.0
    out = shown(tmp_dl, "def f x = x + x - x - x\n", "f")
    assert out.endswith("fun a -o x' ((2.0 + -2.0) * a))"), out


def test_a_long_sum_is_exact_and_one_record():
    n = 3000  # integers are exact in floats: the gradient is n whatever the order of the additions
    text = "def f x = " + " + ".join(["x"] * n) + "\ndef main = grad f 1.0\n"
    g, counters = gradient(text, [], True)
    assert g == float(n)
    assert (counters.bp_created, counters.bp_run, counters.sink_updates, counters.merges) == (1, 1, 1, 0)
    assert gradient(text, [], False)[0] == float(n)


def test_a_wide_sum_stops_inlining_at_max_width():
    """x * y + x * y + ...: each product's backpropagator has two parents with weights that are not literals,
    so the k-th backpropagator of the sum would hold 2k contributions; past MAX_WIDTH it stays a record of
    its own and the next one starts afresh. The gradient is (n y, n x) either way, exactly."""
    from lang.front.mono import Specializer
    from lang.transforms.backprop import PREACCUMULATED
    from lang.transforms.preaccumulate import MAX_WIDTH, contributions
    from lang.model import core as c
    n = 200
    text = "def f x y = " + " + ".join(["x * y"] * n) + "\ndef main = grad (fun (x, y) -> f x y) (2.0, 3.0)\n"
    program = load_source(text)
    d = next(x for x in program.module.defs if x.name == "f")
    term = run_deep(lambda: PREACCUMULATED.simplify(PREACCUMULATED.term(
        Specializer(program.world).get(d.module, d.name, ()))))
    widths, stack = [], [term]
    while stack:
        t = stack.pop()
        if isinstance(t, c.LinLam):
            widths.append(len(contributions(t.body, t.param)))
        stack.extend(c.children(t))
    assert max(widths) <= MAX_WIDTH
    assert len(widths) >= n // (MAX_WIDTH // 2)  # one record per MAX_WIDTH / 2 products or so, not one in all
    (g, counters), (g0, _) = gradient(text, [], True), gradient(text, [], False)
    assert g == g0 == (3.0 * n, 2.0 * n)
    assert counters.bp_created == len(widths)
