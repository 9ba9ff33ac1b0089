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


# ---- the array examples' oracles: the same algorithms in numpy, written out by hand ------------

DATA = ROOT / "examples" / "data"


def digits_numpy():
    """(x_train, labels_train, x_test, labels_test) as the examples read them."""
    import numpy as np
    table = np.load(DATA / "digits.npy").astype(float)
    train = np.loadtxt(DATA / "digits_train.txt", dtype=int)
    test = np.loadtxt(DATA / "digits_test.txt", dtype=int)
    return table[train, :64] / 16.0, table[train, 64], table[test, :64] / 16.0, table[test, 64]


def _log_softmax(z):
    import numpy as np
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def train_digits_numpy(epochs, rate, l2, init):
    """Adam on mini-batches of 32 of the shuffled training rows (numpy's PCG64 permutation seeded with the
    epoch), the loss mean cross-entropy + l2/2 sum of squared weights, the gradient written by hand:
    the algorithm of examples/digits_mlp.dl and digits_softmax.dl."""
    import numpy as np
    x, y, xt, yt = digits_numpy()
    t = np.eye(10)[y.astype(int)]
    params = init()

    def forward(ps, x):
        hs = [x]
        for w, b in ps[:-1]:
            hs.append(np.tanh(hs[-1] @ w + b))
        w, b = ps[-1]
        return hs, hs[-1] @ w + b

    def loss(ps, x, t):
        _, z = forward(ps, x)
        return -np.sum(t * _log_softmax(z)) / x.shape[0] + 0.5 * l2 * sum(np.sum(w * w) for w, _ in ps)

    def grads(ps, x, t):
        hs, z = forward(ps, x)
        dz = (np.exp(_log_softmax(z)) - t) / x.shape[0]
        out = []
        for i in range(len(ps) - 1, -1, -1):
            w, b = ps[i]
            out.append((hs[i].T @ dz + l2 * w, dz.sum(axis=0)))
            if i:
                dz = (dz @ w.T) * (1 - hs[i] ** 2)
        return out[::-1]

    m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    step = 0
    for e in range(epochs):
        order = np.random.default_rng(e).permutation(x.shape[0])
        for s in range(0, x.shape[0], 32):
            rows = order[s:s + 32]
            g = grads(params, x[rows], t[rows])
            step += 1
            c1, c2 = 1 - 0.9 ** step, 1 - 0.999 ** step
            new = []
            for k in range(len(params)):
                layer = []
                for j in range(2):
                    mk = 0.9 * m[k][j] + 0.1 * g[k][j]
                    vk = 0.999 * v[k][j] + 0.001 * g[k][j] * g[k][j]
                    layer.append((params[k][j] - rate * ((mk / c1) / (np.sqrt(vk / c2) + 1e-8)), mk, vk))
                new.append(layer)
            params = [(a[0], b[0]) for a, b in new]
            m = [(a[1], b[1]) for a, b in new]
            v = [(a[2], b[2]) for a, b in new]

    def accuracy(x, y):
        return float(np.mean(forward(params, x)[1].argmax(axis=1) == y))
    return loss(params, x, t), accuracy(x, y), accuracy(xt, yt)


def softmax_init():
    import numpy as np
    return [(np.zeros((64, 10)), np.zeros(10))]


def mlp_init():
    import numpy as np
    return [(np.random.default_rng(k).standard_normal((n_in, n_out)) / np.sqrt(n_in), np.zeros(n_out))
            for k, (n_in, n_out) in enumerate([(64, 64), (64, 10)])]


def check_digits(oracle, threshold):
    def check_it(v):
        loss, train_accuracy, held_out = v
        want_loss, want_train, want_held_out = oracle()
        assert held_out >= threshold
        assert (train_accuracy, held_out) == (want_train, want_held_out)   # the same predictions, row for row
        assert close(loss, want_loss, rel=1e-6)
    return check_it


