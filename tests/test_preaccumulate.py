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
            (x3 * x4, fun a -o x' ((3.7 * x4 + -x3) * a)))""")


def test_a_weight_used_twice_is_computed_once(tmp_dl):
    """tanh (a x + b): the backpropagator of a x + b has two parents, so tanh's weight 1 - r^2 is bound
    once in front of the backpropagator rather than copied into three contributions."""
    out = shown(tmp_dl, "def step a b x = tanh (a * x + b)\n", "step")
    assert "let w1 = 1.0 - r3 * r3 in" in out
    assert "fun ct -o a' (x * w1 * ct) + x' (a * w1 * ct) + b' (w1 * ct)" in out


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
