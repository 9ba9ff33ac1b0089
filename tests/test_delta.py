"""The delta and delta-noshare modes (docs/transforms.md, delta): the transform, the runtime, the counters.

Every expected number here is derived by hand (the derivation is in the
comment or docstring beside it) or computed with Python's math module, never
by running dl. The agreement of both modes with every other mode on the shared
tables, the random programs and the type-check of every prelude and example
definition is in test_modes.py, test_ad_random.py and test_transform_check.py,
which read the mode table.
"""
import math

import pytest

from conftest import ROOT, cli, close, diagnostic, load_source, run, run_with_machine
from lang.back.compiler import Counters
from lang.front.mono import Specializer
from lang.model import core as c
from lang.model.printer import show_term
from lang.model.types import DELTA, REAL, TFun, TList, TTuple, INT
from lang.modes.delta import INPUT, Sharing, Unshared
from lang.modes.table import get
from lang.transforms.delta import d_type, simplify
from lang.transforms.read import parse_target
from lang.tools.repl.core import execute, new_state
from lang.tools.workbench import language, transform_term
from test_complexity import PROGRAMS, primal_of

MODES = ["delta", "delta-noshare"]
SHARING = (ROOT / "examples" / "sharing.dl").read_text()


# ---- the transform ---------------------------------------------------------------------------

# Δ(x * sin x) by the rules: sin x gives (sin x, node (dscale (cos x) x')), the product
# (x1 * x2, node (dadd (dscale x2 x1') (dscale x1 x2'))), with node = dshare or dmark.
X_SIN_X = """fun x ->
  let (x1, x1') = x in
  let (x2, x2') = let (x, x') = x in (sin x, {node} (dscale (cos x) x')) in
  (x1 * x2, {node} (dadd (dscale x2 x1') (dscale x1 x2')))"""


@pytest.mark.parametrize("mode,node", [("delta", "dshare"), ("delta-noshare", "dmark")])
def test_transform_prints_the_delta_expression_being_built(mode, node, tmp_dl):
    path = tmp_dl("f.dl", "def f (x : Real) = x * sin x\ndef main = grad f 1.0\n")
    code, out, err = cli("transform", path, "--def", "f", "--mode", mode)
    assert code == 0, err
    assert out.rstrip("\n").split("\n") == [
        f"-- Δ(f) in {mode} mode", "-- source type: Real -> Real",
        "-- target type: Real * Delta -> Real * Delta", *X_SIN_X.format(node=node).split("\n")]


def test_the_type_transform_changes_real_only():
    assert d_type(REAL) == TTuple((REAL, DELTA))
    assert d_type(TFun(TList(REAL), TTuple((REAL, INT)))) == \
        TFun(TList(TTuple((REAL, DELTA))), TTuple((TTuple((REAL, DELTA)), INT)))


def test_constants_and_the_simplified_term():
    """1.0 - x: the constant is (1.0, dzero); the partials are 1 and -1, so the Delta is
    dshare (dadd x1' (dscale (-1.0) x')), and simplified (x1' = dzero) dshare (dscale (-1.0) x')."""
    program = load_source("def g x = 1.0 - x")
    spec = Specializer(program.world)
    e = spec.get(program.module.id, "g", ())
    plain = show_term(transform_term(e, get("delta")))
    assert "let (x1, x1') = (1.0, dzero) in" in plain
    assert plain.endswith("(x1 - x, dshare (dadd x1' (dscale (-1.0) x')))")
    assert show_term(transform_term(e, get("delta"), simplify=True)) == \
        "fun x -> let (x, x') = x in (1.0 - x, dshare (dscale (-1.0) x'))"


@pytest.mark.parametrize("mode", MODES)
def test_printed_terms_read_back(mode):
    text = "def f x = x * sin x\ndef g x = 1.0 - x / (x + 2.0)\ndef h xs = sum (map (fun x -> x * x) xs)"
    program = load_source(text)
    spec = Specializer(program.world)
    module = program.module
    resolve = program.world.resolver({d.name: (d.module, d.name) for d in module.defs}, dict(module.exports))
    lang = language(get(mode), spec)
    for name in ("f", "g", "h"):
        e = spec.get(module.id, name, ())
        for simplified in (False, True):
            term = transform_term(e, get(mode), simplified)
            assert parse_target(show_term(term), resolve, lang.d_type(e.ty), lang) == term, (name, simplified)


def _delta_var(name):
    return c.Var(name, ty=DELTA)


def _prim(op, *args):
    return c.Prim(op, tuple(args), ty=DELTA)


