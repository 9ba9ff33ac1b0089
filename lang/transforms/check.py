"""The type checker of the transforms' target languages (docs/transforms.md, The target language).

Checks ←D(Γ) ⊢ ←D(t) : ←D(A): the transformed term's inferred type must be
the transformed type of the source term. The linear fragment is typed as

    Γ, a : T ⊢ t : d          Γ ⊢ f : ¬T   Γ ⊢ e : T
    ------------------        ------------------------      0 : d      t + u : d
    Γ ⊢ fun a -o t : ¬T       Γ ⊢ f e : d

and the linearity discipline is checked on every backpropagator's body: its
parameter is used linearly (it reaches the answer only through
multiplication by terms that do not mention it, negation, sums, and
backpropagator applications). ¬T has no class, so a backpropagator can be
applied, summed into d or passed, never compared or taken apart.

A failure here is a bug in a transform, not in the user's program: it is
reported as an internal error naming the rule that broke.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..front import wording as w
from ..front.infer import Inferencer, Mismatch, local_key, unify
from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlError
from ..model.primitives import Primitive
from ..model.types import D, TARGET_TYPES, Scheme, TFun, TNeg, TVar, Type, free_vars, prune, show_scheme, substitute


class TransformBug(AssertionError):
    """A transformed term that does not type-check: a bug in the transform."""


@dataclass
class TargetLanguage:
    """How a transform maps types, so the checker knows the transformed globals and primitives."""

    name: str
    d_type: Callable[[Type], Type]                  # the transform on types
    global_type: Callable[[str, str, tuple], Type]  # a transformed top-level definition's type
    checks: tuple = ()                              # more rules of this target, each run on the typed term
                                                    # (a transform's own discipline: TermTransform.checks)
    ad_args: bool = False                           # its differentiation primitives take each argument
                                                    # transformed (TermTransform.ad_args), not the arrow whole

    def ad_type(self, t: Type) -> Type:
        """A differentiation primitive's type in this language."""
        return ad_type(t, self.d_type) if self.ad_args else self.d_type(t)


class TargetInferencer(Inferencer):
    """Inference in a target language: the source rules, the linear rules above, the answer type `d` and
    `~T` in annotations, and the transformed types of definitions and differentiation primitives."""

    def __init__(self, lang: TargetLanguage):
        super().__init__({})
        self.lang = lang

    def infer_other(self, e: c.Expr) -> c.Expr:
        match e:
            case c.LinLam(param, body):                               # fun a -o t : ~T
                t = self.fresh()
                old = self.locals.bind(param, t)
                body_t = self.infer(body)
                self.locals.restore(param, old)
                self.expect(body_t, D, w.Named("the body of a linear abstraction `fun a -o t` must have the "
                                               "answer type d"))
                return replace(e, body=body_t, ty=TNeg(t))
            case c.LinApp(fn, arg):                                   # x' e : d
                fn_t, arg_t = self.infer(fn), self.infer(arg)
                t = self.fresh()
                self.expect(fn_t, TNeg(t), w.Named("only a backpropagator (of type ~T) can be applied linearly"))
                self.expect(arg_t, t, w.Named("a backpropagator is applied to an argument of the wrong type"))
                return replace(e, fn=fn_t, arg=arg_t, ty=D)
            case c.DZero():                                           # 0 : d
                return replace(e, ty=D)
            case c.DSum(left, right):                                 # t + u : d
                l_t, r_t = self.infer(left), self.infer(right)
                self.expect(l_t, D, w.Named("a sum of d must add values of type d"))
                self.expect(r_t, D, w.Named("a sum of d must add values of type d"))
                return replace(e, left=l_t, right=r_t, ty=D)
        return super().infer_other(e)

    def convert(self, t: s.TypeExpr) -> Type:
        match t:
            case s.TyName(name) if name in TARGET_TYPES:
                return TARGET_TYPES[name]
            case s.TyNeg(item):
                return TNeg(self.convert(item))
        return super().convert(t)

    def global_type(self, e: c.Global, module: str, name: str, inst: tuple) -> Type:
        """A transformed definition's type, its parametric variables instantiated afresh at each use."""
        return freshen(self.lang.global_type(module, name, inst), {})

    def primitive_scheme(self, prim: Primitive) -> Scheme:
        if prim.kind != "ad":
            return prim.scheme
        free = {v: TVar(0) for v in prim.scheme.qvars}  # Diff means nothing on transformed types
        return Scheme(tuple(free.values()), self.lang.ad_type(substitute(prim.scheme.body, free)))


