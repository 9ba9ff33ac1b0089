"""Core and target terms in readable concrete syntax that parses back (round trip).

    let (x, x') = x in
    let (y, y') = y in
    (x * y, fun a -o x' (y * a) + y' (x * a))

Operators print infix with the precedences of docs/reference.md, Precedence and only the
parentheses they need. Terms are laid out to a width by a Wadler/Leijen
pretty-printer (below): a term that fits stays on one line; one that does
not breaks at its `let`s (one binding per line), after `->` and `-o`,
between an application's arguments and a tuple's components, before the
`then` and `else` of an `if`, and after a binary operator, indenting by two.
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
MAX_INDENT = 60  # columns: deeper nesting is printed at this indentation (the text still parses back)

# precedence of each form: higher binds tighter (docs/reference.md, Precedence)
OPEN, PIPE, OR, AND, CMP, CONS, SUM, PROD, NEG, POW, APP, ATOM = range(12)
BINARY = {
    "==": CMP, "!=": CMP, "<": CMP, "<=": CMP, ">": CMP, ">=": CMP,
    "::": CONS, "++": CONS, "+": SUM, "-": SUM, "*": PROD, "/": PROD, "^": POW,
}
RIGHT_ASSOC = {"::", "++", "^"}


def show_term(e: c.Expr, width: int = WIDTH) -> str:
    """The term in concrete syntax, laid out to `width` columns where it can be."""
    return render(_Printer().doc(e, OPEN), width)


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


# ---- documents: the layout algebra of Wadler ("A prettier printer", 2003), with Leijen's align ----
#
# A document is text with places where it may break: `line` is a space when its enclosing `group`
# fits on the rest of the line, and a newline (indented to the current nesting) when it does not.
# Groups are decided outermost first, each as flat as fits. `nest(n, d)` indents d's breaks by n
# more; `align(d)` indents them to the column where d starts.


class Text:
    """Text with no line break in it."""
    __slots__ = ("text", "width")
    __match_args__ = ("text",)

    def __init__(self, text: str):
        self.text = text
        self.width = len(text)


class Line:
    """A space, or a newline and the current indentation."""
    __slots__ = ()
    width = 1  # flat


class Nest:
    __slots__ = ("indent", "doc", "width")
    __match_args__ = ("indent", "doc")

    def __init__(self, indent: int, doc: "Doc"):
        self.indent, self.doc, self.width = indent, doc, doc.width


class Align:
    __slots__ = ("doc", "width")
    __match_args__ = ("doc",)

    def __init__(self, doc: "Doc"):
        self.doc, self.width = doc, doc.width


class Group:
    __slots__ = ("doc", "width")
    __match_args__ = ("doc",)

    def __init__(self, doc: "Doc"):
        self.doc, self.width = doc, doc.width


class Cat:
    __slots__ = ("parts", "width")
    __match_args__ = ("parts",)

    def __init__(self, parts: tuple):
        self.parts = parts
        self.width = sum(p.width for p in parts)


# Each document knows its width laid out flat (`width`, summed as it is built): whether a group fits is
# then one comparison, not a walk of the group (which made layout quadratic-ish in a term's size: every
# group of a long `let` chain walked its text again; issue 19 item 9).
Doc = Text | Line | Nest | Align | Group | Cat
LINE = Line()


def cat(*parts: Doc) -> Doc:
    return Cat(tuple(parts))


def text(s: str) -> Doc:
    return Text(s)


def join(sep: Doc, docs: list[Doc]) -> Doc:
    out: list[Doc] = []
    for k, d in enumerate(docs):
        if k:
            out.append(sep)
        out.append(d)
    return Cat(tuple(out))


def render(doc: Doc, width: int) -> str:
    """The document laid out: each group flat if it fits in `width`, else broken at its lines."""
    out: list[str] = []
    col = 0
    stack: list[tuple[int, bool, Doc]] = [(0, False, doc)]  # (indentation, flat, document), last first
    while stack:
        indent, flat, d = stack.pop()
        if flat:  # a flat document is its text with each line a space
            col += _flat(d, out)
            continue
        match d:
            case Text(s):
                out.append(s)
                col += len(s)
            case Line():  # (indentation stops at MAX_INDENT: a term nested n deep would print n^2 spaces)
                col = min(indent, MAX_INDENT)
                out.append("\n" + " " * col)
            case Nest(n, inner):
                stack.append((indent + n, False, inner))
            case Align(inner):
                stack.append((col, False, inner))
            case Cat(parts):
                stack.extend((indent, False, p) for p in reversed(parts))
            case Group(inner):
                stack.append((indent, _fits(width - col, inner, stack), inner))
    return "".join(out)


def _flat(doc: Doc, out: list[str]) -> int:
    """Append `doc` laid out flat to `out`; its width."""
    todo = [doc]
    while todo:
        d = todo.pop()
        if isinstance(d, Text):
            out.append(d.text)
        elif isinstance(d, Line):
            out.append(" ")
        elif isinstance(d, Cat):
            todo.extend(reversed(d.parts))
        else:  # Nest, Align, Group: flat, they are their document
            todo.append(d.doc)
    return doc.width


def _fits(room: int, doc: Doc, rest: list) -> bool:
    """Whether `doc` flat, and what follows it up to the next break, fit in `room` columns."""
    room -= doc.width
    k = len(rest)
    todo: list[Doc] = []  # what follows, in break mode
    while room >= 0:
        if not todo:
            if k == 0:
                return True
            k -= 1
            _, flat, d = rest[k]
            if flat:
                room -= d.width
                continue
            todo.append(d)
        d = todo.pop()
        match d:
            case Text():
                room -= d.width
            case Line():
                return True
            case Nest(_, inner) | Align(inner) | Group(inner):
                todo.append(inner)
            case Cat(parts):
                todo.extend(reversed(parts))
    return False


# ---- terms as documents ----------------------------------------------------------------------


class _Printer:
    """Each form's layout: `fun x ->` then its body indented; a `let` chain one binding per line; an
    application's arguments one per line when they do not fit; tuples and lists aligned after their
    bracket; `if` with `then` and `else` on lines of their own."""

    def doc(self, e: c.Expr, ctx: int) -> Doc:
        """`e`, parenthesised if its form binds looser than `ctx` requires."""
        d, prec = self.form(e)
        return cat(text("("), Align(d), text(")")) if prec < ctx else d

    def form(self, e: c.Expr) -> tuple[Doc, int]:
        match e:
            case c.Var(name, inst) | c.Global(name=name, inst=inst):
                return text(instance_name(name, inst)), ATOM
            case c.Lit(value):
                s = literal(value)
                return text(s), (NEG if s.startswith("-") else ATOM)
            case c.Lam():
                params, body = _params(e)
                return self.abstraction(f"fun {' '.join(params)} ->", body), OPEN
            case c.LinLam(param, body):
                return self.abstraction(f"fun {param} -o", body), OPEN
            case c.App() | c.LinApp():
                head, args = _spine(e)
                return self.application(self.doc(head, APP), args), APP
            case c.Let() | c.LetRec() | c.LetTuple():
                heads = []
                while isinstance(e, (c.Let, c.LetRec, c.LetTuple)):
                    heads.append(self.let_head(e))
                    e = e.body
                return Group(join(LINE, heads + [self.doc(e, OPEN)])), OPEN
            case c.If(cond, then, else_):
                return Group(cat(text("if "), Align(self.doc(cond, OPEN)),
                                 Nest(2, cat(LINE, text("then "), Align(self.doc(then, OPEN)),
                                             LINE, text("else "), Align(self.doc(else_, OPEN)))))), OPEN
            case c.Tuple(items):
                return self.bracketed("(", items, ")"), ATOM
            case c.List(items):
                return self.bracketed("[", items, "]"), ATOM
            case c.Prim(op, args):
                return self.prim(op, args)
            case c.DZero():
                return text("0"), ATOM
            case c.DSum():
                first, *rest = _summands(e)
                return Group(cat(self.doc(first, SUM),
                                 *[cat(LINE, text("+ "), Align(self.doc(t, SUM + 1))) for t in rest])), SUM
            case c.Annot(expr, t):
                return cat(text("("), Align(self.doc(expr, OPEN)), text(f" : {_show_type_expr(t)})")), ATOM
        raise AssertionError(e)

    def abstraction(self, head: str, body: c.Expr) -> Doc:
        return Group(cat(text(head), Nest(2, cat(LINE, self.doc(body, OPEN)))))

    def application(self, head: Doc, args) -> Doc:
        return Group(cat(head, Nest(2, cat(*[cat(LINE, self.doc(a, ATOM)) for a in args]))))

    def bracketed(self, open_: str, items, close: str) -> Doc:
        inside = join(cat(text(","), LINE), [self.doc(i, OPEN) for i in items])
        return cat(text(open_), Align(Group(inside)), text(close))

    def prim(self, op: str, args) -> tuple[Doc, int]:
        if op in BINARY_OPERATORS and len(args) == 2:
            prec = BINARY[op]
            left_ctx, right_ctx = (prec + 1, prec) if op in RIGHT_ASSOC else (prec, prec + 1)
            if prec == CMP:
                left_ctx = right_ctx = CMP + 1
            left, right = args
            return Group(cat(self.doc(left, left_ctx), text(f" {op}"),
                             Nest(2, cat(LINE, self.doc(right, right_ctx))))), prec
        if op == "neg":
            return cat(text("-"), self.doc(args[0], POW)), NEG
        if not args:
            return text(op), ATOM
        return self.application(text(op), args), APP

    def let_head(self, e: c.Expr) -> Doc:
        """`let p = bound in`: on one line, or the bound term indented under it and `in` below."""
        match e:
            case c.Let(name, bound, _, inst) if isinstance(bound, c.Lam):
                params, body = _params(bound)
                head, bound = f"let {instance_name(name, inst)} {' '.join(params)} =", body
            case c.Let(name, bound, _, inst):
                head = f"let {instance_name(name, inst)} ="
            case c.LetRec(name, bound, _, inst):
                params, body = _params(bound)
                head, bound = f"let rec {instance_name(name, inst)} {' '.join(params)} =", body
            case c.LetTuple(names, bound, _):  # a long pattern (chad's environments) breaks after its commas
                pattern = cat(text("let ("), Align(Group(join(cat(text(","), LINE), [text(n) for n in names]))),
                              text(") ="))
                return Group(cat(pattern, Nest(2, cat(LINE, self.doc(bound, OPEN))), LINE, text("in")))
            case _:
                raise AssertionError(e)
        return Group(cat(text(head), Nest(2, cat(LINE, self.doc(bound, OPEN))), LINE, text("in")))


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
    """t1 + t2 + ... + tn, a sum nested to the left (as + associates), as [t1, ..., tn]."""
    out = []
    while isinstance(e, c.DSum):
        out.append(e.right)
        e = e.left
    out.append(e)
    return out[::-1]


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
