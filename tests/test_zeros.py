"""Zeros by construction, and derivatives at singular points: one answer in every exact mode.

The rule (docs/transforms.md, Zeros and infinities):

1. A zero *by construction* — a constant's tangent or backpropagator, the
   tangent of an input a gradient is not taking, a partial the primitive
   table defines as 0 on a branch (relu for x <= 0, min/max's unselected
   argument, the base of x^0, abs'(0)) — is dropped, never multiplied.
   A 0.0 the program writes or computes is a number: 0.0 * inf = nan.
2. The derivative is the chain rule's sum over paths of products of
   partials (Bauer's formula), in IEEE arithmetic: nan when a path is
   nan or infinite paths of both signs meet, the common infinity when the
   infinite paths agree. So the order in which a mode sums does not matter.

Every expected value below is derived by hand from that rule (the paths and
their products are given); where JAX (jax 0.4, x64, `jax.grad` and
`jax.jacfwd`, run outside the repository) agrees it is noted, and where it
does not, why. The tables run in every exact mode of the mode table, so a
new mode is held to them without an edit here.
"""
import math
import random

import pytest

from conftest import EXACT_MODES, load_source, run
from lang.back.deep import run_deep
from lang.model.errors import DlError
from lang.modes.table import get
from lang.tools.pipeline import run_main

inf, nan = math.inf, math.nan


def same(a, b, rel=1e-12, signed=True) -> bool:
    """Equal structure; reals equal as IEEE classes (nan, ±inf) or close; zeros with their sign (`signed`)."""
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y, rel, signed) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        if a == 0.0 or b == 0.0:
            return a == b and (not signed or math.copysign(1, a) == math.copysign(1, b)) \
                or not signed and abs(a - b) <= 1e-12
        return math.isclose(a, b, rel_tol=rel)
    return a == b


# (program, expected): zeros by construction are dropped (items 5 and 13 of "First contact")
ZEROS = [
    # ∂x: one path, sqrt y * (1/2)/sqrt x = 0 * 0.5 = 0; ∂y: sqrt x * (1/2)/sqrt y = 1 * inf. The forward pass
    # for ∂x gives y the tangent zero by construction (it is not the input being differentiated): it is
    # never multiplied by sqrt's infinite partial. JAX jax.grad: (0, inf); jax.jacfwd: (nan, inf).
    ("grad (fun (x, y) -> sqrt x * sqrt y) (1.0, 0.0)", (0.0, inf)),
    # ∂x = log y = -inf; ∂y = x * 1/y = inf. JAX grad agrees.
    ("grad (fun (x, y) -> x * log y) (1.0, 0.0)", (-inf, inf)),
    # the else branch: (log y)^0 is the constant 1 (the base partial of x^0 is zero by construction), so no
    # path reaches y through it; the test x > sqrt (0.25 + y*y) reads values only. JAX grad: ((-0.0, 0.0), 0.0)
    # (its x gets relu's zero times -1: see the next row).
    ("grad (fun ((x, y), z) -> relu (if x > sqrt (0.25 + y * y) then min (y - x) y else (log y) ^ 0))"
     " ((0.5, 0.0), 2.0)", ((0.0, 0.0), 0.0)),
    # relu is constant on x <= 0: no path from x, so +0.0 (not relu's 0 times neg's -1 = -0.0; JAX: -0.0)
    ("grad (fun x -> relu (-x)) 1.0", 0.0),
    ("derivative (fun x -> relu (-x)) 1.0", 0.0),
    ("grad (fun x -> (log x) ^ 0) 0.0", 0.0),
    # max selects x (1 >= 0): its partial in y is zero by construction. ∂x = log y * 1 = -inf;
    # ∂y = max x y * 1/y = inf (JAX grad: (-inf, nan): its max multiplies a 0.0 by log y = -inf)
    ("grad (fun (x, y) -> max x y * log y) (1.0, 0.0)", (-inf, inf)),
    # abs'(0) = 0 by convention, a zero of the same kind: the path x -> sqrt -> abs is dropped
    ("grad (fun x -> abs (sqrt x)) 0.0", 0.0),
    # a constant passed through a function keeps its zero tangent at run time: sqrt's infinite partial at
    # c = 0.0 meets no path. ∂x = sqrt c = 0.0
    ("grad (fun x -> let f = fun c -> sqrt c * x in f 0.0) 1.0", 0.0),
    # the accumulator starts as the constant 0.0: sqrt acc at 0 has no path. ∂x1 = (1/2)/sqrt 1 = 0.5, ∂x2 = 1
    # (JAX grad of sqrt(sqrt(0.0) + x1) + x2: [0.5, 1.0])
    ("grad (fun xs -> fold (fun acc x -> sqrt acc + x) 0.0 xs) [1.0, 2.0]", [0.5, 1.0]),
    # a captured constant in a closure being differentiated, through min's unselected argument
    ("let c = 0.0 in grad (fun x -> min x (sqrt c)) 1.0", 0.0),
]

