"""Core and target terms in readable concrete syntax that parses back (round trip).

    let (x, x') = x in
    let (y, y') = y in
    (x * y, fun a -o x' (y * a) + y' (x * a))

Operators print infix with the precedences of docs/reference.md, Precedence and only the
parentheses they need; `let` chains and long terms break over lines.
Instances of polymorphic definitions print as `sq@Real`. Linear application
prints like application (`x' e`), the zero and sum of d as `0` and `+`:
reading a printed target term back resolves them by their types
(lang/target_check.py).
"""
from __future__ import annotations

import math

from . import core as c
from . import syntax as s
from .types import instance_name
from .primitives import BINARY_OPERATORS

WIDTH = 88

# precedence of each form: higher binds tighter (docs/reference.md, Precedence)
OPEN, PIPE, OR, AND, CMP, CONS, SUM, PROD, NEG, POW, APP, ATOM = range(12)
BINARY = {
    "==": CMP, "!=": CMP, "<": CMP, "<=": CMP, ">": CMP, ">=": CMP,
    "::": CONS, "++": CONS, "+": SUM, "-": SUM, "*": PROD, "/": PROD, "^": POW,
}
RIGHT_ASSOC = {"::", "++", "^"}


def show_term(e: c.Expr, width: int = WIDTH) -> str:
    """The term in concrete syntax, broken over lines when it is long."""
    return _Printer(width).block(e, 0)


