"""A linear type system for first-order programs written in dl's core terms (docs/transforms.md, Linearity).

A *linear function* `fun t -o e` (type T ⊸ U) is one whose body is a linear
map of its parameter: built from t by sums, differences, negation, scaling by
values that do not depend on t, zeros, tuples and lists of such terms, and
loops (`map`, `fold`, `zipWith`, `build`) whose bodies are such terms. The
judgement Γ; Λ ⊢ e classifies every subterm, for the variables Λ bound
linearly, as

    N   does not depend on Λ: a value (a residual, a loop index, a literal)
    L   a linear function of Λ
    Z   zero: the literal 0.0 (a constant, and the zero of every linear space)

and, for a tuple or a list, a tuple of classes or a list of one class. The
rules, for each form:

    x                    its class (Λ's variables L; a pattern's parts what the parts of its value are)
    0.0                  Z          other literals  N
    e1 + e2, e1 - e2     both L (or Z): L;  both N: N;  L with N: refused (affine, not linear)
    e1 * e2              one L, the other N: L;  both N: N;  a Z factor: Z;  L * L: refused
    e1 / e2              L / N: L;  N / N: N;  anything / L: refused
    -e                   e's class
    f(e1, ..., ek)       another primitive (sin, <, floor, ...): all N, else refused
    if c then a else b   c N; a and b joined
    let, tuples, lists   classes flow through; a list's elements are joined
    get xs i, head, ...  xs's element class (the index N)
    map/zipWith/build f  the lambda's parameters take the lists' element classes; a list of the body's
    fold f z xs          the state's class joined with the body's until it settles
    fun x -> e           (not a loop's argument) N, if e mentions no linear variable
    e1 e2                N, if neither mentions a linear variable

Joining: Z with anything is that thing, N with L is refused. A linear
function's body may contain N parts (residuals computed in it: `let w = sin
r in w * t`) but its *result* must be L or Z in every component — a constant
part would make it affine.

Compared with the paper's Linear A (Radul et al., POPL 2023, §3), the type
system is algebraic rather than substructural: a linear variable may be used
any number of times, or not at all, and duplication and dropping are implicit
(the paper has `dup` and `drop`). The transposition of the lut modes turns k
uses into k accumulations, which is exactly what an explicit `dup` would make
visible. Types are checked as well, by dl's inference with `fun t -o e`
given the type T -> U (printed T ⊸ U): `check_linear_function` does both.

This module knows nothing of how a linear program was made; any transform
that writes linear functions in core terms can check them here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..front.infer import Inferencer, default_numeric
from ..model import core as c
from ..model.errors import DlError
from ..model.primitives import PRIMITIVES
from ..model.types import TFun, Type, prune, show

N, L, Z = "N", "L", "Z"


class NotLinear(AssertionError):
    """A term that the linear type system refuses: a bug in whatever wrote it."""


@dataclass(frozen=True)
class ListOf:
    """The class of a list: its elements' class."""

    item: Any


def join(a: Any, b: Any, what: str = "") -> Any:
    """The class of a value that may be either: Z gives way, N and L do not mix."""
    if a == Z:
        return b
    if b == Z:
        return a
    if a == b:
        return a
    if isinstance(a, tuple) or isinstance(b, tuple):
        n = len(a) if isinstance(a, tuple) else len(b)
        return tuple(join(part(a, k, n), part(b, k, n), what) for k in range(n))
    if isinstance(a, ListOf) or isinstance(b, ListOf):
        return ListOf(join(item(a), item(b), what))
    raise NotLinear(f"{what or 'a value'} is linear on one side and not on the other")


def part(cls: Any, k: int, n: int) -> Any:
    """The class of component k of an n-tuple of class `cls`."""
    if isinstance(cls, tuple):
        if len(cls) != n:
            raise NotLinear("a pattern does not fit its tuple")
        return cls[k]
    return cls


def item(cls: Any) -> Any:
    """The class of an element of a list of class `cls`."""
    return cls.item if isinstance(cls, ListOf) else cls