# (program, expected): numbers stay numbers, and infinities follow Bauer's formula (item 10 of "Hostile input")
SINGULAR = [
    # the 0.0 is the program's: path x -> sqrt -> *: inf * 0.0 = nan. JAX: nan.
    ("grad (fun x -> sqrt x * 0.0) 0.0", nan),
    # u = sqrt x - 1 = -1, p = u * u: paths x->u->f: inf * (-p/u^2 = -1) = -inf; x->u->p->f, twice:
    # inf * (u = -1) * (1/u = -1) = +inf. Paths of both signs: nan. (jax.grad sums -1 + 1 + 1 first: inf;
    # jax.jacfwd multiplies by inf first: inf - inf = nan. The order decides there; here it does not.)
    ("grad (fun x -> let u = sqrt x - 1.0 in u * u / u) 0.0", nan),
    ("derivative (fun x -> let u = sqrt x - 1.0 in u * u / u) 0.0", nan),
    # ∂x: paths x -> x*y -> + -> sqrt: 0 * 1 * inf = nan (y = 0 is a value), and x -> + -> sqrt: inf. nan.
    # ∂y: x * 1 * inf = 0 * inf = nan. JAX grad: (nan, nan); forward mode alone would give inf for ∂x.
    ("grad (fun (x, y) -> sqrt (x * y + x)) (0.0, 0.0)", (nan, nan)),
    ("grad (fun x -> sqrt x) 0.0", inf),
    ("grad (fun x -> sqrt x + sqrt x) 0.0", inf),              # inf and inf
    ("grad (fun x -> sqrt x - sqrt x) 0.0", nan),              # inf and -inf
    ("grad (fun x -> log x * x) 0.0", nan),                    # x * (1/x) = 0 * inf, and log x * 1 = -inf
    ("grad (fun x -> min x 2.0 * sqrt x) 0.0", nan),           # sqrt x * 1 = 0, and min x 2 * inf = 0 * inf
    ("grad (fun x -> 3.0 * (1.0 / x)) 0.0", -inf),             # 3 * (-1/x^2)
    ("derivative (fun x -> sqrt (x * x)) 0.0", nan),           # (x + x) * inf = 0 * inf on each path
    # jvp with the program's own 0.0 in the direction: a number, so sqrt's inf meets it. J = [[y, x], [0, inf]]
    ("jvp (fun (x, y) -> (x * y, sqrt y)) (2.0, 0.0) (1.0, 0.0)", ((0.0, 0.0), (0.0, nan))),
]


@pytest.mark.parametrize("mode", EXACT_MODES)
@pytest.mark.parametrize("source,expected", ZEROS + SINGULAR)
def test_every_exact_mode_follows_the_rule(source, expected, mode):
    value = run(f"def main = {source}", mode=mode)
    assert same(value, expected), (mode, value)


