"""Every program in examples/ runs through the command line and prints the right line.

Each example has a row: its arguments and a check of the printed value, with
the expected numbers computed here in Python (or, for training and fitting,
the thresholds of the issue: accuracy >= 0.95, parameters recovered to 1e-3 or
1e-2). Every example must have a row, print one line, and finish in 30 s.
The transforms of every example definition type-check as well.
"""
from __future__ import annotations

import ast
import math
import re
import time

import pytest

from conftest import ROOT, close, dl, get

from lang.back.deep import run_deep
from lang.front.mono import Specializer
from lang.tools.pipeline import load
from lang.model.printer import show_term
from lang.transforms.check import check
from lang.model.types import show_scheme
from lang.tools.workbench import default_instance, language, transform_term

EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.dl"))
TIME_LIMIT = 30.0


def parse_value(text: str):
    """A printed dl value as Python data: tuples, lists, floats, ints, bools."""
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    return ast.literal_eval(text)


def run_example(name: str, *args: str):
    """Run `dl run examples/NAME ARGS`: the printed value and the wall time."""
    start = time.perf_counter()
    result = dl("run", f"examples/{name}", *args, timeout=2 * TIME_LIMIT)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return parse_value(lines[0]), elapsed


# ---- oracles ------------------------------------------------------------------------


def logistic(n: int, x0: float = 0.2, r: float = 3.9):
    """x_n, d x_n / d x_0 and the mean of log |f'(x_k)|, by plain iteration."""
    x, d, logs = x0, 1.0, 0.0
    for _ in range(n):
        slope = r * (1.0 - 2.0 * x)
        d *= slope
        logs += math.log(abs(slope))
        x = r * x * (1.0 - x)
    return x, d, logs / n


def kepler_root(e: float, m: float) -> float:
    """Bisection on E - e sin E - M, which is increasing for e < 1."""
    lo, hi = m - 1.0, m + 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid - e * math.sin(mid) - m < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def church_f(x: float, y: float):
    return (x ** 6 + math.sin(x) + math.sin(y) + math.sin(x * y),
            (6 * x ** 5 + math.cos(x) + y * math.cos(x * y), math.cos(y) + x * math.cos(x * y)))


# ---- checks, one per example --------------------------------------------------------


def check_seeds(v):
    assert close(v, ((11.652071455223084, (5.5, 1.7163378145367738)),
                     (-0.5, (-1.0, 1.0, 0.0)),
                     (0.7242871743701426, (1.2410971793131444, -1.2410971793131444))), rel=1e-12)


def check_logistic(n):
    def check_it(v):
        x, d, lam = logistic(n)
        assert close(v[0], x, rel=1e-12)
        assert close(v[1], d, rel=1e-9) and close(v[2], d, rel=1e-9)   # grad and derivative
        assert close(v[3], lam, rel=1e-9)
    return check_it


def check_regression(v):
    a, b = v
    assert abs(a - 2.5) < 1e-3 and abs(b - -0.7) < 1e-3


def check_mlp(v):
    loss, train_accuracy, held_out_accuracy = v
    assert train_accuracy >= 0.95
    assert held_out_accuracy >= 0.9
    assert loss < 0.1


def check_lotka_volterra(v):
    params, loss = v
    assert all(abs(p - t) < 1e-2 for p, t in zip(params, [1.5, 1.0, 3.0, 1.0])), params
    assert loss < 2 * 0.02 ** 2 * 1.5      # the noise's own mean squared size is 2 * 0.02^2


def check_newton(v):
    root, residual, iterations = v
    assert abs(residual) <= 1e-12
    assert abs(root - kepler_root(0.5, 1.0)) <= 1e-12
    assert iterations <= 10


def check_church(v):
    assert close(v, church_f(1.1, 0.7), rel=1e-12)


def check_sharing(n):
    def check_it(v):
        x = 1.0000001
        assert close(v, 2 ** n * x ** (2 ** n - 1), rel=1e-6)
    return check_it


