"""←D, the backpropagation transform of Brunel, Mazza and Pagani (POPL 2020).

On types it is a homomorphism except at Real (THEORY §1):

    ←D(Real) = Real * ¬Real        ←D(A -> B) = ←D(A) -> ←D(B)
    ←D(A * B) = ←D(A) * ←D(B)      ←D([A]) = [←D(A)]      ←D(Int) = Int, ...

On terms it is the identity on everything that does not touch a real
(variables, lambdas, application, lets, tuples, lists, `if`, and the
parametric built-ins map/fold/... — which is why higher-order programs need
no rules of their own). A real constant gets the zero backpropagator, and a
real primitive f(t1, ..., tk) with partial derivatives ∂i f (read from its
row of the primitive table) becomes

    let (x1, x1') = ←D(t1) in ... let (xk, xk') = ←D(tk) in
    (f(x1, ..., xk), fun a -o x1' (∂1 f * a) + ... + xk' (∂k f * a))

for example `x * y` becomes `(x * y, fun a -o x' (y * a) + y' (x * a))`.
Comparisons and conversions to Int read the primal component only
(`fst x < fst y`), so `if` takes the branch the source takes (THEORY §6).

The result is a term of the target language (lang/core.py's linear
fragment); lang/target_check.py checks ←D(Γ) ⊢ ←D(t) : ←D(A) on it.
"""
from __future__ import annotations

from .. import core as c
from ..desugar import Fresh
from ..primitives import PRIMITIVES
from ..types import BOOL, D, INT, REAL, TCon, TFun, TList, TNeg, TTuple, TVar, Type, prune

DUAL_REAL = TTuple((REAL, TNeg(REAL)))
BACKPROPAGATOR = TNeg(REAL)


def d_type(t: Type) -> Type:
    """←D on types."""
    t = prune(t)
    match t:
        case TCon("Real"):
            return DUAL_REAL
        case TCon() | TVar():
            return t
        case TFun(a, r):
            return TFun(d_type(a), d_type(r))
        case TTuple(items):
            return TTuple(tuple(d_type(i) for i in items))
        case TList(item):
            return TList(d_type(item))
    raise AssertionError(f"←D is not defined on {t}")


def variables_of(e: c.Expr) -> set[str]:
    """Every variable name bound or used in `e` (fresh names avoid them)."""
    names: set[str] = set()
    stack = [e]
    while stack:
        t = stack.pop()
        match t:
            case c.Var(name) | c.Let(name=name) | c.LetRec(name=name) | c.Lam(param=name) | c.LinLam(param=name):
                names.add(name)
            case c.LetTuple(names=ns):
                names.update(ns)
        stack.extend(c.children(t))
    return names


def zero_backpropagator(lin: str) -> c.LinLam:
    """fun a -o 0, the backpropagator of a constant."""
    return c.LinLam(lin, c.DZero(ty=D), ty=BACKPROPAGATOR)


def scale(d: c.Expr, a: c.Expr) -> c.Expr:
    """∂ * a, written as the paper writes it: `a` for ∂ = 1, `-a` for ∂ = -1."""
    if isinstance(d, c.Lit) and d.value == 1.0:
        return a
    if isinstance(d, c.Lit) and d.value == -1.0:
        return c.Prim("neg", (a,), ty=REAL)
    return c.Prim("*", (d, a), ty=REAL)


def transform(e: c.Expr) -> c.Expr:
    """←D of a specialised core term."""
    avoid = variables_of(e)
    lin = next(n for n in ("a", "ct", "ct1", "ct2", "ct3") if n not in avoid) if "a" in avoid else "a"
    avoid.add(lin)
    return _Backprop(Fresh(avoid, "x"), lin).term(e)


