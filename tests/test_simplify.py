"""The simplifier and the layout of printed terms (items 10 and 18 of "First contact").

`dl transform --simplify` folds constants, drops what a zero by
construction multiplies, floats nested lets outward and takes a variable
apart once — equations of the target language that keep every result
(docs/transforms.md, Simplification). The evaluator runs the simplified term,
so the results with and without it are compared bit for bit, at singular
points too. Printed terms are laid out to a width (lang/model/printer.py).
"""
import glob

from conftest import ROOT, TRANSFORM_MODES, cli, get, load_source, refuses_custom_rule, run
from test_transform_check import uses_arrays
from test_zeros import SINGULAR, ZEROS, same
from lang.back import languages
from lang.back.deep import run_deep
from lang.front.mono import Specializer
from lang.model import core as c
from lang.model.errors import DlRuntimeError
from lang.model.printer import show_term
from lang.transforms.common import TermTransform
from lang.tools.workbench import default_instance, transform_term

FOLD = "def f xs = fold (fun acc x -> acc + sin x * x) 0.0 xs\n"


def shown(tmp_dl, source: str, name: str, *flags: str) -> str:
    code, out, err = cli("transform", tmp_dl("t.dl", source), "--def", name, *flags)
    assert code == 0, err
    return out.split("\n", 3)[3].rstrip("\n")  # the term, after the three header lines


def test_the_fold_reads_top_to_bottom(tmp_dl):
    assert shown(tmp_dl, FOLD, "f", "--simplify") == """\
fun xs ->
  fold
    (fun acc x ->
       let (acc, acc') = acc in
       let (x, x') = x in
       let x1 = sin x in
       let x2 = x1 * x in
       (acc + x2, fun a -o acc' a + x' ((cos x * x + x1) * a)))
    (0.0, fun a -o 0)
    xs"""
    assert shown(tmp_dl, FOLD, "f", "--simplify", "--mode", "forward") == """\
fun xs ->
  fold
    (fun acc x ->
       let (acc, acc_dot) = acc in
       let (x, x_dot) = x in
       let (x1, x1_dot) = (sin x, cos x * x_dot) in
       let (x2, x2_dot) = (x1 * x, x * x1_dot + x1 * x_dot) in
       (acc + x2, acc_dot + x2_dot))
    (0.0, 0)
    xs"""


def test_constants_fold_and_dead_zero_backpropagators_go(tmp_dl):
    source = "def p x3 = x3 ^ 2.0\ndef mean xs = sum xs / float (length xs)\n"
    # the partial `if 2.0 == 0.0 then 0 else 2.0 * x3 ^ (2.0 - 1.0)` computed as far as it goes
    assert shown(tmp_dl, source, "p", "--simplify") == \
        "fun x3 -> let (x3, x3') = x3 in let r2 = x3 ^ 2.0 in (r2, fun a -o x3' (2.0 * x3 * a))"
    # float (length xs) keeps its let; its zero backpropagator is substituted and its call disappears
    assert shown(tmp_dl, source, "mean", "--simplify") == """\
fun xs ->
  let (x1, x1') = sum@Real xs in
  let x2 = float (length xs) in
  let r3 = x1 / x2 in
  (r3, fun a -o x1' (1.0 / x2 * a))"""


def test_a_zero_the_program_wrote_is_not_dropped(tmp_dl):
    """`0.0 * a` stays: the backpropagator it reaches may multiply it by an infinity (nan, not 0)."""
    term = shown(tmp_dl, "def f x = sqrt x * 0.0", "f", "--simplify")
    assert "0.0 * a" in term


def test_a_partial_zero_on_a_branch_is_an_if(tmp_dl):
    """min's partials are 1/0 off a tie and 0.5/0.5 at one (docs/reference.md, Conventions): the zero partial of
    each branch is dropped, not multiplied."""
    term = shown(tmp_dl, "def g x y = min x y", "g", "--simplify")
    assert "fun a -o\n     if x < y then x' a else if x == y then x' (0.5 * a) + y' (0.5 * a) else y' a" in term
    assert "(min x y,\n   if x < y then x_dot else if x == y then 0.5 * x_dot + 0.5 * y_dot else y_dot)" in \
        shown(tmp_dl, "def g x y = min x y", "g", "--simplify", "--mode", "forward")


def definitions():
    """Every definition of the prelude and of the examples, at its Real instance."""
    out = []
    prelude = load_source("def main = 1.0")
    out += [(prelude, d) for d in prelude.world.modules["prelude"].defs]
    for path in sorted(glob.glob(str(ROOT / "examples" / "*.dl"))):
        with open(path, encoding="utf-8") as f:
            program = load_source(f.read(), name=path)
        out += [(program, d) for d in program.module.defs]
    return out