SIMPLIFY = [  # (term, what the rules make of it)
    (_prim("dscale", c.Lit(2.0, ty=REAL), _prim("dzero")), "dzero"),
    (_prim("dscale", c.Lit(1.0, ty=REAL), _delta_var("d")), "d"),
    (_prim("dscale", c.Lit(0.0, ty=REAL), _delta_var("d")), "dscale 0.0 d"),  # a number: 0.0 * inf is nan
    (_prim("dscale", c.Prim("0", (), ty=REAL), _delta_var("d")), "dzero"),  # the symbolic zero
    (_prim("dscale", c.Var("w", ty=REAL), _delta_var("d")), "dscale w d"),
    (_prim("dadd", _prim("dzero"), _delta_var("d")), "d"),
    (_prim("dadd", _delta_var("d"), _prim("dzero")), "d"),
    (_prim("dshare", _prim("dzero")), "dzero"),
    (_prim("dshare", _delta_var("d")), "d"),  # a variable's Delta is zero, an input or shared already
    (_prim("dshare", _prim("dshare", _prim("dadd", _delta_var("a"), _delta_var("b")))), "dshare (dadd a b)"),
    (_prim("dmark", _prim("dadd", _prim("dscale", c.Lit(1.0, ty=REAL), _delta_var("a")), _prim("dzero"))), "a"),
    (_prim("dshare", _prim("dadd", _delta_var("a"), _delta_var("b"))), "dshare (dadd a b)"),
]


@pytest.mark.parametrize("term,expected", SIMPLIFY, ids=[e for _, e in SIMPLIFY])
def test_simplification_rules(term, expected):
    assert show_term(simplify(term)) == expected


def test_a_program_cannot_write_the_target_language(tmp_dl):
    code, _, err = cli("run", tmp_dl("p.dl", "def main = dshare dzero\n"))
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("name", 1, 12)
    assert "unbound name `dshare`" in d["message"]
    code, _, err = cli("run", tmp_dl("q.dl", "def f (x : Delta) = x\ndef main = 1.0\n"))
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("name", 1, 12)


# ---- the backward pass, on Delta data written by hand -------------------------------------------

def test_sharing_sweeps_largest_identity_first():
    """Inputs 0, 1; node 2 = dscale 2 (input 0); node 3 = dadd (dscale 3 node2) (dscale 5 input1);
    node 4 = dadd node3 node3 (node 3 used twice). Seed 1 at node 4: node 3 gets 1 + 1 = 2 (a merge),
    walked once: node 2 gets 6, input 1 gets 10; node 2: input 0 gets 12."""
    counters = Counters()
    records = [INPUT, INPUT, (2.0, 0), ((3.0, 2), (5.0, 1), "+"), (3, 3, "+")]
    for counting in (False, True):
        grad = Sharing(counters, counting).backward(records, [(4, 1.0)], 2)
        assert grad == [12.0, 10.0]
    assert (counters.bp_run, counters.merges, counters.sink_updates) == (3, 1, 2)
    assert counters.extra["delta_nodes"] == 1 + 3 + 1  # node 4's dadd; node 3's dadd and two dscale; node 2's dscale


def test_unshared_walks_a_node_once_per_path():
    """m = dmark (dscale 2 (input 0)), used twice: dmark (dadd m m). Seed 1: the outer mark, then m
    twice, each reaching input 0 with 2: gradient 4, marks and inputs entered 1 + 2 + 2 = 5."""
    counters = Counters()
    m = ((2.0, 0),)
    grad = Unshared(counters, True).backward([INPUT], [(((m, m, "+"),), 1.0)], 1)
    assert grad == [4.0]
    assert (counters.bp_run, counters.sink_updates, counters.merges) == (5, 2, 0)
    assert counters.extra["delta_nodes"] == 1 + 2  # the dadd, and m's dscale twice