def test_relu_of_a_negated_input_is_a_positive_zero():
    """Item 13: no path reaches x, so its derivative is 0.0 — not -0.0 — in every exact mode."""
    for mode in EXACT_MODES:
        g = run("def main = grad (fun x -> relu (-x)) 1.0", mode=mode)
        assert g == 0.0 and math.copysign(1.0, g) == 1.0, mode


def test_an_order_free_pass_is_counted_apart():
    """The second pass over a result that was not finite is not in the mode's counters."""
    from conftest import run_with_machine
    value, m = run_with_machine("def main = grad (fun x -> let u = sqrt x - 1.0 in u * u / u) 0.0")
    assert math.isnan(value)
    assert m.counters.bp_run <= m.counters.bp_created
    assert m.counters.extra["order_free_passes"] == 1
    _, finite = run_with_machine("def main = grad (fun x -> x * x) 3.0")
    assert "order_free_passes" not in finite.counters.extra


# ---- random programs at singular points (item 10 of "Hostile input") --------------------------------

UNARY = ["sqrt", "log", "relu", "sin", "exp", "abs"]


def random_expression(rng: random.Random, scope: list[str], depth: int) -> str:
    """A Real expression with unguarded log, sqrt and division, ^ 0, relu, min and max."""
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(scope + ["0.0", "1.0", "2.0"])
    sub = lambda: random_expression(rng, scope, depth - 1)  # noqa: E731
    kind = rng.choice(["op", "op", "unary", "unary", "div", "pow0", "minmax", "let", "if"])
    if kind == "op":
        return f"({sub()} {rng.choice(['+', '-', '*'])} {sub()})"
    if kind == "unary":
        return f"({rng.choice(UNARY)} {sub()})"
    if kind == "div":
        return f"({sub()} / {sub()})"
    if kind == "pow0":
        return f"({sub()} ^ {rng.choice(['0', '2', '0.0'])})"
    if kind == "minmax":
        return f"({rng.choice(['min', 'max'])} {sub()} {sub()})"
    if kind == "let":
        v = f"v{depth}"
        return f"(let {v} = {sub()} in {random_expression(rng, scope + [v, v], depth - 1)})"
    return f"(if {sub()} > {sub()} then {sub()} else {sub()})"


