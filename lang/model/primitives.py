"""The primitive table: one row per built-in (docs/reference.md §5, §7).

A row says everything any stage needs to know about a primitive: its type
scheme, what kind of thing it is to the transforms, its implementation (at
Real and, for Num-overloaded operators, at Int), its partial derivatives as
core terms, and its cost class. No stage tests a primitive's name: they read
its row, and a row that lacks what a stage needs is an error naming it.

Partial derivatives are written as functions from the argument terms and the
result term to one term per argument (docs/transforms.md, backprop: On terms):

    "*":   lambda x, y, r: [y, x]          x * y  ->  (x*y, fun a -o x' (y * a) + y' (x * a))
    "exp": lambda x, r: [r]                exp x  ->  (r, fun a -o x' (r * a))

Conventions where a derivative does not exist: relu'(0) = 0, abs'(0) = 0
(docs/reference.md §7); min/max give a tie to their first argument; and the derivative of
x^y with respect to the exponent y is taken as 0 where x <= 0 (x^y is not a
differentiable function of y there), so that a constant exponent, such as
the 2 of `(x - 1) ^ 2`, contributes nothing in every mode — as it must,
since its tangent and its backpropagator are zero.

Kinds: `real` Real^k -> Real, differentiable (plain at Int when overloaded);
`compare` reads primal values only; `toint` Real -> Int (no derivative);
`toreal` Int -> Real (a constant); `int`/`bool` no reals at all;
`structural` parametric (every transform maps it to itself); `ad` the
differentiation kernel (lang/ad.py).
"""
from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass
from typing import Callable

from . import realmath as rm
from .core import If, Lit, Prim
from .core import children
from .errors import DlRuntimeError
from .values import call1, call2
from .types import BOOL, CLASS_LEVELS, INT, REAL, UNIT, Scheme, TFun, TList, TTuple, TVar, Type


@dataclass(frozen=True)
class Primitive:
    name: str
    scheme: Scheme
    kind: str
    impl: Callable | None = None       # at Real, or the only implementation
    int_impl: Callable | None = None   # at Int, for Num-overloaded operators
    partials: Callable | None = None   # (x1, ..., xk, r) -> [d1, ..., dk] core terms, at Real
    fails: bool = False                # may raise a run-time error (call sites add the span)
    cost: str = "arith"                # cost class, for reports
    pyop: str | None = None            # the Python operator (comparisons, arithmetic)
    py: str | None = None              # inline Python for the compiler: "{0} * {1}" (every instance)
    raw: Callable | None = None        # a faster implementation that may raise ArithmeticError or
                                       # ValueError where `impl` gives inf or nan; the compiler falls
                                       # back to `impl` when it does
    doc: str = ""

    @property
    def arity(self) -> int:
        n, t = 0, self.scheme.body
        while isinstance(t, TFun):
            n, t = n + 1, t.result
        return n

    def uses_result(self) -> bool:
        """Whether the partial derivatives mention the result (the transform then names it)."""
        if self.partials is None:
            return False
        marker = Lit("result-marker")
        args = [Lit(f"arg{i}") for i in range(self.arity)]
        return any(_mentions(d, marker) for d in self.partials(*args, marker))


def _mentions(term, marker) -> bool:
    return term is marker or any(_mentions(c, marker) for c in children(term))


# ---- a small parser for the schemes written in the table ------------------


def parse_scheme(text: str) -> Scheme:
    """`(Num 'a, Diff 'b) => 'a -> ['b] * Real` into a Scheme (table strings only)."""
    variables: dict[str, TVar] = {}
    constraints, _, body = text.rpartition("=>")
    for part in constraints.replace("(", " ").replace(")", " ").split(","):
        if part.strip():
            cls, var = part.split()
            variables[var] = TVar(0, CLASS_LEVELS[cls])
    tokens = body.replace("->", " -> ").replace("*", " * ").replace("(", " ( ").replace(")", " ) ") \
        .replace("[", " [ ").replace("]", " ] ").split()
    pos = 0

    def arrow() -> Type:
        nonlocal pos
        left = product()
        if pos < len(tokens) and tokens[pos] == "->":
            pos += 1
            return TFun(left, arrow())
        return left

    def product() -> Type:
        nonlocal pos
        items = [atom()]
        while pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            items.append(atom())
        return items[0] if len(items) == 1 else TTuple(tuple(items))

    def atom() -> Type:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            t = arrow()
            pos += 1
            return t
        if tok == "[":
            t = arrow()
            pos += 1
            return TList(t)
        if tok.startswith("'"):
            return variables.setdefault(tok, TVar(0))
        return {"Real": REAL, "Int": INT, "Bool": BOOL, "Unit": UNIT}[tok]

    t = arrow()
    return Scheme(tuple(variables.values()), t)