# ---- exact counters on small sizes ------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 5, 10])
def test_delta_counters_on_repeated_squaring(n):
    """sharing.dl: y(k+1) = y(k) * y(k), n times. Each step shares one node, dadd (dscale y y') (dscale y y'),
    whose body sends two contributions to the node below (one merge each, the input's included): n nodes
    made and walked, n merges, 2 sink updates, 3 Delta nodes per body. Primitives: n == 0, n - 1, x * x
    per step, the last n == 0, and grad itself (the partials are variables): 3n + 2."""
    value, m = run_with_machine(SHARING, "delta", [str(n)])
    assert close(value, 2 ** n * 1.0000001 ** (2 ** n - 1), rel=1e-12)
    k = m.counters
    assert (k.prims, k.bp_created, k.bp_run, k.merges) == (3 * n + 2, n, n, n)
    assert (k.sink_updates, k.peak_pending) == ((2, 1) if n else (0, 0))
    assert k.extra.get("delta_nodes", 0) == 3 * n


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10])
def test_noshare_counters_on_repeated_squaring(n):
    """The node of step k is entered once per path from the output: 2^(n-k) times, and the input 2^n
    times: 2^(n+1) - 1 entries (backprop-naive's count), 2^n sink updates, 3 (2^n - 1) Delta nodes."""
    value, m = run_with_machine(SHARING, "delta-noshare", [str(n)])
    assert close(value, 2 ** n * 1.0000001 ** (2 ** n - 1), rel=1e-12)
    k = m.counters
    assert (k.prims, k.bp_created, k.bp_run, k.merges, k.peak_pending) == (3 * n + 2, n, 2 ** (n + 1) - 1, 0, 0)
    assert k.sink_updates == 2 ** n
    assert k.extra.get("delta_nodes", 0) == 3 * (2 ** n - 1)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_counters_on_the_logistic_map(n):
    """3.7 * x * (1.0 - x) per step: three nodes, dscale 3.7 x', dscale (-1.0) x' and the product's
    dadd of two dscale (5 Delta nodes); x' receives two contributions (one merge). Without sharing, the
    step-k node is entered 2^(n-k) times and enters its two factors' nodes each time:
    3 (2^n - 1) + 2^n (the input) = 4 2^n - 3 entries, 5 (2^n - 1) Delta nodes."""
    program = PROGRAMS["logistic"]
    _, m = run_with_machine(program, "delta", [str(n)])
    k = m.counters
    assert (k.bp_created, k.bp_run, k.merges, k.sink_updates) == (3 * n, 3 * n, n, 2)
    assert k.extra["delta_nodes"] == 5 * n
    _, m = run_with_machine(program, "delta-noshare", [str(n)])
    k = m.counters
    assert (k.bp_created, k.bp_run, k.sink_updates) == (3 * n, 4 * 2 ** n - 3, 2 ** n)
    assert k.extra["delta_nodes"] == 5 * (2 ** n - 1)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_gradient_cost_is_a_bounded_multiple_of_the_primal(name):
    """The paper's claim: forward and backward work, Delta nodes walked included, a constant multiple
    of the primal's, the same constant at every size."""
    sizes = [10, 100, 1000] if name != "mlp_loss" else [4, 16, 64]
    ratios = []
    for n in sizes:
        _, grad = run_with_machine(PROGRAMS[name], "delta", [str(n)])
        _, primal = run_with_machine(primal_of(PROGRAMS[name]), "delta", [str(n)])
        k, p = grad.counters, primal.counters
        assert k.bp_run <= k.bp_created
        ratios.append((k.prims + k.betas + k.bp_run + k.extra["delta_nodes"]) / (p.prims + p.betas))
    assert max(ratios) < 10, ratios
    assert max(ratios) / min(ratios) < 1.5, ratios


# ---- function values, nesting, deep programs ---------------------------------------------------

FUNCTIONS = [  # every kind of function value grad can be given, with its derivative by hand
    ("grad sin 1.0", math.cos(1.0)),                                         # a primitive
    ("grad (pow 2.0) 3.0", 2.0 ** 3.0 * math.log(2.0)),                      # a primitive, partially applied
    ("grad sum [1.0, 2.0, 3.0]", [1.0, 1.0, 1.0]),                           # a prelude function
    ("let c = 2.5 in grad (fun x -> c * sin x) 0.3", 2.5 * math.cos(0.3)),   # a closure over a real
    ("grad (f 2.0) 1.5", 2.0 * 2 * 1.5),                                     # a global, partially applied
    ("grad (compose exp sin) 0.2", math.exp(math.sin(0.2)) * math.cos(0.2)),  # a closure made by a global
    ("grad ((*) 3.0) 2.0", 3.0),                                             # an operator section
    ("grad (fun x -> let rec p n = if n == 0 then 1.0 else x * p (n - 1) in p 5) 2.0", 5 * 2.0 ** 4),
    ("let (y, pb) = vjp (fun x -> (x * x, [x, sin x])) 2.0 in (y, pb (1.0, [1.0, 2.0]))",
     ((4.0, [2.0, math.sin(2.0)]), 2 * 2.0 + 1.0 + 2.0 * math.cos(2.0))),
    ("value_and_grad (fun (x, n) -> x * float n) (2.0, 3)", (6.0, (3.0, 0))),
]
DEFS = "def f a x = a * x * x\ndef compose g h x = g (h x)\n"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expr,expected", FUNCTIONS, ids=[e for e, _ in FUNCTIONS])
def test_grad_of_every_kind_of_function_value(expr, expected, mode):
    assert close(run(DEFS + f"def main = {expr}", mode), expected, rel=1e-12)