def literal(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if value == ():
        return "()"
    if isinstance(value, float):
        if math.isnan(value):
            return "(0.0 / 0.0)"
        if math.isinf(value):
            return "(1.0 / 0.0)" if value > 0 else "(-1.0 / 0.0)"
        text = repr(value)
        return text if any(ch in text for ch in ".en") else text + ".0"
    return str(value)


class _Printer:
    def __init__(self, width: int):
        self.width = width
        self.cache: dict[int, str] = {}

    # ---- one line
    def flat(self, e: c.Expr, ctx: int) -> str:
        """`e` on one line, parenthesised if its form binds looser than `ctx` requires."""
        text, prec = self.flat_prec(e)
        return f"({text})" if prec < ctx else text

    def flat_prec(self, e: c.Expr) -> tuple[str, int]:
        match e:
            case c.Var(name, inst) | c.Global(name=name, inst=inst):
                return instance_name(name, inst), ATOM
            case c.Lit(value):
                text = literal(value)
                return text, (NEG if text.startswith("-") else ATOM)
            case c.Lam():
                params, body = _params(e)
                return f"fun {' '.join(params)} -> {self.flat(body, OPEN)}", OPEN
            case c.LinLam(param, body):
                return f"fun {param} -o {self.flat(body, OPEN)}", OPEN
            case c.App() | c.LinApp():
                head, args = _spine(e)
                return " ".join([self.flat(head, APP)] + [self.flat(a, ATOM) for a in args]), APP
            case c.Let() | c.LetRec() | c.LetTuple():
                return self.let_head(e) + " " + self.flat(e.body, OPEN), OPEN
            case c.If(cond, then, else_):
                return (f"if {self.flat(cond, OPEN)} then {self.flat(then, OPEN)} else {self.flat(else_, OPEN)}",
                        OPEN)
            case c.Tuple(items):
                return "(" + ", ".join(self.flat(i, OPEN) for i in items) + ")", ATOM
            case c.List(items):
                return "[" + ", ".join(self.flat(i, OPEN) for i in items) + "]", ATOM
            case c.Prim(op, args):
                return self.prim(op, args)
            case c.DZero():
                return "0", ATOM
            case c.DSum(l, r):
                return f"{self.flat(l, SUM)} + {self.flat(r, SUM + 1)}", SUM
            case c.Annot(expr, t):
                return f"({self.flat(expr, OPEN)} : {_show_type_expr(t)})", ATOM
        raise AssertionError(e)

    def prim(self, op: str, args) -> tuple[str, int]:
        if op in BINARY_OPERATORS and len(args) == 2:
            prec = BINARY[op]
            left_ctx, right_ctx = (prec + 1, prec) if op in RIGHT_ASSOC else (prec, prec + 1)
            if prec == CMP:
                left_ctx = right_ctx = CMP + 1
            left, right = args
            return f"{self.flat(left, left_ctx)} {op} {self.flat(right, right_ctx)}", prec
        if op == "neg":
            return "-" + self.flat(args[0], POW), NEG
        if not args:
            return op, ATOM
        return " ".join([op] + [self.flat(a, ATOM) for a in args]), APP

    def let_head(self, e: c.Expr) -> str:
        match e:
            case c.Let(name, bound, _, inst) if isinstance(bound, c.Lam):
                params, body = _params(bound)
                return f"let {instance_name(name, inst)} {' '.join(params)} = {self.flat(body, OPEN)} in"
            case c.Let(name, bound, _, inst):
                return f"let {instance_name(name, inst)} = {self.flat(bound, OPEN)} in"
            case c.LetRec(name, bound, _, inst):
                params, body = _params(bound)
                return f"let rec {instance_name(name, inst)} {' '.join(params)} = {self.flat(body, OPEN)} in"
            case c.LetTuple(names, bound, _):
                return f"let ({', '.join(names)}) = {self.flat(bound, OPEN)} in"
        raise AssertionError(e)

    # ---- several lines
    def block(self, e: c.Expr, indent: int) -> str:
        """`e` laid out at `indent`: on one line if it fits, else its structure over lines."""
        one = self.flat(e, OPEN)
        if len(one) + indent <= self.width or "\n" in one:
            return one
        pad = " " * indent
        match e:
            case c.Let() | c.LetRec() | c.LetTuple():
                parts = []
                while isinstance(e, (c.Let, c.LetRec, c.LetTuple)):
                    parts.append(self.let_block(e, indent))
                    e = e.body
                parts.append(self.block(e, indent))
                return ("\n" + pad).join(parts)
            case c.If(cond, then, else_):
                inner = indent + 2
                return (f"if {self.flat(cond, OPEN)}\n{' ' * inner}then {self.block(then, inner + 5)}\n"
                        f"{' ' * inner}else {self.block(else_, inner + 5)}")
            case c.Lam():
                params, body = _params(e)
                return f"fun {' '.join(params)} ->\n{' ' * (indent + 2)}{self.block(body, indent + 2)}"
            case c.LinLam(param, body):
                return f"fun {param} -o\n{' ' * (indent + 2)}{self.block(body, indent + 2)}"
            case c.Tuple(items):
                inner = indent + 1
                parts = [self.block(i, inner) for i in items]
                return "(" + (",\n" + " " * inner).join(parts) + ")"
            case c.DSum():
                terms = _summands(e)
                return ("\n" + pad + "+ ").join(self.block(t, indent + 2) for t in terms)
        return one

    def let_block(self, e: c.Expr, indent: int) -> str:
        head = self.let_head(e)
        if len(head) + indent <= self.width:
            return head
        inner = indent + 2
        match e:
            case c.Let(name, bound, _, inst) if isinstance(bound, c.Lam):
                params, body = _params(bound)
                return (f"let {instance_name(name, inst)} {' '.join(params)} =\n{' ' * inner}"
                        f"{self.block(body, inner)}\n{' ' * indent}in")
            case c.Let(name, bound, _, inst):
                return f"let {instance_name(name, inst)} =\n{' ' * inner}{self.block(bound, inner)}\n{' ' * indent}in"
            case c.LetRec(name, bound, _, inst):
                params, body = _params(bound)
                return (f"let rec {instance_name(name, inst)} {' '.join(params)} =\n{' ' * inner}"
                        f"{self.block(body, inner)}\n{' ' * indent}in")
            case c.LetTuple(names, bound, _):
                return f"let ({', '.join(names)}) =\n{' ' * inner}{self.block(bound, inner)}\n{' ' * indent}in"
        raise AssertionError(e)


def _params(e: c.Lam) -> tuple[list[str], c.Expr]:
    """A lambda's parameters for `fun x y ->`, stopping before a repeated name: `fun x -> fun x -> e`
    must not print as `fun x x -> e`, which binds x twice."""
    params: list[str] = []
    while isinstance(e, c.Lam) and e.param not in params:
        params.append(e.param)
        e = e.body
    return params, e


def _spine(e: c.Expr) -> tuple[c.Expr, list[c.Expr]]:
    args = []
    while isinstance(e, (c.App, c.LinApp)):
        args.append(e.arg)
        e = e.fn
    return e, args[::-1]


def _summands(e: c.Expr) -> list[c.Expr]:
    out, stack = [], [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.DSum):
            stack.append(t.right)
            stack.append(t.left)
        else:
            out.append(t)
    return out


def _show_type_expr(t) -> str:
    match t:
        case s.TyName(name):
            return name
        case s.TyVar(name):
            return "'" + name
        case s.TyFun(a, r):
            return f"({_show_type_expr(a)} -> {_show_type_expr(r)})"
        case s.TyTuple(items):
            return "(" + " * ".join(_show_type_expr(i) for i in items) + ")"
        case s.TyList(item):
            return f"[{_show_type_expr(item)}]"
        case s.TyNeg(item):
            return f"~{_show_type_expr(item)}"
        case s.TyScheme(cs, body):
            return ", ".join(f"{k} '{v}" for k, v in cs) + " => " + _show_type_expr(body)
    return str(t)