# ---- term builders for the derivative rules --------------------------------


def _r(x: float) -> Lit:
    return Lit(float(x), ty=REAL)


def _p(op: str, *args) -> Prim:
    return Prim(op, tuple(args), ty=REAL)


def _if(cond, a, b) -> If:
    return If(cond, a, b, ty=REAL)


def _cmp(op: str, a, b) -> Prim:
    return Prim(op, (a, b), ty=BOOL)


def _pow_base_partial(op: str, x, y) -> If:
    """∂(x^y)/∂x = y x^(y-1), and 0 where y = 0 (x^0 is the constant 1; the formula is 0 · ∞ at x = 0)."""
    return _if(_cmp("==", y, _r(0)), _r(0), _p("*", y, _p(op, x, _p("-", y, _r(1)))))


# ---- structural implementations ----------------------------------------------


def _map(f, xs):
    return [call1(f, x) for x in xs]


def _fold(f, acc, xs):
    for x in xs:
        acc = call2(f, acc, x)
    return acc


def _zip_with(f, xs, ys):
    return [call2(f, x, y) for x, y in zip(xs, ys)]


def _count(n: int, what: str) -> int:
    if n < 0:
        raise DlRuntimeError(f"{what} of a negative count ({n})")
    if n > sys.maxsize:
        raise DlRuntimeError(f"{what} of {n} elements: no list can be that long")
    return n


def _range(n):
    return list(range(_count(n, "range")))


def _build(n, f):
    return [call1(f, i) for i in range(_count(n, "build"))]


def _get(xs, i):
    if 0 <= i < len(xs):
        return xs[i]
    raise DlRuntimeError(f"index {i} out of range for a list of length {len(xs)}")


def _head(xs):
    if xs:
        return xs[0]
    raise DlRuntimeError("head of an empty list")


def _tail(xs):
    if xs:
        return xs[1:]
    raise DlRuntimeError("tail of an empty list")


# ---- the table ---------------------------------------------------------------

NUM2 = "Num 'a => 'a -> 'a -> 'a"
CMP = "Num 'a => 'a -> 'a -> Bool"
EQ = "Eq 'a => 'a -> 'a -> Bool"
R1 = "Real -> Real"
R2 = "Real -> Real -> Real"
I2 = "Int -> Int -> Int"