NESTED = [  # derivatives inside functions being differentiated, by hand
    ("grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0", 2.0),                    # d/dx 2xy at y = 1
    ("grad (fun x -> x * grad (fun y -> x + y) 1.0) 1.0", 1.0),                    # no perturbation confusion
    ("grad (fun x -> derivative (fun y -> sin (x * y)) 2.0) 0.5",                   # d/dx x cos 2x
     math.cos(1.0) - 2 * 0.5 * math.sin(1.0)),
    ("grad (fun x -> grad (fun y -> grad (fun z -> x * y * z * z) 1.0) 2.0) 3.0", 2.0),
    ("grad (fun x -> let (v, pb) = vjp (fun y -> sin (x * y)) 2.0 in v + pb 1.0) 0.5",  # sin 2x + x cos 2x
     3 * math.cos(1.0) - 2 * 0.5 * math.sin(1.0)),
    # the prelude's hessian (a jvp of grad) inside a grad: Δ over two forward levels;
    # H = 6 x v at v = x, and d/dx 6 x^2 = 12 x
    ("grad (fun x -> get (get (hessian (fun v -> x * get v 0 * get v 0 * get v 0) [x]) 0) 0) 1.5", 12 * 1.5),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expr,expected", NESTED, ids=[e for e, _ in NESTED])
def test_nested_differentiation_is_right(expr, expected, mode, tmp_dl):
    assert close(run(f"def main = {expr}", mode), expected, rel=1e-12)
    code, out, err = cli("--debug", "run", tmp_dl("n.dl", f"def main = {expr}\n"), "--mode", mode)
    assert code == 0, err  # --debug: every transformed term, at every depth, type-checked before it ran


@pytest.mark.parametrize("mode", MODES)
def test_a_pullback_inside_a_differentiated_function_is_refused_by_name(mode, tmp_dl):
    path = tmp_dl("pb.dl", "def main = let (y, pb) = vjp sin 1.0 in grad (fun x -> x * pb 1.0) 2.0\n")
    code, _, err = cli("run", path, "--mode", mode)
    d = diagnostic(err)
    assert code == 1 and (d["kind"], d["line"], d["col"]) == ("runtime", 1, 41)
    assert d["message"].startswith("nested differentiation") and mode in d["message"]


@pytest.mark.parametrize("mode", MODES)
def test_a_deep_chain_needs_no_deep_stack(mode):
    """x added 100000 times: a Delta chain 100000 deep (delta-noshare walks it as one tree)."""
    text = "def main = grad (fun x -> fold (fun acc _ -> acc + x) 0.0 (range 100000)) 1.0"
    assert run(text, mode) == 100000.0


# ---- the tools ---------------------------------------------------------------------------------

def test_repl_mode_transform_and_cost():
    state = new_state()
    for line in ("def f x = x * sin x", ":mode delta"):
        state, out = execute(state, line)
        assert not out.error, out.text
    state, out = execute(state, ":transform f")
    assert out.text.split("\n")[3:] == X_SIN_X.format(node="dshare").split("\n")
    state, out = execute(state, ":cost grad f 1.0")
    lines = out.text.split("\n")
    assert close(float(lines[0].split(" : ")[0]), math.sin(1.0) + math.cos(1.0), rel=1e-12)
    assert lines[1] == "cost (delta mode)"
    # two nodes (sin x, the product), each walked once; the input gets two contributions (one merge)
    counts = {ln.rsplit(None, 1)[0].strip(): int(ln.rsplit(None, 1)[1]) for ln in lines[2:]}
    assert counts["backpropagators created"] == 2 and counts["backpropagator bodies run"] == 2
    assert counts["factoring merges"] == 1 and counts["sink updates"] == 2
    assert counts["delta_nodes"] == 1 + 3  # dscale (cos x) x'; the product's dadd and two dscale


def test_compare_growth_exponents_on_sharing():
    from lang.tools.compare import compare
    from lang.tools.pipeline import main_call
    program = load_source(SHARING)
    report = compare(program.world, lambda n: main_call(program, [str(n)]), [4, 8, 12],
                     [get("backprop"), get("delta"), get("delta-noshare")], budget=60)
    assert all(r.status == "ok" for r in report.rows)
    assert all(r.error is not None and r.error < 1e-12 for r in report.rows)
    bp = {(r.mode, r.n): r.metrics["bp_apps"] for r in report.rows}
    assert [bp[("delta", n)] for n in (4, 8, 12)] == [4, 8, 12]
    assert [bp[("delta-noshare", n)] for n in (4, 8, 12)] == [31, 511, 8191]
    assert 0.99 <= report.exponents["delta"]["bp_apps"] <= 1.01
    assert report.exponents["delta-noshare"]["bp_apps"] > 4