def check_many_inputs(n):
    def check_it(v):
        xs = [i / n for i in range(n)]
        assert close(v, math.sqrt(sum((math.sin(x) + x * math.cos(x)) ** 2 for x in xs)), rel=1e-9)
    return check_it


def check_chain(n):
    def check_it(v):
        x, d = 0.3, 1.0
        for _ in range(n):  # the chain rule along the orbit: f'(x) = 3.7 (1 - 2x)
            d *= 3.7 * (1.0 - 2.0 * x)
            x = 3.7 * x * (1.0 - x)
        assert close(v, d, rel=1e-9)
    return check_it


def check_chain_order(n):
    def check_it(v):
        y, d = 0.5, 1.0
        for _ in range(n):  # y <- y + 0.01 sin y, so dy'/dy = 1 + 0.01 cos y
            d *= 1.0 + 0.01 * math.cos(y)
            y += 0.01 * math.sin(y)
        assert close(v, (d, d), rel=1e-12)
    return check_it


def check_deep(n):
    def check_it(v):
        c, a, x = 0.99999, 0.999999, 0.3
        assert close(v[0], sum(c ** i * math.cos(c ** i * x) for i in range(n)), rel=1e-9)
        assert close(v[1], (1 - a ** (10 * n)) / (1 - a), rel=1e-9)
    return check_it


def check_almost_everywhere(v):
    assert v == (0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0)


CASES = [
    ("seeds.dl", [], check_seeds),
    ("logistic.dl", ["10"], check_logistic(10)),
    ("logistic.dl", ["100"], check_logistic(100)),
    ("logistic.dl", ["1000"], check_logistic(1000)),
    ("regression.dl", [], check_regression),
    ("mlp.dl", [], check_mlp),
    ("lotka_volterra.dl", [], check_lotka_volterra),
    ("newton.dl", [], check_newton),
    ("church.dl", [], check_church),
    ("almost_everywhere.dl", [], check_almost_everywhere),
    ("sharing.dl", ["20"], check_sharing(20)),
    ("many_inputs.dl", ["1000"], check_many_inputs(1000)),
    ("chain.dl", ["100"], check_chain(100)),
    ("chain_order.dl", ["100"], check_chain_order(100)),
    ("deep.dl", ["1000"], check_deep(1000)),
]


@pytest.mark.parametrize("name,args,check_value", CASES, ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])
def test_example(name, args, check_value):
    value, elapsed = run_example(name, *args)
    check_value(value)
    assert elapsed < TIME_LIMIT


def test_every_example_is_checked():
    assert sorted({c[0] for c in CASES}) == EXAMPLES


def test_finite_differences_see_the_identity_where_ad_does_not():
    """The contrast almost_everywhere.dl describes: numeric mode differentiates the function — `grad` and
    `derivative` alike (every mode computes `derivative` its own way)."""
    value, _ = run_example("almost_everywhere.dl", "--mode", "numeric")
    assert close(value, (0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), rel=1e-6)


# ---- transforms ------------------------------------------------------------------------

PURE_CHURCH = ["zero", "succ", "plus", "times", "two", "three", "nil", "cons", "churchMap", "fromList"]


@pytest.mark.parametrize("mode", ["backprop", "forward"])
@pytest.mark.parametrize("name", PURE_CHURCH)
def test_transform_leaves_pure_lambda_terms_unchanged(name, mode):
    def work():
        program = load(str(ROOT / "examples" / "church.dl"))
        spec = Specializer(program.world)
        d = next(d for d in program.module.defs if d.name == name)
        e = spec.get(d.module, d.name, default_instance(d.scheme))
        out = transform_term(e, get(mode))
        target_type = check(out, e.ty, language(get(mode), spec))
        return show_term(out), show_term(e), show_scheme(target_type), show_scheme(e.ty)
    out, source, target_type, source_type = run_deep(work)
    assert out == source
    assert target_type == source_type