_ROWS: list[tuple] = [
    # name, scheme, kind, impl, int_impl, partials, extra
    ("+", NUM2, "real", operator.add, operator.add, lambda x, y, r: [_r(1), _r(1)], dict(pyop="+", py="{0} + {1}")),
    ("-", NUM2, "real", operator.sub, operator.sub, lambda x, y, r: [_r(1), _r(-1)], dict(pyop="-", py="{0} - {1}")),
    ("*", NUM2, "real", operator.mul, operator.mul, lambda x, y, r: [y, x], dict(pyop="*", py="{0} * {1}")),
    ("/", R2, "real", rm.div, None, lambda x, y, r: [_p("/", _r(1), y), _p("neg", _p("/", r, y))],
     dict(raw=operator.truediv)),
    ("^", NUM2, "real", rm.pow, rm.int_pow,
     lambda x, y, r: [_pow_base_partial("^", x, y),
                      _if(_cmp(">", x, _r(0)), _p("*", r, _p("log", x)), _r(0))],
     dict(fails=True, cost="transcendental", raw=math.pow)),
    ("neg", "Num 'a => 'a -> 'a", "real", operator.neg, operator.neg, lambda x, r: [_r(-1)], dict(py="-{0}")),
    ("exp", R1, "real", rm.exp, None, lambda x, r: [r], dict(cost="transcendental", raw=math.exp)),
    ("log", R1, "real", rm.log, None, lambda x, r: [_p("/", _r(1), x)], dict(cost="transcendental", raw=math.log)),
    ("sin", R1, "real", rm.sin, None, lambda x, r: [_p("cos", x)], dict(cost="transcendental", raw=math.sin)),
    ("cos", R1, "real", rm.cos, None, lambda x, r: [_p("neg", _p("sin", x))], dict(cost="transcendental", raw=math.cos)),
    ("tan", R1, "real", rm.tan, None, lambda x, r: [_p("+", _r(1), _p("*", r, r))],
     dict(cost="transcendental", raw=math.tan)),
    ("tanh", R1, "real", rm.tanh, None, lambda x, r: [_p("-", _r(1), _p("*", r, r))], dict(cost="transcendental")),
    ("sqrt", R1, "real", rm.sqrt, None, lambda x, r: [_p("/", _r(0.5), r)], dict(cost="transcendental", raw=math.sqrt)),
    # σ'(x) = σ(x) σ(-x): as σ(x) (1 - σ(x)) it would be 0 from x ≈ 37 on, where 1 - σ(x) rounds to 0
    ("sigmoid", R1, "real", rm.sigmoid, None, lambda x, r: [_p("*", r, _p("sigmoid", _p("neg", x)))],
     dict(cost="transcendental")),
    ("relu", R1, "real", rm.relu, None, lambda x, r: [_if(_cmp(">", x, _r(0)), _r(1), _r(0))], {}),
    ("softplus", R1, "real", rm.softplus, None, lambda x, r: [_p("sigmoid", x)], dict(cost="transcendental")),
    ("abs", "Num 'a => 'a -> 'a", "real", math.fabs, abs, lambda x, r: [_p("sign", x)], {}),
    ("sign", R1, "real", rm.sign, None, lambda x, r: [_r(0)], {}),
    ("pow", R2, "real", rm.pow, None,
     lambda x, y, r: [_pow_base_partial("pow", x, y),
                      _if(_cmp(">", x, _r(0)), _p("*", r, _p("log", x)), _r(0))],
     dict(cost="transcendental", raw=math.pow)),
    ("atan2", R2, "real", rm.atan2, None,
     lambda y, x, r: [_p("/", x, _p("+", _p("*", x, x), _p("*", y, y))),
                      _p("neg", _p("/", y, _p("+", _p("*", x, x), _p("*", y, y))))], dict(cost="transcendental")),
    ("min", NUM2, "real", rm.fmin, min,
     lambda x, y, r: [_if(_cmp("<=", x, y), _r(1), _r(0)), _if(_cmp("<=", x, y), _r(0), _r(1))], {}),
    ("max", NUM2, "real", rm.fmax, max,
     lambda x, y, r: [_if(_cmp(">=", x, y), _r(1), _r(0)), _if(_cmp(">=", x, y), _r(0), _r(1))], {}),
    ("pi", "Real", "toreal", math.pi, None, None, {}),
    ("float", "Int -> Real", "toreal", rm.to_real, None, None, dict(raw=float)),
    ("floor", "Real -> Int", "toint", rm.floor, None, None, dict(fails=True)),
    ("ceil", "Real -> Int", "toint", rm.ceil, None, None, dict(fails=True)),
    ("round", "Real -> Int", "toint", rm.round_, None, None, dict(fails=True)),
    ("div", I2, "int", rm.int_div, None, None, dict(fails=True)),
    ("mod", I2, "int", rm.int_mod, None, None, dict(fails=True)),
    ("==", EQ, "compare", operator.eq, None, None, dict(pyop="==", py="{0} == {1}", cost="compare")),
    ("!=", EQ, "compare", operator.ne, None, None, dict(pyop="!=", py="{0} != {1}", cost="compare")),
    ("<", CMP, "compare", operator.lt, None, None, dict(pyop="<", py="{0} < {1}", cost="compare")),
    ("<=", CMP, "compare", operator.le, None, None, dict(pyop="<=", py="{0} <= {1}", cost="compare")),
    (">", CMP, "compare", operator.gt, None, None, dict(pyop=">", py="{0} > {1}", cost="compare")),
    (">=", CMP, "compare", operator.ge, None, None, dict(pyop=">=", py="{0} >= {1}", cost="compare")),
    ("not", "Bool -> Bool", "bool", operator.not_, None, None, dict(cost="compare", py="not {0}")),
    # structural: parametric, so every transform maps them to themselves
    ("fst", "'a * 'b -> 'a", "structural", operator.itemgetter(0), None, None, dict(cost="structural", py="{0}[0]")),
    ("snd", "'a * 'b -> 'b", "structural", operator.itemgetter(1), None, None, dict(cost="structural", py="{0}[1]")),
    ("map", "('a -> 'b) -> ['a] -> ['b]", "structural", _map, None, None, dict(cost="structural")),
    ("fold", "('b -> 'a -> 'b) -> 'b -> ['a] -> 'b", "structural", _fold, None, None, dict(cost="structural")),
    ("zipWith", "('a -> 'b -> 'c) -> ['a] -> ['b] -> ['c]", "structural", _zip_with, None, None,
     dict(cost="structural")),
    ("length", "['a] -> Int", "structural", len, None, None, dict(cost="structural", py="len({0})")),
    ("range", "Int -> [Int]", "structural", _range, None, None, dict(cost="structural", fails=True)),
    ("build", "Int -> (Int -> 'a) -> ['a]", "structural", _build, None, None, dict(cost="structural", fails=True)),
    ("get", "['a] -> Int -> 'a", "structural", _get, None, None, dict(cost="structural", fails=True)),
    ("head", "['a] -> 'a", "structural", _head, None, None, dict(cost="structural", fails=True)),
    ("tail", "['a] -> ['a]", "structural", _tail, None, None, dict(cost="structural", fails=True)),
    ("reverse", "['a] -> ['a]", "structural", lambda xs: xs[::-1], None, None, dict(cost="structural")),
    ("isEmpty", "['a] -> Bool", "structural", lambda xs: not xs, None, None, dict(cost="structural", py="not {0}")),
    ("::", "'a -> ['a] -> ['a]", "structural", lambda x, xs: [x, *xs], None, None,
     dict(cost="structural", py="[{0}, *{1}]")),
    ("++", "['a] -> ['a] -> ['a]", "structural", operator.add, None, None, dict(cost="structural", py="{0} + {1}")),
    # the differentiation kernel (lang/ad.py); the mode decides how
    ("grad", "Diff 'a => ('a -> Real) -> 'a -> 'a", "ad", None, None, None, dict(cost="ad", fails=True)),
    ("value_and_grad", "Diff 'a => ('a -> Real) -> 'a -> Real * 'a", "ad", None, None, None,
     dict(cost="ad", fails=True)),
    ("vjp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> 'b * ('b -> 'a)", "ad", None, None, None,
     dict(cost="ad", fails=True)),
    ("jvp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> 'a -> 'b * 'b", "ad", None, None, None,
     dict(cost="ad", fails=True)),
    ("derivative", "(Real -> Real) -> Real -> Real", "ad", None, None, None, dict(cost="ad", fails=True)),
]

PRIMITIVES: dict[str, Primitive] = {
    name: Primitive(name, parse_scheme(scheme), kind, impl, int_impl, partials, **extra)
    for name, scheme, kind, impl, int_impl, partials, extra in _ROWS
}

# The spellings of binary operators in source text and their rows.
BINARY_OPERATORS = {"+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">=", "::", "++"}
# Operators that are syntax, not names: they cannot be shadowed or written bare.
OPERATOR_NAMES = BINARY_OPERATORS | {"neg"}


def lookup(name: str) -> Primitive:
    """The row for `name`; a missing row is an internal error that names the primitive."""
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r} in the primitive table") from None


def user_visible() -> list[str]:
    """The built-in names a program can write (operators excluded)."""
    return [n for n in PRIMITIVES if n not in OPERATOR_NAMES]
