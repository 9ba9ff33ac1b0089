"""Reading printed target terms back (the printer's round trip).

The printer writes the linear fragment the way the paper does: applying a
backpropagator looks like application (`x' (y * a)`), the sum and zero of d
like `+` and `0`. Reading it back is type-directed: the text is parsed and
desugared as an expression (accepting `fun a -o t`, `~T` and `f@Real`),
then elaborated against the expected type, checking types downwards where
they are known, so that

    f e    is LinApp when f : ¬T          (else App)
    t + u  is DSum when t : d             (else the primitive +)
    0      is DZero where d is expected, the symbolic zero where Real is
           (a program's 0 at Real prints 0.0), else the Int literal

and `fun a -o t` is a backpropagator (¬T) where ¬T is expected or where its body
is the literal 0 or has type d, else a linear map T ⊸ U (chad's target, whose
linear maps are applied by the row `lapp`, so that application needs no choice).
"""
from __future__ import annotations

from dataclasses import replace

from ..model import core as c
from ..front.desugar import Desugarer, Fresh, names_in
from ..model.errors import DlTypeError
from ..front.infer import Mismatch, unify
from ..front.infer import Inferencer
from ..front.parser import parse_expr
from ..model.primitives import PRIMITIVES, zero
from ..model.spans import Source
from .check import TargetLanguage, freshen
from ..model.types import (BOOL, D, FLOAT, INT, LINEAR, REAL, STRING, UNIT, Scheme, TCtor, TFun, TList, TNeg, TTuple,
                           TVar, Type, linear, members, prune, substitute)


def parse_target(text: str, resolve, expected: Type, lang: TargetLanguage, in_scope=lambda: []) -> c.Expr:
    """A printed target term, as the core term it prints."""
    syntax = parse_expr(Source("<target>", text))
    term = Desugarer(resolve, Fresh(names_in(text)), in_scope, target=True).expr(syntax, frozenset())
    return _zeros(_Elaborate(lang).check(_with_instances(term), freshen(expected, {}), {}))


def _zeros(e: c.Expr) -> c.Expr:
    """Each `0` whose type came out Real is the symbolic zero; the others are Int literals. A `0` whose type
    is still a variable of a class without Int (Nested: the tangents of a list literal given to `array`) can
    only be Real."""
    if isinstance(e, c.Lit) and type(e.value) is int and e.value == 0:
        t = prune(e.ty)
        real = t == REAL or isinstance(t, TVar) and bool(t.constraint) and "Int" not in members(t.constraint)
        return zero() if real else replace(e, ty=INT)
    return c.map_children(e, _zeros)


def _with_instances(e: c.Expr) -> c.Expr:
    """Instances written `f@Real` arrive as syntax types; make them types."""
    conv = Inferencer({})

    def walk(t: c.Expr) -> c.Expr:
        match t:
            case c.Var(inst=inst) | c.Global(inst=inst) if inst and not isinstance(inst[0], (TVar,)) \
                    and hasattr(inst[0], "span"):
                return replace(t, inst=tuple(conv.convert(x) for x in inst))
        return c.map_children(t, walk)
    return walk(e)


