"""The type checker of the transforms' target languages (docs/transforms.md, The target language).

Checks ←D(Γ) ⊢ ←D(t) : ←D(A): the transformed term's inferred type must be
the transformed type of the source term. The linear fragment is typed as

    Γ, a : T ⊢ t : d          Γ ⊢ f : ¬T   Γ ⊢ e : T
    ------------------        ------------------------      0 : d      t + u : d
    Γ ⊢ fun a -o t : ¬T       Γ ⊢ f e : d

    Γ, a : T ⊢ t : U   (U not d)
    ----------------------------      a linear map between cotangent types (chad); applied by the
    Γ ⊢ fun a -o t : T ⊸ U            target-only row `lapp : (T ⊸ U) -> T -> U`

(¬T is T ⊸ d: the unifier identifies them), and the linearity discipline is
checked on every linear abstraction's body. A backpropagator's (type ¬T):
its parameter reaches the answer only through multiplication by terms that
do not mention it, negation, sums, and backpropagator applications. A linear
map's (type T ⊸ U), structurally: the parameter, and the variables bound to
terms that use it, appear only in the linear positions of the rows that
declare them (`Primitive.linear`: lplus, lscale, lapp, fst, snd, ...), in
tuples, and in the bodies of lets and ifs — never in a test, never in a
non-linear argument, and no constant stands where a linear term must. ¬T and
T ⊸ U have no class, so a linear map can be applied, summed or passed, never
compared or taken apart.

A failure here is a bug in a transform, not in the user's program: it is
reported as an internal error naming the rule that broke.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..front import wording as w
from ..front.infer import Inferencer, Mismatch, local_key, unify
from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlError
from ..model.primitives import PRIMITIVES, Primitive
from ..model.nodes import replace  # dataclasses.replace, quick for nodes
from ..model.types import (D, LINEAR, TARGET_TYPES, Scheme, TCtor, TFun, TNeg, TVar, Type, free_vars, linear, prune,
                           show_scheme, substitute)


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
            case c.LinLam(param, body):                               # fun a -o t : ~T, or T -o U
                t = self.fresh()
                old = self.locals.bind(param, t)
                body_t = self.infer(body)
                self.locals.restore(param, old)
                if prune(body_t.ty) == D:
                    return replace(e, body=body_t, ty=TNeg(t))
                return replace(e, body=body_t, ty=linear(t, body_t.ty))
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
        if prim.kind not in ("ad", "custom"):
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
    check_linear(typed)
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
    """Every linear abstraction `fun a -o t` uses `a` linearly in `t` (`term` typed by inference: a
    backpropagator's body is d, a linear map's is not)."""
    stack = [term]
    while stack:
        t = stack.pop()
        if isinstance(t, c.LinLam):
            if isinstance(prune(t.ty), TCtor):
                _linear_map(t.body, frozenset({t.param}))
            else:
                _linear_d(t.body, t.param)
        stack.extend(c.children(t))


def _uses(e: c.Expr, names: frozenset) -> bool:
    return any(n in names for n, _ in c.free_locals(e))


def _linear_map(t: c.Expr, lin: frozenset) -> None:
    """`t` is linear in the variables `lin` (a linear map's parameter and the variables bound to linear terms):
    built from them, the rows' linear positions, tuples, lets and ifs."""
    match t:
        case c.Var(name) if name in lin:
            return
        case c.Prim(op, args) if PRIMITIVES[op].linear is not None:
            for k, a in enumerate(args):
                if k in PRIMITIVES[op].linear:
                    _linear_map(a, lin)
                elif _uses(a, lin):
                    raise TransformBug(f"a linear map's parameter reaches the non-linear argument {k + 1} of `{op}`")
            return
        case c.Tuple(items):
            for i in items:
                _linear_map(i, lin)
            return
        case c.Let(name, bound, body):
            linear_bound = _linear_binding(bound, lin)
            _linear_map(body, (lin | {name}) if linear_bound else (lin - {name}))
            return
        case c.LetTuple(names, bound, body):
            linear_bound = _linear_binding(bound, lin)
            _linear_map(body, (lin | set(names)) if linear_bound else (lin - set(names)))
            return
        case c.If(cond, then, else_):
            if _uses(cond, lin):
                raise TransformBug("a linear map's parameter is inspected by `if`")
            _linear_map(then, lin)
            _linear_map(else_, lin)
            return
    raise TransformBug(f"a linear map's body has {_describe(t)} where a term linear in its parameter must be")


def _linear_binding(bound: c.Expr, lin: frozenset) -> bool:
    """Whether a let binds a linear term (one that uses the linear variables, which must then be linear, or one
    built from zeros and linear rows only) rather than a value the linear map merely reads."""
    if _uses(bound, lin):
        _linear_map(bound, lin)
        return True
    try:
        _linear_map(bound, lin)
        return True
    except TransformBug:
        return False


def _describe(t: c.Expr) -> str:
    match t:
        case c.Prim(op):
            return f"`{op}`, which is not linear"
        case c.Var(name):
            return f"the variable `{name}`, which is not linear"
    return f"a {type(t).__name__}"


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
        case c.Prim(op, (fns, arg)) if PRIMITIVES[op].effect:   # dApplyList xs' (unconcat k xs a)
            if _mentions(fns, a):
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
        case c.Prim(op, args) if PRIMITIVES[op].linear or PRIMITIVES[op].bilinear:
            # an array operation linear in the arguments that mention `a` (matmulCtA w x a, reshape s a)
            row = PRIMITIVES[op]
            mentioning = [k for k, x in enumerate(args) if _mentions(x, a)]
            if mentioning and (len(mentioning) == 1 if row.bilinear else all(k in row.linear for k in mentioning)):
                for k in mentioning:
                    _linear_real(args[k], a)
                return
    raise TransformBug(f"the parameter `{a}` of a backpropagator is used non-linearly")


linear_real = _linear_real  # for the disciplines of other targets (TargetLanguage.checks)

__all__ = ["check", "infer_target", "check_linear", "linear_real", "TargetLanguage", "TransformBug", "substitute",
           "ad_type"]