def singular_programs(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        point = tuple(rng.choice([0.0, 0.0, 1.0, -1.0, 0.5]) for _ in range(2))
        yield f"def f (x, y) = {random_expression(rng, ['x', 'y'], 4)}\ndef main = grad f {point!r}"


def exact_results(source: str) -> dict:
    program = load_source(source)
    out = {}
    for mode in EXACT_MODES:
        try:
            out[mode] = run_deep(lambda: run_main(program, [], get(mode)))[0]
        except DlError as e:  # a run-time error (none is expected here) must be the same in every mode
            out[mode] = ("error", e.kind)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_at_singular_points_agree_in_every_exact_mode(seed):
    """Random programs with unguarded log, sqrt, division, x^0, relu, min and max, at points where they
    are singular: every exact mode gives the same derivative, nan and infinities included."""
    disagreements = []
    for source in singular_programs(50, seed):
        results = exact_results(source)
        first = results[EXACT_MODES[0]]
        for mode, value in results.items():
            if not same(value, first, rel=1e-9, signed=False):  # (a zero's sign is rounding, like last bits)
                disagreements.append((source, mode, value, first))
                break
    assert not disagreements, disagreements[:3]


def random_tape(rng: random.Random, weights: list, size: int) -> tuple[list, int]:
    """A tape of 1 to 4 sinks and up to `size` records (parent, weight, ...) of 1 to 3 parents each, half
    the weights drawn from `weights`, half uniform in [-1000, 1000]."""
    from lang.back.linear import SINK
    n_sinks = rng.randint(1, 4)
    records = [SINK] * n_sinks
    for _ in range(rng.randint(1, size)):
        parents = rng.sample(range(len(records)), min(len(records), rng.randint(1, 3)))
        rec: tuple = ()
        for p in parents:
            rec += (p, rng.choice(weights) if rng.random() < 0.5 else rng.uniform(-1e3, 1e3))
        records.append(rec)
    return records, n_sinks


def object_sweep(records: list, seeds: list, n_sinks: int) -> list:
    """The factoring sweep with a `Paths` object per contribution (what the backend did before it swept
    sums over paths as floats): the oracle of the two tests below."""
    from lang.back.compiler import Counters
    from lang.back.linear import Factoring
    from lang.model.zeros import ZERO
    objects = Factoring(Counters())
    adj = objects.adj = [None] * len(records)
    for p, v in seeds:
        objects.contribute(p, v)
    objects._sweep(records, adj, n_sinks)
    return [ZERO if g is None else g for g in adj[:n_sinks]]


@pytest.mark.parametrize("seed", range(40))
def test_the_order_free_sweep_on_floats_equals_the_sweep_on_paths_objects(seed):
    """The factoring sweep with `Paths` seeds runs on float totals and kind sets (lang/back/linear.py,
    _sweep_paths): on random tapes with zero, infinite, nan and symbolic-zero weights, merges and
    several seeds, each sink's total and kinds are those of the sweep on `Paths` objects."""
    from lang.back.linear import _sweep_paths
    from lang.model.zeros import ZERO, Paths
    rng = random.Random(seed)
    records, n_sinks = random_tape(rng, [0.0, -0.0, math.inf, -math.inf, math.nan, ZERO, 1e308, -1e308, 0.5], 30)
    seeds = [(rng.randrange(n_sinks, len(records)), Paths.seed(rng.choice([1.0, -2.0, 1e308, math.inf, 0.0])))
             for _ in range(rng.randint(1, 3))]
    got = _sweep_paths(records, seeds, n_sinks)
    assert got is not None
    for e, g in zip(object_sweep(records, seeds, n_sinks), got):
        assert type(e) is type(g)
        if type(e) is Paths:
            assert e.kinds == g.kinds
            assert repr(e.total) == repr(g.total)  # bit for bit, nan and the sign of zero included
            assert repr(e.value()) == repr(g.value())


@pytest.mark.parametrize("seed", range(40))
def test_the_order_free_values_on_finite_tapes_are_the_settled_sums_over_paths(seed):
    """Factoring.paths_values (the order-free pass when its result is settled at once): on tapes whose weights
    are finite — totals that overflow on the way included — each value is what the sweep on `Paths` objects
    settles to, bit for bit; a tape with an infinite weight or a generic body is left to that sweep (None)."""
    from lang.back.compiler import Counters
    from lang.back.linear import GENERIC, Factoring
    from lang.model.zeros import ZERO, Paths, settle
    rng = random.Random(seed)
    records, n_sinks = random_tape(rng, [0.0, -0.0, ZERO, 1e200, -1e200, 1e300], 25)
    seeds = [(len(records) - 1, Paths.seed(rng.choice([1.0, -1e300, 0.0])))]
    backend = Factoring(Counters())
    expected = [settle(g) for g in object_sweep(records, seeds, n_sinks)]
    got = [settle(g) for g in backend.paths_values(records, seeds, n_sinks)]
    assert [repr(g) for g in got] == [repr(e) for e in expected]
    top = [(len(records), Paths.seed(1.0))]  # (the record appended below, reached from its seed)
    assert backend.paths_values(records + [(0, math.inf)], top, n_sinks) is None
    assert backend.paths_values(records + [(len(records) - 1, 2.0, 0, math.nan)], top, n_sinks) is None
    assert backend.paths_values(records + [(GENERIC, None, ())], top, n_sinks) is None
    assert backend.paths_values(records, [(len(records) - 1, Paths.seed(math.inf))], n_sinks) is None
    # a record nothing reaches runs in no sweep: its weight cannot matter
    unreached = [settle(g) for g in backend.paths_values(records + [(0, math.inf)], seeds, n_sinks)]
    assert [repr(g) for g in unreached] == [repr(e) for e in expected]


def random_chain_tape(rng: random.Random, weights: list, size: int) -> tuple[list, int]:
    """A tape as a loop's records: runs of links (a one-parent record on the record just below it, written
    as its weight alone: lang/back/linear.py), records of one to three parents anywhere below, and the odd
    generic body; weights drawn from `weights` or of either sign and a magnitude 10^-3 to 10^30 (a path's
    product overflows after a dozen records or so)."""
    from lang.back.linear import GENERIC, SINK
    n_sinks = rng.randint(1, 3)
    records = [SINK] * n_sinks

    def weight():
        return rng.choice(weights) if rng.random() < 0.05 else rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-3, 30)
    while len(records) < size:
        r = rng.random()
        if r < 0.5 and len(records) > n_sinks:
            records += [weight() for _ in range(rng.choice([1, 3, 8, 20, 70]))]  # a run of links
        elif r < 0.995:
            parents = rng.sample(range(len(records)), min(len(records), rng.randint(1, 3)))
            records.append(tuple(x for p in parents for x in (p, weight())))
        else:
            records.append((GENERIC, None, ()))
    return records, n_sinks