class _Backprop:
    def __init__(self, fresh: Fresh, lin: str):
        self.fresh = fresh
        self.lin = lin

    def term(self, e: c.Expr) -> c.Expr:
        ty = d_type(e.ty)
        match e:
            case c.Var() | c.Global():
                return _retype(e, ty)
            case c.Lit(value) if prune(e.ty) == REAL:
                return c.Tuple((c.Lit(value, ty=REAL, span=e.span), zero_backpropagator(self.lin)), ty=ty, span=e.span)
            case c.Lit():
                return _retype(e, ty)
            case c.Lam(param, body):
                return c.Lam(param, self.term(body), ty=ty, span=e.span)
            case c.App(fn, arg):
                return c.App(self.term(fn), self.term(arg), ty=ty, span=e.span)
            case c.Let(name, bound, body, inst):
                return c.Let(name, self.term(bound), self.term(body), inst, ty=ty, span=e.span)
            case c.LetRec(name, bound, body, inst):
                return c.LetRec(name, self.term(bound), self.term(body), inst, ty=ty, span=e.span)
            case c.LetTuple(names, bound, body):
                return c.LetTuple(names, self.term(bound), self.term(body), ty=ty, span=e.span)
            case c.If(cond, then, else_):
                return c.If(self.term(cond), self.term(then), self.term(else_), ty=ty, span=e.span)
            case c.Tuple(items):
                return c.Tuple(tuple(self.term(i) for i in items), ty=ty, span=e.span)
            case c.List(items):
                return c.List(tuple(self.term(i) for i in items), ty=ty, span=e.span)
            case c.Prim():
                return self.primitive(e, ty)
        raise AssertionError(f"←D has no rule for {type(e).__name__}")

    def primitive(self, e: c.Prim, ty: Type) -> c.Expr:
        prim = PRIMITIVES[e.op]
        args = tuple(self.term(a) for a in e.args)
        at_real = any(prune(a.ty) == REAL for a in e.args) or (prim.kind == "toreal")
        match prim.kind:
            case "real" if at_real:
                return self.real_rule(e, prim, args, ty)
            case "compare" if at_real:
                return c.Prim(e.op, tuple(_primal(a) for a in args), ty=BOOL, span=e.span)
            case "toint":
                return c.Prim(e.op, tuple(_primal(a) for a in args), ty=INT, span=e.span)
            case "toreal":
                value = c.Prim(e.op, args, ty=REAL, span=e.span)
                return c.Tuple((value, zero_backpropagator(self.lin)), ty=ty, span=e.span)
            case "real" | "compare" | "int" | "bool" | "structural" | "ad":
                return c.Prim(e.op, args, ty=ty, span=e.span)
        raise AssertionError(f"←D has no rule for the primitive {e.op!r} ({prim.kind})")

    def real_rule(self, e: c.Prim, prim, args: tuple[c.Expr, ...], ty: Type) -> c.Expr:
        """let (xi, xi') = ←D(ti) in (f(x1..xk), fun a -o Σ xi' (∂i f * a))."""
        if prim.partials is None:
            raise AssertionError(f"the primitive {e.op!r} has no derivative rule in the primitive table")
        binds = []
        primals, backs = [], []
        taken: set[str] = set()
        for k, (source_arg, arg) in enumerate(zip(e.args, args)):
            # Name the components after the source variable (the paper's x, x') unless that
            # could capture a variable of a later argument or repeats a name bound here.
            later = set()
            for other in args[k + 1:]:
                later |= {n for n, _ in c.free_locals(other)}
            x = source_arg.name if isinstance(source_arg, c.Var) and not source_arg.inst else None
            if x is None or {x, x + "'"} & (later | taken):
                x = self.fresh("x")
            x_bar = x + "'"
            taken |= {x, x_bar}
            binds.append(((x, x_bar), arg))
            primals.append(c.Var(x, ty=REAL))
            backs.append(c.Var(x_bar, ty=BACKPROPAGATOR))
        value = c.Prim(e.op, tuple(primals), ty=REAL, span=e.span)
        result: c.Expr = value
        result_name = None
        if prim.uses_result():
            result_name = self.fresh("r")
            result = c.Var(result_name, ty=REAL)
        a = c.Var(self.lin, ty=REAL)
        partials = prim.partials(*primals, result)
        contributions = [c.LinApp(back, scale(d, a), ty=D) for back, d in zip(backs, partials)]
        body = contributions[0]
        for more in contributions[1:]:
            body = c.DSum(body, more, ty=D)
        out: c.Expr = c.Tuple((result, c.LinLam(self.lin, body, ty=BACKPROPAGATOR)), ty=ty, span=e.span)
        if result_name is not None:
            out = c.Let(result_name, value, out, ty=ty, span=e.span)
        for (x, x_bar), arg in reversed(binds):
            out = c.LetTuple((x, x_bar), arg, out, ty=ty, span=e.span)
        return out


def _primal(dual: c.Expr) -> c.Expr:
    """The primal component of a dual number: fst (x, x')."""
    if prune(dual.ty) == DUAL_REAL:
        return c.Prim("fst", (dual,), ty=REAL)
    return dual


def _retype(e: c.Expr, ty: Type) -> c.Expr:
    from dataclasses import replace
    return replace(e, ty=ty)