def ad_type(t: Type, d_type: Callable[[Type], Type]) -> Type:
    """A differentiation primitive in a target language whose functions return pairs (ps, chad): each
    argument and the result transformed, the primitive still applied to all its arguments at once. (For →D
    and ←D the same as transforming the whole arrow; for the dualrev stages, which thread an ID supply
    through every arrow, not: they transform the arrow whole.)"""
    t = prune(t)
    if isinstance(t, TFun):
        return TFun(d_type(t.arg), ad_type(t.result, d_type))
    return d_type(t)


def infer_target(term: c.Expr, lang: TargetLanguage, env: dict | None = None) -> Type:
    """The type of a target term (unification with the linear rules); `env`: its free variables' types."""
    inf = TargetInferencer(lang)
    for name, t in (env or {}).items():
        inf.locals[name] = t
    try:
        typed = inf.infer(term)
    except DlError as e:
        raise TransformBug(f"{lang.name}: the transformed term does not type-check: {e.message}") from None
    check_linear(term)
    for rule in lang.checks:
        rule(typed)
    return typed.ty


def free_variable_types(source: c.Expr, lang: TargetLanguage) -> dict:
    """←D(Γ) for a source term's free variables (their types read off the term's own nodes)."""
    free = c.free_locals(source)
    out: dict = {}
    stack = [source]
    while stack and len(out) < len(free):
        t = stack.pop()
        if isinstance(t, c.Var) and (t.name, t.inst) in free:
            out.setdefault(local_key(t.name, t.inst), lang.d_type(t.ty))
        stack.extend(c.children(t))
    return out


def freshen(t: Type, sub: dict) -> Type:
    """`t` with its type variables replaced by fresh ones (the checker never binds a source program's)."""
    for v in free_vars(t):
        if v not in sub:
            sub[v] = TVar(v.level, v.constraint)
    return substitute(t, sub)


def check(term: c.Expr, source_type: Type, lang: TargetLanguage, source: c.Expr | None = None) -> Type:
    """Check ←D(Γ) ⊢ ←D(t) : ←D(A); return the target type. `source`: t, when it has free variables."""
    sub: dict = {}
    env = None
    if source is not None:
        env = {name: freshen(t, sub) for name, t in free_variable_types(source, lang).items()}
    found = infer_target(term, lang, env)
    expected = freshen(lang.d_type(source_type), sub)
    try:
        unify(expected, found)
    except Mismatch:
        raise TransformBug(f"{lang.name}: the transformed term has type {show_scheme(found)}, "
                           f"but the transform of the source type is {show_scheme(expected)}") from None
    return expected


# ---- linearity --------------------------------------------------------------------


def check_linear(term: c.Expr) -> None:
    """Every backpropagator `fun a -o t` uses `a` linearly in `t`."""
    stack = [term]
    while stack:
        t = stack.pop()
        if isinstance(t, c.LinLam):
            _linear_d(t.body, t.param)
        stack.extend(c.children(t))


def _mentions(e: c.Expr, a: str) -> bool:
    return (a, ()) in c.free_locals(e)


def _linear_d(t: c.Expr, a: str) -> None:
    match t:
        case c.DZero():
            return
        case c.DSum(l, r):
            _linear_d(l, a)
            _linear_d(r, a)
        case c.LinApp(fn, arg):
            if _mentions(fn, a):
                raise TransformBug(f"the parameter `{a}` of a backpropagator is used to choose a backpropagator")
            _linear_real(arg, a)
        case c.If(cond, then, else_):
            if _mentions(cond, a):
                raise TransformBug(f"the parameter `{a}` of a backpropagator is inspected by `if`")
            _linear_d(then, a)
            _linear_d(else_, a)
        case c.Let(_, bound, body) | c.LetTuple(bound=bound, body=body):
            if _mentions(bound, a):
                raise TransformBug(f"the parameter `{a}` of a backpropagator is bound to a variable")
            _linear_d(body, a)
        case _:
            raise TransformBug(f"a backpropagator's body contains {type(t).__name__}, which is not a sum of "
                               "backpropagator applications")


def _linear_real(e: c.Expr, a: str) -> None:
    """`e` is a linear function of `a` (and mentions it)."""
    match e:
        case c.Var(name) if name == a:
            return
        case c.Prim("neg", (x,)):
            _linear_real(x, a)
            return
        case c.Prim("*", (x, y)):
            if _mentions(x, a) != _mentions(y, a):
                _linear_real(x if _mentions(x, a) else y, a)
                return
        case c.Prim("/", (x, y)) if not _mentions(y, a):
            _linear_real(x, a)
            return
        case c.Prim("+" | "-", (x, y)):
            _linear_real(x, a)
            _linear_real(y, a)
            return
    raise TransformBug(f"the parameter `{a}` of a backpropagator is used non-linearly")


linear_real = _linear_real  # for the disciplines of other targets (TargetLanguage.checks)

__all__ = ["check", "infer_target", "check_linear", "linear_real", "TargetLanguage", "TransformBug", "substitute"]
