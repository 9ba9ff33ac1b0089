"""The chad modes' target language: its types (Dr1, Dr2) and the term builders the rules use.

    Dr1(Real) = Real   Dr1(Int) = Int   Dr1(Bool) = Bool   Dr1(Unit) = Unit   Dr1('a) = 'a
    Dr1(A * B) = Dr1(A) * Dr1(B)        Dr1([A]) = [Dr1(A)]
    Dr1(A -> B) = Dr1(A) -> Dr1(B) * (Dr2(B) ⊸ Dr2(A) * Dr2(A -> B))

    Dr2(Real) = Real   Dr2(Int) = Dr2(Bool) = Dr2(Unit) = Unit   Dr2('a) = a variable of its own
    Dr2(A * B) = Dr2(A) * Dr2(B)        Dr2([A]) = [Dr2(A)]
    Dr2(A -> B) = Copow(Dr1(A), Dr2(B))     chad: a copower, a formal sum of (argument, cotangent) pairs
    Dr2(A -> B) = Env                        chad-efficient: the cotangent of the closure's environment

    Dr2(Γ) = Dr2(A1) * ... * Dr2(An) for Γ = x1 : A1, ..., xn : An   (Unit for no variable, Dr2(A1) for one)

A call's linear map returns the argument's cotangent *and* the function's own
(the reference builds the singleton copower at the caller, VMatthijs/CHAD
src/ReverseAD.hs SApp; here the callee builds it, the same value), so that
every rule that calls a function is the same in both modes and only the rules
that make and consume function cotangents — λ and `let rec` — differ.

`Dr2('a)` is a fresh variable per type variable within one call of the type
transform: the checker's variables are flexible, so a transformed polymorphic
definition is checked at its most general instance without knowing that the
variable stands for the cotangent type of 'a.
"""
from __future__ import annotations

from ..model import core as c
from ..model.types import (ARRAY, BOOL, ENV, INT, REAL, UNIT, TCon, TCtor, TFun, TList, TNeg, TTuple, TVar, Type,
                           linear, prune)

COPOW = "Copow"


def copow(a: Type, b: Type) -> TCtor:
    """Copow(A, B): a formal sum of pairs (a : A, ct : B), the basic mode's function cotangent."""
    return TCtor(COPOW, (a, b))


class Types:
    """Dr1 and Dr2 of one transform (the variables of Dr2('a) are memoised per 'a)."""

    def __init__(self, efficient: bool):
        self.efficient = efficient
        self.cot: dict[TVar, TVar] = {}

    def d1(self, t: Type) -> Type:
        t = prune(t)
        match t:
            case TCon() | TVar():
                return t
            case TTuple(items):
                return TTuple(tuple(self.d1(i) for i in items))
            case TList(item):
                return TList(self.d1(item))
            case TFun(a, r):
                return TFun(self.d1(a), TTuple((self.d1(r), linear(self.d2(r), TTuple((self.d2(a), self.d2(t)))))))
            case TNeg() | TCtor():
                raise AssertionError(f"chad cannot transform the target type {t}")
        raise AssertionError(t)

    def d2(self, t: Type) -> Type:
        t = prune(t)
        match t:
            case TCon("Real") | TCon("Array"):
                return t
            case TCon():
                return UNIT
            case TVar():
                if t not in self.cot:
                    self.cot[t] = TVar(t.level)
                return self.cot[t]
            case TTuple(items):
                return TTuple(tuple(self.d2(i) for i in items))
            case TList(item):
                return TList(self.d2(item))
            case TFun(a, r):
                return ENV if self.efficient else copow(self.d1(a), self.d2(r))
            case TNeg() | TCtor():
                raise AssertionError(f"chad cannot transform the target type {t}")
        raise AssertionError(t)

    def env(self, types: list[Type]) -> Type:
        """Dr2(Γ) for the source types of Γ's variables."""
        return tuple_type([self.d2(t) for t in types])