@pytest.mark.parametrize("seed", range(80))
def test_the_order_free_values_checked_as_they_are_swept_are_the_sweep_on_paths_objects(seed):
    """Factoring.paths_values checks each record as it sweeps it (lang/back/linear.py, `_sweep_finite`): on
    tapes of links, runs of links and records of several parents, with zero, signed-zero, symbolic-zero,
    overflowing, infinite and nan weights and generic bodies, what it gives (where it does not decline) is,
    bit for bit, what the sweep on `Paths` objects settles to; and it declines exactly where a record it would
    run is not of finite weights (the sweep with kinds then decides)."""
    from lang.back.compiler import Counters
    from lang.back.linear import GENERIC, Factoring
    from lang.model.zeros import ZERO, Paths, settle
    rng = random.Random(seed)
    bad = [math.inf, -math.inf, math.nan] if seed % 2 else []
    weights = [0.0, -0.0, ZERO, 1e200, -1e200, 1e300, 1e-300] + bad
    records, n_sinks = random_chain_tape(rng, weights, rng.choice([30, 300]))
    seeds = [(len(records) - 1, Paths.seed(rng.choice([1.0, -1e300, 0.0, 3.0])))]
    backend = Factoring(Counters())
    got = backend.paths_values(records, seeds, n_sinks)
    try:
        expected = [settle(g) for g in object_sweep(records, seeds, n_sinks)]
    except AttributeError:  # (a generic record of this test has no body: the sweep on objects cannot run it)
        expected = None
    # which records a sweep runs: those something reaches from the seed
    reached, runs = {seeds[0][0]}, []
    for i in range(len(records) - 1, n_sinks - 1, -1):
        if i in reached:
            rec = records[i] if type(records[i]) is tuple else (i - 1, records[i])
            runs.append(rec)
            if rec[0] is not GENERIC:
                reached.update(rec[0::2])
    clean = all(rec[0] is not GENERIC and all(type(w) is type(ZERO) or math.isfinite(w) for w in rec[1::2])
                for rec in runs)
    assert (got is not None) == clean
    if got is not None:
        assert [repr(settle(g)) for g in got] == [repr(e) for e in expected]


def test_an_overflowing_chain_gives_the_order_free_value_in_every_reverse_variant():
    """The logistic map's derivative overflows by 3000 steps (benchmarks/workloads/w2_logistic.dl): its paths'
    totals meet as inf - inf. backprop (preaccumulated: its order-free pass runs ←D's own term), backprop
    without preaccumulation and forward mode agree on nan, as before the order-free pass ran on floats."""
    from conftest import run_with_machine
    source = ("def logistic (n : Int) (x : Real) = if n == 0 then x else logistic (n - 1) (3.7 * x * (1.0 - x))\n"
              "def main = grad (logistic 3000) 0.3")
    assert math.isnan(run(source, mode="backprop"))
    assert math.isnan(run(source, mode="forward"))
    assert math.isnan(run_with_machine(source, counting=False, preaccumulate=False)[0])
