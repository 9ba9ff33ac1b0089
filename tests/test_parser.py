"""The surface syntax (docs/reference.md, sections 1-3): source text -> syntax tree, as tables; and the printer round trip.

Syntax nodes compare without their spans, so the expected trees below are
written without positions. The last part is a hypothesis property: random
core terms, printed by `lang.model.printer.show_term`, parse and desugar back to
the same term.
"""
from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lang.model import core as c
from lang.model import syntax as s
from lang.front.desugar import Desugarer, Fresh, names_in
from lang.model.errors import DlSyntaxError
from lang.front.parser import parse_expr, parse_program, parse_type
from lang.model.primitives import OPERATOR_NAMES, PRIMITIVES
from lang.model.printer import show_term
from lang.model.spans import Source


def parse(text: str) -> s.Expr:
    return parse_expr(Source("<test>", text))


# ---- tiny constructors, so the tables read like the trees they are ----------

def N(name):
    return s.Name(name)


def I(v):  # noqa: E743 — an integer literal
    return s.IntLit(v)


def R(v):
    return s.RealLit(v)


def Op(op, a, b):
    return s.BinOp(op, a, b)


def Ap(f, *args):
    for a in args:
        f = s.Apply(f, a)
    return f


def Fun(params, body):
    return s.Lambda(tuple(params), body)


def P(name):
    return s.PName(name)


a, b, c_, f, g, x, y = N("a"), N("b"), N("c"), N("f"), N("g"), N("x"), N("y")
REAL, INT = s.TyName("Real"), s.TyName("Int")

# ---- operators: precedence and associativity (docs/reference.md, Precedence) -

PRECEDENCE = [
    # left associative
    ("a - b - c", Op("-", Op("-", a, b), c_)),
    ("a / b / c", Op("/", Op("/", a, b), c_)),
    ("a + b - c", Op("-", Op("+", a, b), c_)),
    ("x |> f |> g", Op("|>", Op("|>", x, f), g)),
    # right associative
    ("2 ^ 3 ^ 2", Op("^", I(2), Op("^", I(3), I(2)))),
    ("a :: b :: c", Op("::", a, Op("::", b, c_))),
    ("a ++ b ++ c", Op("++", a, Op("++", b, c_))),
    ("a :: b ++ c", Op("::", a, Op("++", b, c_))),
    ("a ++ b :: c", Op("++", a, Op("::", b, c_))),
    ("a || b || c", Op("||", a, Op("||", b, c_))),
    ("a && b && c", Op("&&", a, Op("&&", b, c_))),
    # levels, lowest first: |>, ||, &&, comparisons, :: ++, + -, * /, unary -, ^, application
    ("a || b && c", Op("||", a, Op("&&", b, c_))),
    ("a && b || c", Op("||", Op("&&", a, b), c_)),
    ("a && b == c", Op("&&", a, Op("==", b, c_))),
    ("a < b || c", Op("||", Op("<", a, b), c_)),
    ("a :: b == c", Op("==", Op("::", a, b), c_)),
    ("a + b :: c", Op("::", Op("+", a, b), c_)),
    ("a + b * c", Op("+", a, Op("*", b, c_))),
    ("a * b + c", Op("+", Op("*", a, b), c_)),
    ("-x ^ 2", s.Neg(Op("^", x, I(2)))),
    ("-2 ^ 2", s.Neg(Op("^", I(2), I(2)))),
    ("-x * y", Op("*", s.Neg(x), y)),
    ("- -x", s.Neg(s.Neg(x))),
    ("a * -b", Op("*", a, s.Neg(b))),
    ("1 - -1", Op("-", I(1), s.Neg(I(1)))),
    ("a ^ -b", Op("^", a, s.Neg(b))),
    ("f x ^ 2", Op("^", Ap(f, x), I(2))),
    ("f x * g y", Op("*", Ap(f, x), Ap(g, y))),
    ("f x y", Ap(f, x, y)),
    ("f (g x)", Ap(f, Ap(g, x))),
    ("f -x", Op("-", f, x)),  # binary minus, as in Haskell: write f (-x)
    ("f (-x)", Ap(f, s.Neg(x))),
    ("f x |> g", Op("|>", Ap(f, x), g)),
    ("x |> f a", Op("|>", x, Ap(f, a))),
    ("a + b |> f", Op("|>", Op("+", a, b), f)),
    ("a < b", Op("<", a, b)),
    ("a <= b", Op("<=", a, b)),
    ("a > b", Op(">", a, b)),
    ("a >= b", Op(">=", a, b)),
    ("a == b", Op("==", a, b)),
    ("a != b", Op("!=", a, b)),
    ("(a < b) == c", Op("==", Op("<", a, b), c_)),
    # fun / let / if extend as far right as they can, also as a right operand
    ("1 + if c then a else b", Op("+", I(1), s.IfExpr(c_, a, b))),
    ("if c then a else b + 1", s.IfExpr(c_, a, Op("+", b, I(1)))),
    ("if c then a else b |> f", s.IfExpr(c_, a, Op("|>", b, f))),
    ("x * fun y -> y + 1", Op("*", x, Fun([P("y")], Op("+", y, I(1))))),
    ("fun x -> x |> f", Fun([P("x")], Op("|>", x, f))),
    ("a :: let x = b in x", Op("::", a, s.LetFun("x", (), None, b, x))),
    ("-if c then a else b", s.Neg(s.IfExpr(c_, a, b))),
]