def tuple_type(parts: list[Type]) -> Type:
    """Unit, the one part, or the tuple of the parts."""
    if not parts:
        return UNIT
    return parts[0] if len(parts) == 1 else TTuple(tuple(parts))


# ---- term builders: every node typed (the compiler reads the types of lzero and of primitive arguments) ----


def var(name: str, ty: Type, inst: tuple = ()) -> c.Var:
    return c.Var(name, inst, ty=ty)


def prim(op: str, *args: c.Expr, ty: Type) -> c.Prim:
    return c.Prim(op, tuple(args), ty=ty)


def zero(ty: Type) -> c.Prim:
    """lzero: the zero of the cotangent type `ty`."""
    return c.Prim("lzero", (), ty=ty)


def plus(a: c.Expr, b: c.Expr, ty: Type) -> c.Expr:
    """lplus a b (a zero operand left out)."""
    if is_zero(a):
        return b
    if is_zero(b):
        return a
    return c.Prim("lplus", (a, b), ty=ty)


def total(terms: list[c.Expr], ty: Type) -> c.Expr:
    """The sum of the terms (lzero for none)."""
    out: c.Expr | None = None
    for t in terms:
        out = t if out is None else plus(out, t, ty)
    return out if out is not None else zero(ty)


def lapp(f: c.Expr, arg: c.Expr, ty: Type) -> c.Prim:
    """lapp f ct: a linear map applied."""
    return c.Prim("lapp", (f, arg), ty=ty)


def lam(param: str, param_ty: Type, body: c.Expr) -> c.LinLam:
    """fun param -o body : T ⊸ U."""
    return c.LinLam(param, body, ty=linear(param_ty, body.ty))


def is_zero(e: c.Expr) -> bool:
    return isinstance(e, c.Prim) and e.op == "lzero"


def pair(a: c.Expr, b: c.Expr) -> c.Tuple:
    return c.Tuple((a, b), ty=TTuple((a.ty, b.ty)))


def tup(items: list[c.Expr]) -> c.Expr:
    """A tuple of the items; the one item itself; `lzero` at Unit for none (Dr2 of an empty Γ)."""
    if not items:
        return zero(UNIT)
    if len(items) == 1:
        return items[0]
    return c.Tuple(tuple(items), ty=TTuple(tuple(i.ty for i in items)))


def fst(e: c.Expr) -> c.Expr:
    """fst e (the component itself when e is a pair written out)."""
    if isinstance(e, c.Tuple) and len(e.items) == 2:
        return e.items[0]
    return c.Prim("fst", (e,), ty=prune(e.ty).items[0])


def snd(e: c.Expr) -> c.Expr:
    if isinstance(e, c.Tuple) and len(e.items) == 2:
        return e.items[1]
    return c.Prim("snd", (e,), ty=prune(e.ty).items[1])


def let_tuple(names: list[str], bound: c.Expr, body: c.Expr) -> c.Expr:
    """let (x1, ..., xn) = bound in body; `let x = bound in body` for one name."""
    if len(names) == 1:
        return c.Let(names[0], bound, body, ty=body.ty)
    return c.LetTuple(tuple(names), bound, body, ty=body.ty)


def apply(fn: c.Expr, *args: c.Expr, ty: Type) -> c.Expr:
    """fn a1 .. an (an ordinary application of a target function)."""
    out = fn
    for k, a in enumerate(args):
        out = c.App(out, a, ty=ty if k == len(args) - 1 else None)
    return out


def lams(params: list[tuple[str, Type]], body: c.Expr) -> c.Expr:
    """fun x1 .. xk -> body (ordinary target lambdas)."""
    out = body
    for name, t in reversed(params):
        out = c.Lam(name, out, ty=TFun(t, out.ty))
    return out


__all__ = ["Types", "copow", "COPOW", "tuple_type", "var", "prim", "zero", "plus", "total", "lapp", "lam", "is_zero",
           "pair", "tup", "fst", "snd", "let_tuple", "apply", "lams", "INT", "BOOL", "REAL", "UNIT", "ARRAY"]