class _Elaborate:
    def __init__(self, lang: TargetLanguage):
        self.lang = lang

    def fail(self, msg: str, e: c.Expr) -> DlTypeError:
        return DlTypeError(f"cannot read the target term: {msg}", e.span)

    def unify(self, a: Type, b: Type, e: c.Expr) -> None:
        try:
            unify(a, b)
        except Mismatch:
            raise self.fail("its types do not fit", e) from None

    def check(self, e: c.Expr, expected: Type, env: dict) -> c.Expr:
        """Elaborate `e` knowing its type."""
        match e:
            case c.Lit(0) if prune(expected) == D:
                return c.DZero(ty=D, span=e.span)
            case c.Lit(0) if type(e.value) is int and prune(expected) == REAL:
                return zero()
            case c.Lam(param, body):
                arg, res = TVar(), TVar()
                self.unify(TFun(arg, res), expected, e)
                return c.Lam(param, self.check(body, res, {**env, param: arg}), ty=expected, span=e.span)
            case c.LinLam(param, body):
                arg = TVar()
                ex = prune(expected)
                if isinstance(ex, TCtor) and ex.name == LINEAR:       # a linear map T ⊸ U
                    self.unify(linear(arg, TVar()), ex, e)
                    return c.LinLam(param, self.check(body, prune(ex).args[1], {**env, param: arg}), ty=expected,
                                    span=e.span)
                if isinstance(ex, TVar) and not _answers_zero(body):  # its body decides
                    body_e = self.infer(body, {**env, param: arg})
                    if prune(body_e.ty) != D:
                        self.unify(linear(arg, body_e.ty), expected, e)
                        return c.LinLam(param, body_e, ty=expected, span=e.span)
                    self.unify(TNeg(arg), expected, e)
                    return c.LinLam(param, body_e, ty=expected, span=e.span)
                self.unify(TNeg(arg), expected, e)
                return c.LinLam(param, self.check(body, D, {**env, param: arg}), ty=expected, span=e.span)
            case c.If(cond, then, else_):
                return c.If(self.check(cond, BOOL, env), self.check(then, expected, env),
                            self.check(else_, expected, env), ty=expected, span=e.span)
            case c.Let() | c.LetRec() | c.LetTuple():
                return self.let(e, env, lambda body, inner: self.check(body, expected, inner))
            case c.Tuple(items):
                parts = tuple(TVar() for _ in items)
                self.unify(TTuple(parts), expected, e)
                return c.Tuple(tuple(self.check(i, t, env) for i, t in zip(items, parts)), ty=expected, span=e.span)
        out = self.infer(e, env)
        self.unify(out.ty, expected, e)
        return out

    def infer(self, e: c.Expr, env: dict) -> c.Expr:
        """Elaborate `e`, finding its type."""
        match e:
            case c.Var(name, inst):
                key = name if not inst else (name, inst)
                if key not in env:
                    raise self.fail(f"unbound name `{name}`", e)
                return replace(e, ty=env[key])
            case c.Global(name, module, inst):
                return replace(e, ty=freshen(self.lang.global_type(module, name, inst), {}))
            case c.Lit(value):
                # a real literal is a Real or, elementwise, an Array (docs/reference.md §4)
                ty = BOOL if isinstance(value, bool) else INT if isinstance(value, int) else \
                    TVar(0, FLOAT) if isinstance(value, float) else STRING if isinstance(value, str) else UNIT
                if type(value) is int and value == 0:
                    ty = TVar()  # Int, or the symbolic zero if it has to be Real (see _zeros)
                return replace(e, ty=ty)
            case c.App():
                return self.application(e, env)
            case c.Prim("+", (l, r)):
                left = self.infer(l, env)
                if prune(left.ty) == D:
                    return c.DSum(left, self.check(r, D, env), ty=D, span=e.span)
                return self.primitive(e, env, first=left)
            case c.Prim():
                return self.primitive(e, env)
            case c.Let() | c.LetRec() | c.LetTuple():
                return self.let(e, env, lambda body, inner: self.infer(body, inner))
            case c.List(items):
                elem = TVar()
                return c.List(tuple(self.check(i, elem, env) for i in items), ty=TList(elem), span=e.span)
            case c.Annot(expr, _):
                return self.infer(expr, env)
        t = TVar()
        return self.check(e, t, env)

    def application(self, e: c.App, env: dict) -> c.Expr:
        """f a1 ... an: linear when f : ¬T; otherwise the lambdas among the arguments last, so the
        other arguments have fixed the types of their parameters."""
        args = []
        head: c.Expr = e
        while isinstance(head, c.App):
            args.append(head)
            head = head.fn
        args.reverse()
        fn_e = self.infer(head, env)
        ft = prune(fn_e.ty)
        if isinstance(ft, TNeg) and len(args) == 1:
            return c.LinApp(fn_e, self.check(args[0].arg, ft.item, env), ty=D, span=e.span)
        params = []
        t = ft
        for node in args:
            arg_t, res = TVar(), TVar()
            self.unify(TFun(arg_t, res), t, node)
            params.append(arg_t)
            t = prune(res)
        done: dict[int, c.Expr] = {}
        for k in sorted(range(len(args)), key=lambda k: isinstance(args[k].arg, c.Lam)):
            done[k] = self.check(args[k].arg, params[k], env)
        out = fn_e
        for k, node in enumerate(args):
            out = c.App(out, done[k], ty=None, span=node.span)
        return replace(out, ty=t)

    def primitive(self, e: c.Prim, env: dict, first: c.Expr | None = None) -> c.Expr:
        prim = PRIMITIVES[e.op]
        scheme = prim.scheme
        typed_deeper = prim.kind in ("ad", "custom")  # its arguments are values of this language
        if typed_deeper:
            scheme = Scheme(scheme.qvars, self.lang.ad_type(scheme.body))
        t = substitute(scheme.body, {v: TVar(0, v.constraint if not typed_deeper else frozenset())
                                     for v in scheme.qvars})
        params = []
        for _ in e.args:
            t = prune(t)
            assert isinstance(t, TFun)
            params.append(t.arg)
            t = t.result
        # arguments that are not lambdas first: they fix the types the lambdas' parameters need
        args: list = [None] * len(e.args)
        order = sorted(range(len(e.args)), key=lambda k: isinstance(e.args[k], c.Lam))
        for k in order:
            if k == 0 and first is not None:
                self.unify(first.ty, params[0], e.args[0])
                args[0] = first
            else:
                args[k] = self.check(e.args[k], params[k], env)
        return c.Prim(e.op, tuple(args), ty=t, span=e.span)

    def let(self, e: c.Expr, env: dict, body_fn) -> c.Expr:
        match e:
            case c.Let(name, bound, body, inst):
                b = self.infer(bound, env)
                rest = body_fn(body, {**env, _key(name, inst): b.ty})
                return c.Let(name, b, rest, inst, ty=rest.ty, span=e.span)
            case c.LetRec(name, bound, body, inst):
                t = TVar()
                inner = {**env, _key(name, inst): t}
                b = self.check(bound, t, inner)
                rest = body_fn(body, inner)
                return c.LetRec(name, b, rest, inst, ty=rest.ty, span=e.span)
            case c.LetTuple(names, bound, body):
                b = self.infer(bound, env)
                parts = tuple(TVar() for _ in names)
                self.unify(TTuple(parts), b.ty, e)
                rest = body_fn(body, {**env, **dict(zip(names, parts))})
                return c.LetTuple(names, b, rest, ty=rest.ty, span=e.span)
        raise AssertionError(e)


def _answers_zero(body: c.Expr) -> bool:
    """A body whose value, through its lets, is the literal 0: a zero backpropagator's (fun a -o 0)."""
    while isinstance(body, (c.Let, c.LetTuple, c.LetRec)):
        body = body.body
    return isinstance(body, c.Lit) and body.value == 0 and not isinstance(body.value, bool)


def _key(name: str, inst: tuple):
    return name if not inst else (name, inst)