def leaves(cls: Any) -> set:
    """The N/L/Z classes a class is made of."""
    if isinstance(cls, tuple):
        return set().union(*(leaves(k) for k in cls)) if cls else set()
    if isinstance(cls, ListOf):
        return leaves(cls.item)
    return {cls}


class _Classifier:
    """The rules of the module docstring."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.reads = 0  # reads of a variable with a linear part so far (what a closure may not capture)

    def bind(self, name: str, cls: Any) -> Any:
        old = self.env.get(name)
        self.env[name] = cls
        return old

    def restore(self, name: str, old: Any) -> None:
        if old is None:
            self.env.pop(name, None)
        else:
            self.env[name] = old


    def linear_function(self, e: c.LinLam) -> Any:
        """fun t -o body: t linear; the result linear in every component."""
        old = self.bind(e.param, L)
        before = self.reads
        result = self.cls(e.body)
        self.reads = before  # its own parameter's uses are not a capture
        self.restore(e.param, old)
        if N in leaves(result):
            raise NotLinear(f"the linear function `fun {e.param} -o ...` returns a part that does not depend on "
                            f"`{e.param}`: it is affine, not linear")
        return result

    def cls(self, e: c.Expr) -> Any:
        match e:
            case c.Var(name):
                found = self.env.get(name, N)
                if found != N and L in leaves(found):
                    self.reads += 1
                return found
            case c.Global():
                return N
            case c.Lit(value):
                return Z if isinstance(value, float) and value == 0.0 else N
            case c.Tuple(items):
                return tuple(self.cls(i) for i in items)
            case c.List(items):
                out: Any = Z
                for i in items:
                    out = join(out, self.cls(i), "an element of a list")
                return ListOf(out)
            case c.Let(name, bound, body):
                old = self.bind(name, self.cls(bound))
                out = self.cls(body)
                self.restore(name, old)
                return out
            case c.LetTuple(names, bound, body):
                value = self.cls(bound)
                olds = [self.bind(x, part(value, k, len(names))) for k, x in enumerate(names)]
                out = self.cls(body)
                for x, old in reversed(list(zip(names, olds))):
                    self.restore(x, old)
                return out
            case c.If(cond, then, else_):
                self.require_n(cond, "the condition of `if`")
                return join(self.cls(then), self.cls(else_), "an `if`")
            case c.Prim():
                return self.primitive(e)
            case c.Lam(param, body):
                before = self.reads
                old = self.bind(param, N)
                self.cls(body)  # (for the linear functions inside it)
                self.restore(param, old)
                if self.reads != before:
                    raise NotLinear("a function value that captures a linear variable (only a loop's argument "
                                    "may)")
                return N
            case c.App(fn, arg):
                before = self.reads
                self.cls(fn)
                self.cls(arg)
                if self.reads != before:
                    raise NotLinear("a linear value passed to a function call")
                return N
            case c.LinLam():
                return self.linear_function(e)
            case c.Annot(expr):
                return self.cls(expr)
        raise NotLinear(f"no linearity rule for {type(e).__name__}")

    def require_n(self, e: c.Expr, what: str) -> None:
        if L in leaves(self.cls(e)):
            raise NotLinear(f"{what} depends on a linear variable")

    def primitive(self, e: c.Prim) -> Any:
        op, args = e.op, e.args
        prim = PRIMITIVES[op]
        match op:
            case "+" | "-":
                a, b = self.cls(args[0]), self.cls(args[1])
                return join(a, b, f"`{op}`")
            case "*":
                a, b = self.cls(args[0]), self.cls(args[1])
                if Z in (a, b):
                    return Z
                if a == L and b == L:
                    raise NotLinear("a product of two linear values")
                return L if L in (a, b) else N
            case "/":
                a, b = self.cls(args[0]), self.cls(args[1])
                if b == L:
                    raise NotLinear("a division by a linear value")
                return a if a != Z else Z
            case "neg":
                return self.cls(args[0])
            case "fst" | "snd":
                whole = self.cls(args[0])
                return part(whole, 0 if op == "fst" else 1, 2)
            case "get" | "head":
                if op == "get":
                    self.require_n(args[1], "a list index")
                return item(self.cls(args[0]))
            case "tail" | "reverse":
                return self.cls(args[0])
            case "::":
                return ListOf(join(self.cls(args[0]), item(self.cls(args[1])), "`::`"))
            case "++":
                return join(self.cls(args[0]), self.cls(args[1]), "`++`")
            case "length" | "isEmpty":
                self.cls(args[0])
                return N
            case "map":
                return ListOf(self.loop_body(args[0], [item(self.cls(args[1]))]))
            case "zipWith":
                return ListOf(self.loop_body(args[0], [item(self.cls(args[1])), item(self.cls(args[2]))]))
            case "build":
                self.require_n(args[0], "a list length")
                return ListOf(self.loop_body(args[1], [N]))
            case "fold":
                state = self.cls(args[1])
                element = item(self.cls(args[2]))
                for _ in range(4):
                    new = join(state, self.loop_body(args[0], [state, element]), "the state of a fold")
                    if new == state:
                        return state
                    state = new
                return state
        if prim.kind in ("real", "compare", "toint", "toreal", "int", "bool", "structural", "ad"):
            for a in args:
                self.require_n(a, f"an argument of `{op}`")
            return N
        raise NotLinear(f"no linearity rule for the primitive `{op}`")

    def loop_body(self, fn: c.Expr, params: list) -> Any:
        """The class of a loop's lambda applied to parameters of the given classes."""
        names = []
        body = fn
        while isinstance(body, c.Lam) and len(names) < len(params):
            names.append(body.param)
            body = body.body
        if len(names) != len(params):
            raise NotLinear("a loop's argument in a linear program must be a lambda written in place")
        olds = [self.bind(x, k) for x, k in zip(names, params)]
        out = self.cls(body)
        for x, old in reversed(list(zip(names, olds))):
            self.restore(x, old)
        return out