def gmm_numpy():
    """examples/gmm.dl's data, value, gradient and 100 Adam steps, by benchmarks/arrays's numpy floor (the
    ADBench objective with a hand-written reverse pass)."""
    import sys
    import numpy as np
    sys.path.insert(0, str(ROOT / "benchmarks" / "arrays"))
    from array_workloads import Case, a3_floor_vg, gmm_constant, gmm_qidx
    d, k, n = 2, 3, 500
    centres = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    x = centres[np.arange(n) % 3] + np.random.default_rng(1).standard_normal((n, d)) * 0.6
    consts = {"x": x, "qidx": gmm_qidx(d), "c0": gmm_constant(n, d, k, 1.0, 0), "gamma": 1.0, "m": 0.0}
    p = [np.zeros(k), np.random.default_rng(2).standard_normal((k, d)),
         np.random.default_rng(3).standard_normal((k, d + d * (d - 1) // 2)) * 0.1]
    value, grads = a3_floor_vg(Case(consts, p, ""))
    m, v = [np.zeros_like(a) for a in p], [np.zeros_like(a) for a in p]
    for t in range(1, 101):
        _, g = a3_floor_vg(Case(consts, p, ""))
        g = [-a for a in g]                          # ascent: the gradient of the negated objective
        m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
        v = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        p = [a - 0.05 * ((mi / c1) / (np.sqrt(vi / c2) + 1e-8)) for a, mi, vi in zip(p, m, v)]
    return value, [gr.ravel().tolist() for gr in grads], a3_floor_vg(Case(consts, p, ""))[0]


def check_gmm(v):
    value, g_alpha, g_mu, g_icf, fitted = v
    want_value, (wa, wm, wi), want_fitted = gmm_numpy()
    assert close(value, want_value, rel=1e-12)
    assert close(g_alpha, wa, rel=1e-10) and close(g_mu, wm, rel=1e-10) and close(g_icf, wi, rel=1e-10)
    assert close(fitted, want_fitted, rel=1e-8)
    assert fitted > value + 1000                                      # the ascent fitted the clusters


def check_arrays_intro(v):
    a = [i / 4 for i in range(5)]
    assert close(v, (sum(math.sin(x) * x for x in a), [math.cos(x) * x + math.sin(x) for x in a]), rel=1e-12)


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


def check_custom_rules(v):
    # mpmath, 50 digits: E = findroot(E - 0.5 sin E - 1), (1, sin E) / (1 - 0.5 cos E); sigmoid 800 = 1
    (by_rule, unrolled, by_forward_rule), (stable, naive) = v
    assert close(by_rule, (1.037362021893646, 1.0346672323734563), rel=1e-14)
    assert close(unrolled, by_rule, rel=1e-14) and close(by_forward_rule, by_rule, rel=1e-14)
    assert stable == 1.0 and naive is True


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


def check_environment(n):
    def check_it(v):
        # loss = Σ_j x_j (x_0 + x_{n-1}): ∂_k = x_0 + x_{n-1} + [k = 0] Σ x + [k = n-1] Σ x; with x_i = i/n,
        # x_0 = 0, x_{n-1} = (n-1)/n, Σ x = (n-1)/2, so Σ_k ∂_k = (n-1) + 2 (n-1)/2 = 2 (n-1)
        assert close(v, 2.0 * (n - 1), rel=1e-9)
    return check_it


def check_local_recursion(n):
    def check_it(v):
        expected = n * 1.000001 ** (n - 1)  # d/dy y^n at y = 1.000001, local and top-level recursion alike
        assert close(v[0], expected, rel=1e-12) and close(v[1], expected, rel=1e-12)
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
    ("custom_rules.dl", [], check_custom_rules),
    ("almost_everywhere.dl", [], check_almost_everywhere),
    ("sharing.dl", ["20"], check_sharing(20)),
    ("many_inputs.dl", ["1000"], check_many_inputs(1000)),
    ("environment.dl", ["1000"], check_environment(1000)),
    ("local_recursion.dl", ["1000"], check_local_recursion(1000)),
    ("digits_mlp.dl", [], check_digits(lambda: train_digits_numpy(40, 1e-3, 1e-4, mlp_init), 0.95)),
    ("digits_softmax.dl", [], check_digits(lambda: train_digits_numpy(30, 0.01, 1e-4, softmax_init), 0.95)),
    ("gmm.dl", [], check_gmm),
    ("arrays_intro.dl", [], check_arrays_intro),
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