@pytest.mark.parametrize("source,tree", PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_precedence_and_associativity(source, tree):
    assert parse(source) == tree


# ---- every other expression form ----------------------------------------------

FORMS = [
    # literals (docs/reference.md, Lexical syntax)
    ("42", I(42)),
    ("4.2", R(4.2)),
    ("1e-3", R(0.001)),
    ("2.5E+4", R(25000.0)),
    ("1E2", R(100.0)),
    ("true", s.BoolLit(True)),
    ("false", s.BoolLit(False)),
    ("()", s.UnitLit()),
    # identifiers, with primes and underscores; keywords inside names are fine
    ("x'", N("x'")),
    ("x''", N("x''")),
    ("_tmp1", N("_tmp1")),
    ("inx", N("inx")),
    ("if'", N("if'")),
    ("then_", N("then_")),
    # parentheses, tuples, lists
    ("(x)", x),
    ("((x))", x),
    ("(1, x)", s.TupleExpr((I(1), x))),
    ("(1, 2, 3)", s.TupleExpr((I(1), I(2), I(3)))),
    ("((1, 2), 3)", s.TupleExpr((s.TupleExpr((I(1), I(2))), I(3)))),
    ("[]", s.ListExpr(())),
    ("[1]", s.ListExpr((I(1),))),
    ("[1, x, f y]", s.ListExpr((I(1), x, Ap(f, y)))),
    ("[[1], []]", s.ListExpr((s.ListExpr((I(1),)), s.ListExpr(())))),
    # annotations (only inside parentheses)
    ("(x : Real)", s.Annot(x, REAL)),
    ("(x : Int -> Real)", s.Annot(x, s.TyFun(INT, REAL))),
    ("(x : Num 'a => 'a)", s.Annot(x, s.TyScheme((("Num", "a"),), s.TyVar("a")))),
    # sections
    ("(+)", s.Section("+")),
    ("(-)", s.Section("-")),
    ("(*)", s.Section("*")),
    ("(^)", s.Section("^")),
    ("(::)", s.Section("::")),
    ("(++)", s.Section("++")),
    ("(<=)", s.Section("<=")),
    ("(&&)", s.Section("&&")),
    ("(|>)", s.Section("|>")),
    ("map (+) xs", Ap(N("map"), s.Section("+"), N("xs"))),
    # lambdas: names, `_`, annotated, unit and tuple parameters; `\` is `fun`
    ("fun x -> x", Fun([P("x")], x)),
    ("\\x -> x", Fun([P("x")], x)),
    ("fun x y -> x", Fun([P("x"), P("y")], x)),
    ("fun _ -> 1", Fun([P("_")], I(1))),
    ("fun () -> 1", Fun([s.PUnit()], I(1))),
    ("fun (x : Real) -> x", Fun([s.PAnnot(P("x"), REAL)], x)),
    ("fun (x, y) -> x", Fun([s.PTuple((P("x"), P("y")))], x)),
    ("fun (x, _) -> x", Fun([s.PTuple((P("x"), P("_")))], x)),
    ("fun ((a, b), c) -> a", Fun([s.PTuple((s.PTuple((P("a"), P("b"))), P("c")))], a)),
    ("fun ((x, y) : Real * Real) -> x",
     Fun([s.PAnnot(s.PTuple((P("x"), P("y"))), s.TyTuple((REAL, REAL)))], x)),
    ("fun (x) -> x", Fun([P("x")], x)),
    ("fun x (y, _) () (z : Int) -> x",
     Fun([P("x"), s.PTuple((P("y"), P("_"))), s.PUnit(), s.PAnnot(P("z"), INT)], x)),
    ("fun x -> fun y -> x", Fun([P("x")], Fun([P("y")], x))),
    # let forms
    ("let x = 1 in x", s.LetFun("x", (), None, I(1), x)),
    ("let f x y = x in f", s.LetFun("f", (P("x"), P("y")), None, x, f)),
    ("let f (x : Real) : Real = x in f", s.LetFun("f", (s.PAnnot(P("x"), REAL),), REAL, x, f)),
    ("let x : Int = 1 in x", s.LetFun("x", (), INT, I(1), x)),
    ("let rec f x = f x in f", s.LetFun("f", (P("x"),), None, Ap(f, x), f, True)),
    ("let (a, b) = x in a", s.LetIn(s.PTuple((P("a"), P("b"))), x, a)),
    ("let (a, (b, c)) = x in a", s.LetIn(s.PTuple((P("a"), s.PTuple((P("b"), P("c"))))), x, a)),
    ("let (a, _) = x in a", s.LetIn(s.PTuple((P("a"), P("_"))), x, a)),
    ("let () = x in 1", s.LetIn(s.PUnit(), x, I(1))),
    ("let (x : Real) = 1 in x", s.LetIn(s.PAnnot(P("x"), REAL), I(1), x)),
    ("let _ = x in 1", s.LetFun("_", (), None, x, I(1))),
    ("let x = 1 in let y = 2 in x", s.LetFun("x", (), None, I(1), s.LetFun("y", (), None, I(2), x))),
    # if
    ("if a then b else c", s.IfExpr(a, b, c_)),
    ("if a then if b then 1 else 2 else 3", s.IfExpr(a, s.IfExpr(b, I(1), I(2)), I(3))),
]


@pytest.mark.parametrize("source,tree", FORMS, ids=[p[0] for p in FORMS])
def test_expression_forms(source, tree):
    assert parse(source) == tree


# ---- comments and layout (docs/reference.md, Lexical syntax) ----------------------

COMMENTS = [
    ("1 -- a comment", I(1)),
    ("1 --+ 2", I(1)),
    ("-- first\n1", I(1)),
    ("{- block -} 1", I(1)),
    ("1 {- block -} + {- and\n another -} 2", Op("+", I(1), I(2))),
    ("{- outer {- nested -} still a comment -} 1", I(1)),
    ("{- {- {- deep -} -} -} x", x),
    ("{- -- a line comment inside a block -} 1", I(1)),
    ("f {--} x", Ap(f, x)),
    ("a\n  +\n  b", Op("+", a, b)),
    ("a\t+\r\nb", Op("+", a, b)),
    ("x-1", Op("-", x, I(1))),
    ("x - -1", Op("-", x, s.Neg(I(1)))),
]


@pytest.mark.parametrize("source,tree", COMMENTS, ids=[p[0] for p in COMMENTS])
def test_comments_and_whitespace(source, tree):
    assert parse(source) == tree


def test_comments_keep_positions():
    """A comment is blanked, not removed: what follows it keeps its line and column."""
    e = parse("{- two\n lines -} x + {- -} y")
    assert (e.right.span.line, e.right.span.col) == (2, 21)
    assert (e.left.span.line, e.left.span.col) == (2, 11)


# ---- programs --------------------------------------------------------------------

def test_program_declarations():
    text = '''import "lib/util.dl"
-- a comment between declarations
def sq x = x * x
def pair (a, b) : Real = a + b
def main = sq 3.0
'''
    prog = parse_program(Source("p.dl", text))
    assert prog.decls == (
        s.Import("lib/util.dl"),
        s.Def("sq", (P("x"),), None, Op("*", x, x)),
        s.Def("pair", (s.PTuple((P("a"), P("b"))),), REAL, Op("+", a, b)),
        s.Def("main", (), None, Ap(N("sq"), R(3.0))),
    )
    assert [(d.span.line, d.span.col) for d in prog.decls] == [(1, 1), (3, 1), (4, 1), (5, 1)]
    assert (prog.decls[1].name_span.line, prog.decls[1].name_span.col) == (3, 5)


def test_empty_program():
    assert parse_program(Source("e.dl", "")).decls == ()
    assert parse_program(Source("e.dl", "-- nothing\n{- at all -}\n")).decls == ()


# ---- types ---------------------------------------------------------------------

TYPES = [
    ("Real", REAL),
    ("'a", s.TyVar("a")),
    ("[Real]", s.TyList(REAL)),
    ("()", s.TyName("Unit")),
    ("Real -> Real -> Real", s.TyFun(REAL, s.TyFun(REAL, REAL))),
    ("(Real -> Real) -> Real", s.TyFun(s.TyFun(REAL, REAL), REAL)),
    ("Real * Int -> Bool", s.TyFun(s.TyTuple((REAL, INT)), s.TyName("Bool"))),
    ("Real * (Int * Bool)", s.TyTuple((REAL, s.TyTuple((INT, s.TyName("Bool")))))),
    ("[Real * Int]", s.TyList(s.TyTuple((REAL, INT)))),
    ("Num 'a => 'a -> 'a", s.TyScheme((("Num", "a"),), s.TyFun(s.TyVar("a"), s.TyVar("a")))),
    ("(Num 'a, Eq 'b) => 'a * 'b",
     s.TyScheme((("Num", "a"), ("Eq", "b")), s.TyTuple((s.TyVar("a"), s.TyVar("b"))))),
]


@pytest.mark.parametrize("source,tree", TYPES, ids=[t[0] for t in TYPES])
def test_types(source, tree):
    assert parse_type(Source("<type>", source)) == tree


# ---- syntax errors: position and words -------------------------------------------
# (the full diagnostic format is checked in test_errors.py)

SYNTAX_ERRORS = [
    # source, (line, col), words the message must contain
    ("a < b < c", (1, 7), "comparisons do not chain"),
    ("a == b == c", (1, 8), "comparisons do not chain"),
    ("a < b > c", (1, 7), "comparisons do not chain"),
    ("1 < 2 + 3 <= 4", (1, 11), "comparisons do not chain"),
    ("if 1 < 2 < 3 then 1 else 2", (1, 10), "comparisons do not chain"),
    ("1 +", (1, 3), "expected an expression after '+'"),
    ("(1 + 2", (1, 6), "expected ')'"),
    ("[1, 2", (1, 5), "expected ',' or ']'"),
    ("f (,)", (1, 4), "unexpected ','"),
    ("fun -> 1", (1, 5), "unexpected '->'"),
    ("fun x => 1", (1, 7), "unexpected '=>'"),
    ("let x = 1 x", (1, 11), "expected 'in'"),
    ("if x then y", (1, 11), "expected 'else'"),
    ("x = 3", (1, 3), "to compare, write `==`"),
    ("x : Real", (1, 3), "a type annotation goes in parentheses"),
    ("(+ 1)", (1, 4), "an operator section has no operand"),
    ("1.", (1, 2), "write `1.0`"),
    (".5", (1, 1), "write `0.5`"),
    ("x.y", (1, 2), "unexpected character '.'"),
    ("a -} b", (1, 3), "no `{-` is open"),
    ("{- never closed", (1, 1), "unterminated block comment"),
    ("{- {- once -} twice", (1, 1), "unterminated block comment"),
    ('"abc', (1, 1), "a string must end on the line"),
    ('fun "abc" -> 1', (1, 5), 'unexpected string "abc"'),  # a string is an expression (a data path), not a pattern
    ("'a", (1, 1), "unexpected type variable 'a"),
    ("x 'a", (1, 3), "unexpected type variable 'a"),
    ("then", (1, 1), "unexpected keyword 'then'"),
    ("f else", (1, 3), "unexpected keyword 'else'"),
    ("[import]", (1, 2), "unexpected keyword 'import'"),
    ("let in = 1 in 2", (1, 5), "unexpected keyword 'in'"),
    ("fun in -> 1", (1, 5), "unexpected keyword 'in'"),
    ("let rec f = 1 in f", (1, 11), "unexpected '='"),
    ("λ", (1, 1), "unexpected character 'λ'"),
    ("a ++ ++ b", (1, 6), "expected an expression after '++'"),
]


@pytest.mark.parametrize("source,where,words", SYNTAX_ERRORS, ids=[e[0] for e in SYNTAX_ERRORS])
def test_syntax_errors(source, where, words):
    with pytest.raises(DlSyntaxError) as info:
        parse_program(Source("t.dl", "def main =\n" + source))
    err = info.value
    assert words in err.message
    assert (err.span.line - 1, err.span.col) == where


PROGRAM_ERRORS = [
    ("def = 1", (1, 5), "expected a name after 'def'"),
    ("def in = 1", (1, 5), "unexpected keyword 'in': expected a name"),
    ("def f x = x\ndef", (2, 3), "expected a name after 'def'"),
    ("main = 1", (1, 1), "unexpected 'main'"),
    ("import nope.dl", (1, 8), 'expected a file name in quotes ("file.dl")'),
    ("def main = (fun x -> x) : Int", (1, 25), "a type annotation goes in parentheses"),
    ("def f x x' = 1 +", (1, 16), "expected an expression after '+'"),
]


@pytest.mark.parametrize("source,where,words", PROGRAM_ERRORS, ids=[e[0] for e in PROGRAM_ERRORS])
def test_program_syntax_errors(source, where, words):
    with pytest.raises(DlSyntaxError) as info:
        parse_program(Source("t.dl", source))
    assert words in info.value.message
    assert (info.value.span.line, info.value.span.col) == where


TERMINAL_NAMES = re.compile(r"\b(RPAR|LPAR|LSQB|RSQB|NAME|INT|REAL|CMP|PLUS|MINUS|STAR|SLASH|CARET|COMMA|COLON|"
                            r"EQUAL|PIPE|CONS|APPEND|TVAR|STRING|__ANON_\d+|\$END)\b")


@given(st.lists(st.sampled_from(["def", "main", "x", "=", "(", ")", "[", "]", ",", "+", "-", "*", "::", "|>", "<",
                                 "fun", "->", "\\", "let", "rec", "in", "if", "then", "else", "import", '"a.dl"', "1",
                                 "2.5", "true", ":", "Real", "'a", "=>", "_", "@", "~", "-o", ";", "."]),
                min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_syntax_error_messages_are_in_words(tokens):
    """Whatever the input, a syntax error says what it found and expected in words, never Lark's terminal names,
    nor the target language's `-o`, `~` or `@` as something a program could contain."""
    text = "def main = " + " ".join(tokens)
    try:
        parse_program(Source("t.dl", text))
    except DlSyntaxError as e:
        assert not TERMINAL_NAMES.search(e.message), e.message
        expected = re.search(r"\bexpected (.*?)(?: after '[^']*')?(?: \(.*\))?$", e.message)
        if expected:
            assert not re.search(r"'(-o|~|@)'", expected.group(1)), e.message
        assert e.span.source is not None and e.span.line >= 1 and e.span.col >= 1


# ---- the printer round trip ----------------------------------------------------------------
#
# Random core terms of the source language print (lang/printer.py) as text that
# parses and desugars back to the same term. Variables are locals of the
# desugarer's scope; a few names are top-level definitions of a module "m".

VARS = ["x", "y", "acc", "x'", "f2"]
GLOBALS = ["sq", "loss"]
UNARY = ["exp", "fst", "length", "head", "not", "float"]
BINARY_NAMED = ["map", "pow", "get", "max"]
OPERATORS = ["+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">=", "::", "++"]

_names = st.sampled_from(VARS)
_literals = st.one_of(
    st.integers(-10**12, 10**12).map(c.Lit),
    st.floats(allow_nan=False, allow_infinity=False).map(c.Lit),
    st.booleans().map(c.Lit),
    st.just(c.Lit(())),
)
_types = st.recursive(
    st.sampled_from([s.TyName("Real"), s.TyName("Int"), s.TyName("Bool"), s.TyVar("a")]),
    lambda t: st.one_of(st.builds(s.TyFun, t, t), st.builds(s.TyList, t),
                        st.lists(t, min_size=2, max_size=3).map(lambda ts: s.TyTuple(tuple(ts)))),
    max_leaves=4,
)


def _extend(sub):
    lam = st.builds(c.Lam, _names, sub)
    return st.one_of(
        lam,
        st.builds(c.App, sub, sub),
        st.builds(c.Let, _names, sub, sub),
        st.builds(lambda n, p, body, rest: c.LetRec(n, c.Lam(p, body), rest), _names, _names, sub, sub),
        st.builds(c.LetTuple, st.lists(_names, min_size=2, max_size=3, unique=True).map(tuple), sub, sub),
        st.builds(c.If, sub, sub, sub),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: c.Tuple(tuple(xs))),
        st.lists(sub, max_size=3).map(lambda xs: c.List(tuple(xs))),
        st.builds(lambda op, l, r: c.Prim(op, (l, r)), st.sampled_from(OPERATORS), sub, sub),
        # `-3` is the literal -3, not neg applied to 3: negation of a literal is not a core term the parser makes
        sub.filter(lambda t: not isinstance(t, c.Lit)).map(lambda t: c.Prim("neg", (t,))),
        st.builds(lambda op, t: c.Prim(op, (t,)), st.sampled_from(UNARY), sub),
        st.builds(lambda op, l, r: c.Prim(op, (l, r)), st.sampled_from(BINARY_NAMED), sub, sub),
        st.builds(lambda t, ty: c.Annot(t, ty), sub, _types),
    )


core_terms = st.recursive(
    st.one_of(_names.map(c.Var), _literals, st.sampled_from(GLOBALS).map(lambda g: c.Global(g, "m")),
              st.just(c.Prim("pi", ()))),
    _extend,
    max_leaves=12,
)


def _nested_same_params(t) -> bool:
    """`fun x -> fun x -> e` prints as `fun x x -> e`, which binds x twice (a known printer limit, below)."""
    if isinstance(t, (c.Lam)) and isinstance(t.body, c.Lam) and t.param == t.body.param:
        return True
    if isinstance(t, c.Lam) and isinstance(t.body, c.Lam):
        params, body = [], t
        while isinstance(body, c.Lam):
            params.append(body.param)
            body = body.body
        if len(set(params)) < len(params):
            return True
    if isinstance(t, (c.Let, c.LetRec)) and isinstance(t.bound, c.Lam) and _nested_same_params(t.bound):
        return True
    return any(_nested_same_params(ch) for ch in c.children(t))


def _resolve(name):
    if name in GLOBALS:
        return c.Global(name, "m")
    if name in PRIMITIVES and name not in OPERATOR_NAMES:
        return PRIMITIVES[name]
    return None


def read_back(text: str) -> c.Expr:
    """Parse and desugar printed text with the generator's variables in scope."""
    desugarer = Desugarer(_resolve, Fresh(names_in(text)), lambda: [])
    return desugarer.expr(parse(text), frozenset(VARS))


def strict(t):
    """A term as nested tuples, with the Python type of every literal (so 2 and 2.0 differ)."""
    if isinstance(t, tuple):
        return tuple(strict(i) for i in t)
    if dataclasses.is_dataclass(t) and not isinstance(t, type):
        out = [type(t).__name__]
        for fld in dataclasses.fields(t):
            if fld.compare:
                out.append(strict(getattr(t, fld.name)))
        return tuple(out)
    if isinstance(t, float):
        return ("float", repr(t))
    return (type(t).__name__, t)


@given(core_terms.filter(lambda t: not _nested_same_params(t)), st.sampled_from([88, 40, 12]))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_printed_terms_parse_back(term, width):
    text = show_term(term, width)
    assert strict(read_back(text)) == strict(term), text


ROUND_TRIP_EXAMPLES = [
    c.Prim("-", (c.Lit(1), c.Lit(-2))),
    c.Prim("^", (c.Lit(-2), c.Lit(2))),
    c.Prim("neg", (c.Prim("^", (c.Var("x"), c.Lit(2))),)),
    c.Prim("^", (c.Prim("neg", (c.Var("x"),)), c.Lit(2))),
    c.Prim("::", (c.Prim("++", (c.Var("x"), c.Var("y"))), c.Var("acc"))),
    c.Prim("<", (c.Prim("<", (c.Var("x"), c.Var("y"))), c.Var("acc"))),
    c.App(c.Prim("fst", (c.Var("x"),)), c.Var("y")),
    c.App(c.Lam("x", c.Var("x")), c.Lit(-1.5e-300)),
    c.If(c.Var("x"), c.Lam("y", c.Var("y")), c.Let("y", c.Lit(1), c.Var("y"))),
    c.Let("f2", c.Lam("x", c.Lam("y", c.Var("x"))), c.App(c.Var("f2"), c.Lit(0.1))),
]


@pytest.mark.parametrize("term", ROUND_TRIP_EXAMPLES, ids=[show_term(t) for t in ROUND_TRIP_EXAMPLES])
def test_printed_examples_parse_back(term):
    assert strict(read_back(show_term(term))) == strict(term)


def test_nested_lambdas_with_one_name_parse_back():
    term = c.Lam("x", c.Lam("x", c.Var("x")))
    assert strict(read_back(show_term(term))) == strict(term)


# ---- the fast parser builds Lark's tree (lang/front/descent.py) ----------------------------------------
#
# Well-formed programs are parsed by a hand-written precedence-climbing parser; Lark, the reference, reads
# what it gives up on. Both must build equal trees with equal spans (spans are left out of ==, so they are
# compared field by field here).

from pathlib import Path  # noqa: E402

from lang.front import descent  # noqa: E402
from lang.front import parser as lark_parser  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _with_spans(x):
    """A tree as nested tuples of (class, fields..., spans...)."""
    if dataclasses.is_dataclass(x):
        return (type(x).__name__,) + tuple(_with_spans(getattr(x, f.name)) for f in dataclasses.fields(x))
    if isinstance(x, tuple):
        return tuple(_with_spans(i) for i in x)
    if hasattr(x, "line") and hasattr(x, "end_col"):  # a Span
        return (x.line, x.col, x.end_line, x.end_col)
    return x


def _both(text: str, start: str = "program"):
    source = Source("<test>", text)
    stripped = lark_parser.strip_comments(source)
    fast = descent.parse(source, stripped, start)
    slow = lark_parser._to_syntax(lark_parser._lark().parse(stripped, start=start), source)
    return _with_spans(fast), _with_spans(slow)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in
                                        [*ROOT.glob("examples/*.dl"), *ROOT.glob("stdlib/*.dl"),
                                         *ROOT.glob("tests/**/*.dl"), *ROOT.glob("benchmarks/**/*.dl")]))
def test_the_fast_parser_builds_larks_tree_for_every_program_here(path):
    fast, slow = _both((ROOT / path).read_text(encoding="utf-8"))
    assert fast == slow


FAST_CASES = [
    "def main = 1 + 2 * 3 - 4 / 5 ^ 2 ^ 3", "def f (a, (b, c)) (d : Real) () = a", "def main = -x ^ 2 - -y",
    "def main = a :: b :: c ++ d", "def main = a |> f |> g", "def main = a || b && c || d",
    "def main = a < b && c >= d", "def main = 1 + if c then a else b + 2", "def main = f (fun x -> x) [1, 2]",
    "def main = (+) 1 ((::) 1 [])", "def main = (x : Num 'a => 'a)", "def f : (Num 'a, Ord 'a) => 'a -> [Real * Int] -> () = x",
    "def main = let (a, b) = p in let rec f n = f n in let g (x : Real) : Real = x in let () = u in (a, b)",
    "def main =\n  let x = 1 in\n    \\y z -> x   -- comment\n{- block -} def g = (1.5e-3, 2e10, ((1)))",
    "import \"a.dl\"\ndef main = f x (g y) (-1) - 1", "def main = [[], [()], [(1, 2)]]", "",
    "def main = a * fun x -> x + 1", "def main = - fun x -> x", "def main = 2 ^ let x = 1 in x", "def main = x' _ f_1",
]


@pytest.mark.parametrize("text", FAST_CASES)
def test_the_fast_parser_builds_larks_tree(text):
    fast, slow = _both(text)
    assert fast == slow


@pytest.mark.parametrize("text", ["def main = a < b < c", "def main = f@Real", "def main = fun a -o x", "def main = 1 +",
                                  "def main = [1..2]", "def f = let rec g = 1 in g", "def main = (Num 'a) 1"])
def test_the_fast_parser_leaves_errors_and_the_target_language_to_lark(text):
    source = Source("<test>", text)
    with pytest.raises(descent.Bail):
        descent.parse(source, lark_parser.strip_comments(source), "program")


@given(core_terms.filter(lambda t: not _nested_same_params(t)), st.sampled_from([88, 12]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_parser_builds_larks_tree_for_printed_terms(term, width):
    text = show_term(term, width=width)
    source = Source("<test>", text)
    stripped = lark_parser.strip_comments(source)
    slow = _with_spans(lark_parser._to_syntax(lark_parser._lark().parse(stripped, start="target_term"), source))
    try:
        fast = _with_spans(descent.parse(source, stripped, "target_term"))
    except descent.Bail:
        return  # (a printed term may use the target language: Lark's)
    assert fast == slow