def _nested_let(e: c.Expr) -> bool:
    if isinstance(e, (c.Let, c.LetTuple)) and isinstance(e.bound, (c.Let, c.LetTuple, c.LetRec)) \
            and not getattr(e.bound, "inst", ()):
        return True
    return any(_nested_let(t) for t in c.children(e))


def _unfolded(e: c.Expr) -> bool:
    match e:
        case c.If(c.Lit(v)) if isinstance(v, bool):
            return True
    return any(_unfolded(t) for t in c.children(e))


def test_every_simplified_definition_is_flat_folded_and_fits():
    """No let is bound to a let, no `if` tests a literal, and every line fits in 88 columns."""
    def go():
        for program, d in definitions():
            e = Specializer(program.world).get(d.module, d.name, default_instance(d.scheme))
            for mode in TRANSFORM_MODES:
                if refuses_custom_rule(mode, e):
                    continue
                try:
                    term = transform_term(e, get(mode), simplify=True)
                except DlRuntimeError as err:  # a transform without array rules (delta) refuses arrays
                    assert "arrays yet" in err.message and uses_arrays(e), (d.name, mode)
                    continue
                assert not _nested_let(term), (d.name, mode)
                assert not _unfolded(term), (d.name, mode)
                for simplify in (False, True):
                    text = show_term(transform_term(e, get(mode), simplify))
                    assert max(len(line) for line in text.split("\n")) <= 88, (d.name, mode, simplify)
    run_deep(go)


PROGRAMS = [f"def main = {s}" for s, _ in ZEROS + SINGULAR] + [
    FOLD + "def main = grad f [0.1, 0.2, 0.3]",
    "def main = grad (fun x -> derivative (fun y -> x * y ^ 2.0) x) 1.5",
    "def main = grad (fun (x, n) -> x ^ 3.0 + float n * x) (2.0, 4)",
    "def main = jvp (fun xs -> map (fun x -> relu x * max x 0.5) xs) [1.0, -2.0] [1.0, 1.0]",
]


def test_the_simplifier_changes_no_result(monkeypatch):
    """Bit for bit (nan, infinities and signed zeros included): each program in backprop and forward mode,
    with the simplified terms the evaluator runs and with the transforms' raw output."""
    raw = {}
    with monkeypatch.context() as m:
        for name in ("BACKPROP", "FORWARD"):
            t = getattr(languages, name)
            m.setattr(languages, name, TermTransform(t.symbol, t.term, t.type, lambda e: e))
        for p in PROGRAMS:
            for mode in ("backprop", "forward"):
                raw[(p, mode)] = run(p, mode=mode)
    for (p, mode), value in raw.items():
        simplified = run(p, mode=mode)
        assert same(simplified, value, rel=0.0), (p, mode, simplified, value)


def test_simplification_stops_at_a_fixed_point():
    """simplify stops after a pass whose rules changed nothing (floating is idempotent, so one more pass
    would change nothing): simplifying its result again changes nothing, for every definition in every mode
    whose simplification is lang/transforms/simplify.py's (chad's own is not idempotent: its `mean`)."""
    from lang.transforms import simplify as simplify_module
    modes = [m for m in TRANSFORM_MODES if get(m).load_transform().simplify is simplify_module.simplify]
    assert {"backprop-naive", "forward"} <= set(modes)

    def go():
        for program, d in definitions():
            e = Specializer(program.world).get(d.module, d.name, default_instance(d.scheme))
            for mode in modes:
                if refuses_custom_rule(mode, e):
                    continue
                transform = get(mode).load_transform()
                try:
                    once = transform.simplify(transform.term(e))
                except DlRuntimeError:
                    continue  # (arrays in delta: above)
                assert transform.simplify(once) == once, (d.name, mode)
    run_deep(go)


def test_a_chain_the_rules_leave_alone_takes_one_pass(monkeypatch):
    """sin (sin (... x)): floating flattens ←D's term and no rule applies after it, so the rules run once
    (a second, confirming pass cost as much as the first: issue 19)."""
    from lang.transforms import simplify as simplify_module
    passes = []
    term = simplify_module.Simplifier.term

    def counted(self, e):
        if not passes or passes[-1] is not self:
            passes.append(self)
        return term(self, e)
    monkeypatch.setattr(simplify_module.Simplifier, "term", counted)
    program = load_source("def f x = " + "sin (" * 50 + "x" + ")" * 50 + "\n")
    d = next(x for x in program.module.defs if x.name == "f")
    e = Specializer(program.world).get(d.module, d.name, default_instance(d.scheme))
    run_deep(lambda: transform_term(e, get("backprop-naive"), simplify=True))
    assert len(passes) == 1