class _Types(Inferencer):
    """dl's inference, with `fun t -o e` typed as the function it is (T -> U, printed T ⊸ U)."""

    def infer_other(self, e: c.Expr) -> c.Expr:
        if isinstance(e, c.LinLam):
            t = self.fresh()
            old = self.locals.bind(e.param, t)
            body = self.infer(e.body)
            self.locals.restore(e.param, old)
            return replace(e, body=body, ty=TFun(t, body.ty))
        return super().infer_other(e)


def infer_type(term: c.Expr) -> Type:
    """The type of a closed term of the linear language (open numeric types defaulted to Real)."""
    try:
        typed = _Types({}).infer(term)
    except DlError as err:
        raise NotLinear(f"the term does not type-check: {err.message}") from None
    default_numeric(typed.ty)
    return typed.ty


def classify(term: c.Expr) -> Any:
    """The class of a closed term (module docstring); raises NotLinear where a rule is broken."""
    return _Classifier().cls(term)


def check_linear_function(term: c.Expr) -> Type:
    """Type-check `term` and check that every `fun t -o e` in it is linear in t; its type."""
    t = infer_type(term)
    if not any(isinstance(x, c.LinLam) for x in c.subterms(term)):
        raise NotLinear("no linear function `fun t -o e` in the term")
    classify(term)
    return t



def show_linear(t: Type, ascii_arrow: bool = False) -> str:
    """A type R -> (T -> U) whose inner arrow is a linear function's, printed R -> (T ⊸ U)."""
    t = prune(t)
    arrow = "-o" if ascii_arrow else "⊸"
    if isinstance(t, TFun) and isinstance(prune(t.result), TFun):
        inner = prune(t.result)
        return f"{_show_arg(t.arg)} -> ({_show_arg(inner.arg)} {arrow} {show(inner.result)})"
    return show(t)


def _show_arg(t: Type) -> str:
    text = show(t)
    return f"({text})" if isinstance(prune(t), TFun) else text


__all__ = ["N", "L", "Z", "ListOf", "NotLinear", "classify", "check_linear_function", "infer_type", "show_linear",
           "join"]
