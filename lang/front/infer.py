"""Hindley–Milner type inference with let-polymorphism and class constraints (SPEC §5).

Algorithm W with mutable type variables and Rémy's levels for cheap
generalisation. Every returned node carries its type in `ty`. Top-level
definitions are inferred strongly-connected component by component, so
mutually recursive definitions are monomorphic among themselves and
polymorphic to everything after them.

Constraints ride on type variables (lang/types.py): a literal `2` has a fresh
`Num` variable, `==` asks for `Eq`, `grad` asks for `Diff`; unifying a
constrained variable with a type checks the type belongs to the class
(tuples and lists are `Diff` when their parts are; functions never are).
Numeric defaulting to Real happens where SPEC §5 says: in the type of `main`
and of a REPL expression (see `default_numeric`), and for variables that no
type mentions (lang/mono.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlNameError, DlTypeError
from ..model.primitives import PRIMITIVES
from ..model.spans import Span
from ..model.types import (BASE_TYPES, BOOL, CLASS_LEVELS, CLASS_NAMES, D, DIFF, EQ, NONE, NUM, REAL, UNIT, Namer, instance_name,
                    Scheme, TCon, TFun, TList, TNeg, TTuple, TVar, Type, free_vars, prune, show, show_scheme)

_MISSING = object()


class Mismatch(Exception):
    """Two types do not unify (internal; turned into a DlTypeError with words and a span)."""

    def __init__(self, why: str = "", offending: Type | None = None):
        super().__init__(why)
        self.why = why
        self.offending = offending


@dataclass(frozen=True)
class TypedDef:
    name: str
    module: str
    expr: c.Expr
    scheme: Scheme
    span: Span
    name_span: Span


def snippet(span: Span, limit: int = 40) -> str:
    """The source text under `span`, shortened, for messages."""
    if span.source is None:
        return "this expression"
    line = span.source.line(span.line)
    end = span.end_col - 1 if span.line == span.end_line else len(line)
    stop = min(end, span.col - 1 + 2 * limit)  # spans can cover a whole long line: look at a prefix
    text = " ".join(line[span.col - 1 : stop].split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    elif stop < end or span.line != span.end_line:
        text += " ..."
    return f"`{text}`"


# ---- unification -------------------------------------------------------------


def unify(a: Type, b: Type) -> None:
    a, b = prune(a), prune(b)
    if a is b:
        return
    if isinstance(a, TVar):
        _bind(a, b)
    elif isinstance(b, TVar):
        _bind(b, a)
    elif isinstance(a, TCon) and isinstance(b, TCon):
        if a.name != b.name:
            raise Mismatch()
    elif isinstance(a, TFun) and isinstance(b, TFun):
        unify(a.arg, b.arg)
        unify(a.result, b.result)
    elif isinstance(a, TTuple) and isinstance(b, TTuple):
        if len(a.items) != len(b.items):
            raise Mismatch()
        for x, y in zip(a.items, b.items):
            unify(x, y)
    elif isinstance(a, TList) and isinstance(b, TList):
        unify(a.item, b.item)
    elif isinstance(a, TNeg) and isinstance(b, TNeg):
        unify(a.item, b.item)
    else:
        raise Mismatch()


def _bind(v: TVar, t: Type) -> None:
    if isinstance(t, TVar):
        t.level = min(t.level, v.level)
        t.constraint = max(t.constraint, v.constraint)
        v.link = t
        return
    for w in free_vars(t):
        if w is v:
            raise Mismatch("infinite")
        w.level = min(w.level, v.level)
    enforce(t, v.constraint)
    v.link = t


def enforce(t: Type, level: int) -> None:
    """Check that `t` belongs to the class `level`, pushing the class into its variables."""
    if level == NONE:
        return
    t = prune(t)
    match t:
        case TVar():
            t.constraint = max(t.constraint, level)
        case TCon(name):
            allowed = {NUM: ("Int", "Real"), EQ: ("Int", "Real", "Bool"), DIFF: tuple(BASE_TYPES)}[level]
            if name not in allowed:
                raise Mismatch(CLASS_NAMES[level], t)
        case TTuple(items) if level == DIFF:
            for i in items:
                enforce(i, level)
        case TList(item) if level == DIFF:
            enforce(item, level)
        case _:
            raise Mismatch(CLASS_NAMES[level], t)


_CLASS_WORDS = {
    "Num": "a number type (Int or Real)",
    "Eq": "comparable with == (Int, Real or Bool)",
    "Diff": "differentiable data (Real, Int, Bool, Unit, or tuples and lists of them)",
}


# what an expression whose type is still a class variable is: `1` "is a number (Int or Real)"
_IS_IN_CLASS = {
    NUM: "is a number (Int or Real)",
    EQ: "is compared with == (so it is Int, Real or Bool)",
    DIFF: "is differentiated (so it is differentiable data)",
}


def _occurs(part: Type, whole: Type) -> bool:
    """Whether `part` is `whole` or one of its components."""
    whole = prune(whole)
    if whole is part or whole == part:
        return True
    match whole:
        case TFun(a, r):
            return _occurs(part, a) or _occurs(part, r)
        case TTuple(items):
            return any(_occurs(part, i) for i in items)
        case TList(item) | TNeg(item):
            return _occurs(part, item)
    return False


def default_numeric(t: Type) -> None:
    """Fix every open Num/Eq/Diff variable of `t` to Real (SPEC §5: main, REPL expressions)."""
    for v in free_vars(t):
        if v.constraint > NONE:
            v.link = REAL


# ---- inference ---------------------------------------------------------------


class Inferencer:
    """Infers the types of terms in an environment of top-level schemes."""

    def __init__(self, globals_: dict[tuple[str, str], Scheme], target: bool = False, global_type=None,
                 prim_scheme=None):
        self.globals = globals_
        self.locals: dict[str, Scheme | Type] = {}
        self.level = 1
        self.annot_vars: dict[str, TVar] = {}
        self.target = target                  # the target language: linear terms, ~T and d allowed
        self.global_type = global_type        # target: (module, name, inst) -> the transformed global's type
        self.prim_scheme = prim_scheme        # target: primitive -> its scheme in this language

    def fresh(self, constraint: int = NONE) -> TVar:
        return TVar(self.level, constraint)

    # -- errors
    def mismatch(self, err: Mismatch, span: Span, expected: Type, actual: Type, what: str) -> DlTypeError:
        """Words for a failed unification. `what` may use {expected} and {actual}."""
        namer = Namer()
        exp, act = show(expected, namer), show(actual, namer)
        if err.why == "infinite":
            return DlTypeError(f"{what.format(expected=exp, actual=act)}: this would need an infinite type "
                               f"({exp} = {act})", span)
        if err.why in _CLASS_WORDS:
            return self.class_mismatch(err, span, expected, actual, what, namer)
        if "{" in what:
            return DlTypeError(what.format(expected=exp, actual=act), span)
        return DlTypeError(f"{what}: expected {exp}, but it has type {act}", span)

    def class_mismatch(self, err: Mismatch, span: Span, expected: Type, actual: Type, what: str,
                       namer: Namer) -> DlTypeError:
        """A type met a class it is not in: `true + 1` (Bool is not Num), or `if 1 then ...` (1 is a number).

        Either the expression's own type is outside the class its context asks
        for, or the expression carries the class (a literal is a number) and the
        context asks for a type outside it; the words differ.
        """
        exp, act = show(expected, namer), show(actual, namer)
        words = _CLASS_WORDS[err.why]
        bad = show(err.offending, namer) if err.offending is not None else act
        if "differentiates" in what:
            return DlTypeError(f"{what.format(expected=exp, actual=act)}, and {bad} is not {words}", span)
        if err.offending is None or _occurs(err.offending, actual):
            own_namer = Namer()
            plain = show(actual, own_namer)
            act = show_scheme(actual, namer=own_namer)
            bad = show(err.offending, own_namer) if err.offending is not None else plain
            if bad == plain:
                return DlTypeError(f"{snippet(span)} has type {act}, which is not {words}", span)
            return DlTypeError(f"{snippet(span)} has type {act}, and {bad} in it is not {words}", span)
        own = prune(actual)
        if isinstance(own, TVar) and own.constraint > NONE and "has type {actual}" in what:
            said = what.replace("has type {actual}", _IS_IN_CLASS[own.constraint])
            return DlTypeError(said.format(expected=exp, actual=act), span)
        act = show_scheme(actual, namer=namer)
        if "{" in what:
            return DlTypeError(what.format(expected=exp, actual=act), span)
        return DlTypeError(f"{what}: expected {exp}, but it has type {act}", span)

    def expect(self, node: c.Expr, expected: Type, what: str) -> None:
        """Unify the type of `node` with `expected`, or report `what` at the node's span."""
        try:
            unify(expected, node.ty)
        except Mismatch as e:
            raise self.mismatch(e, node.span, expected, node.ty, what) from None

    def expect_annotation(self, t: Type, annot: s.TypeExpr, e: c.Expr) -> None:
        written = self.convert(annot)
        try:
            unify(written, t)
        except Mismatch as err:
            raise self.mismatch(err, annot.span, written, t, "the parameter's annotation") from None

    # -- schemes
    def instantiate(self, scheme: Scheme) -> Type:
        if not scheme.qvars:
            return scheme.body
        sub = {v: TVar(self.level, v.constraint) for v in scheme.qvars}
        from ..model.types import substitute
        return substitute(scheme.body, sub)

    def generalize(self, t: Type) -> Scheme:
        return Scheme(tuple(v for v in free_vars(t) if v.level > self.level), t)

    def bind_local(self, name: str, value):
        old = self.locals.get(name, _MISSING)
        self.locals[name] = value
        return old

    def restore(self, name: str, old) -> None:
        if old is _MISSING:
            del self.locals[name]
        else:
            self.locals[name] = old

    # -- annotations
    def convert(self, t: s.TypeExpr) -> Type:
        """A written type as a Type; its 'a variables are shared within one definition."""
        match t:
            case s.TyName(name):
                if name in BASE_TYPES:
                    return BASE_TYPES[name]
                if name == "d" and self.target:
                    return D
                raise DlNameError(f"unknown type `{name}` (types are Real, Int, Bool, Unit, T -> T, T * T, [T], 'a)",
                                  t.span)
            case s.TyVar(name):
                if name not in self.annot_vars:
                    self.annot_vars[name] = self.fresh()
                return self.annot_vars[name]
            case s.TyFun(a, r):
                return TFun(self.convert(a), self.convert(r))
            case s.TyTuple(items):
                return TTuple(tuple(self.convert(i) for i in items))
            case s.TyList(item):
                return TList(self.convert(item))
            case s.TyNeg(item) if self.target:
                return TNeg(self.convert(item))
            case s.TyNeg():
                raise DlTypeError("linear negation ~T appears only in the types of transformed terms", t.span)
            case s.TyScheme(constraints, body):
                for cls, var in constraints:
                    if cls not in CLASS_LEVELS:
                        raise DlNameError(f"unknown class `{cls}` (classes are Num, Eq, Diff)", t.span)
                    v = self.annot_vars.setdefault(var, self.fresh())
                    try:
                        enforce(v, CLASS_LEVELS[cls])
                    except Mismatch:
                        raise DlTypeError(f"'{var} cannot be in class {cls}", t.span) from None
                return self.convert(body)
        raise AssertionError(t)

    # -- terms
    def infer(self, e: c.Expr) -> c.Expr:
        """`e` with its type, and the types of all its subterms, filled in."""
        match e:
            case c.Var(name, inst):
                found = self.locals.get(_local_key(name, inst))
                if found is None:
                    raise DlNameError(f"unbound name `{name}`", e.span)
                ty = self.instantiate(found) if isinstance(found, Scheme) else found
                return replace(e, ty=ty)
            case c.Global(name, module, inst) if self.global_type is not None:
                return replace(e, ty=self.global_type(module, name, inst))
            case c.Global(name, module):
                scheme = self.globals.get((module, name))
                if scheme is None:
                    raise DlNameError(f"unbound name `{name}`", e.span)
                return replace(e, ty=self.instantiate(scheme))
            case c.Lit(value):
                return replace(e, ty=_literal_type(value, self))
            case c.Lam(param, body):
                t = self.fresh()
                if e.annot is not None:
                    self.expect_annotation(t, e.annot, e)
                old = self.bind_local(param, t)
                body_t = self.infer(body)
                self.restore(param, old)
                return replace(e, body=body_t, ty=TFun(t, body_t.ty))
            case c.App(fn, arg):
                return self.application(e, fn, arg)
            case c.Let(name, bound, body, inst):
                key = _local_key(name, inst)
                self.level += 1
                bound_t = self.infer(bound)
                self.level -= 1
                scheme = self.generalize(bound_t.ty)
                old = self.bind_local(key, scheme)
                body_t = self.infer(body)
                self.restore(key, old)
                return replace(e, bound=bound_t, body=body_t, qvars=scheme.constrained, ty=body_t.ty)
            case c.LetRec(name, bound, body, inst):
                key = _local_key(name, inst)
                self.level += 1
                t = self.fresh()
                old = self.bind_local(key, t)
                bound_t = self.infer(bound)
                self.expect(bound_t, t, f"the recursive function `{name}`")
                self.level -= 1
                scheme = self.generalize(t)
                self.locals[key] = scheme
                body_t = self.infer(body)
                self.restore(key, old)
                return replace(e, bound=bound_t, body=body_t, qvars=scheme.constrained, ty=body_t.ty)
            case c.LetTuple(names, bound, body):
                bound_t = self.infer(bound)
                parts = tuple(self.fresh() for _ in names)
                self.expect(bound_t, TTuple(parts), f"a pattern of {len(names)} components needs a tuple of "
                            f"{len(names)}, but {snippet(bound.span)} does not fit")
                olds = [self.bind_local(n, t) for n, t in zip(names, parts)]
                body_t = self.infer(body)
                for n, old in reversed(list(zip(names, olds))):
                    self.restore(n, old)
                return replace(e, bound=bound_t, body=body_t, ty=body_t.ty)
            case c.If(cond, then, else_):
                cond_t = self.infer(cond)
                self.expect(cond_t, BOOL, f"the condition of `if` must be Bool, but {_esc(snippet(cond.span))} has type {{actual}}")
                then_t = self.infer(then)
                else_t = self.infer(else_)
                self.expect(else_t, then_t.ty, "the branches of `if` must have one type, but the `then` branch "
                            "has type {expected} and the `else` branch has type {actual}")
                return replace(e, cond=cond_t, then=then_t, else_=else_t, ty=then_t.ty)
            case c.Tuple(items):
                items_t = tuple(self.infer(i) for i in items)
                return replace(e, items=items_t, ty=TTuple(tuple(i.ty for i in items_t)))
            case c.List(items):
                elem = self.fresh()
                items_t = []
                for k, item in enumerate(items):
                    it = self.infer(item)
                    self.expect(it, elem, f"list elements must all have one type, but element {k + 1} "
                                f"{_esc(snippet(item.span))} has type {{actual}} and the ones before it {{expected}}")
                    items_t.append(it)
                return replace(e, items=tuple(items_t), ty=TList(elem))
            case c.Prim(op, args):
                return self.primitive(e, op, args)
            case c.Annot(expr, t):
                expr_t = self.infer(expr)
                self.expect(expr_t, self.convert(t), f"{_esc(snippet(expr.span))} has type {{actual}}, "
                            "not the annotated {expected}")
                return expr_t
            case c.LinLam(param, body) if self.target:
                t = self.fresh()
                old = self.bind_local(param, t)
                body_t = self.infer(body)
                self.restore(param, old)
                self.expect(body_t, D, "the body of a linear abstraction `fun a -o t` must have the answer type d")
                return replace(e, body=body_t, ty=TNeg(t))
            case c.LinApp(fn, arg) if self.target:
                fn_t, arg_t = self.infer(fn), self.infer(arg)
                t = self.fresh()
                self.expect(fn_t, TNeg(t), "only a backpropagator (of type ~T) can be applied linearly")
                self.expect(arg_t, t, "a backpropagator is applied to an argument of the wrong type")
                return replace(e, fn=fn_t, arg=arg_t, ty=D)
            case c.DZero() if self.target:
                return replace(e, ty=D)
            case c.DSum(left, right) if self.target:
                l_t, r_t = self.infer(left), self.infer(right)
                self.expect(l_t, D, "a sum of d must add values of type d")
                self.expect(r_t, D, "a sum of d must add values of type d")
                return replace(e, left=l_t, right=r_t, ty=D)
            case c.LinLam() | c.LinApp() | c.DZero() | c.DSum():
                raise DlTypeError("linear terms appear only in transformed programs", e.span)
        raise AssertionError(e)

    def application(self, e: c.App, fn: c.Expr, arg: c.Expr) -> c.Expr:
        fn_t = self.infer(fn)
        arg_t = self.infer(arg)
        ft = prune(fn_t.ty)
        if isinstance(ft, TFun):
            self.expect(arg_t, ft.arg, f"{_esc(snippet(fn.span))} expects an argument of type {{expected}}, but "
                        f"{_esc(snippet(arg.span))} has type {{actual}}")
            return replace(e, fn=fn_t, arg=arg_t, ty=ft.result)
        result = self.fresh()
        try:
            unify(ft, TFun(arg_t.ty, result))
        except Mismatch as err:
            if err.why == "infinite":  # `g g`: g would be a function taking itself
                what = f"{_esc(snippet(fn.span))} cannot be applied to {_esc(snippet(arg.span))}"
                raise self.mismatch(err, arg.span, ft, TFun(arg_t.ty, result), what) from None
            raise DlTypeError(f"{snippet(fn.span)} has type {show_scheme(ft)}; it is not a function and cannot be "
                              "applied to an argument", fn.span) from None
        return replace(e, fn=fn_t, arg=arg_t, ty=result)

    def primitive(self, e: c.Prim, op: str, args: tuple[c.Expr, ...]) -> c.Expr:
        prim = PRIMITIVES[op]
        t = self.instantiate(self.prim_scheme(prim) if self.prim_scheme else prim.scheme)
        args_t = []
        shown = _op_name(op)
        for k, a in enumerate(args):
            t = prune(t)
            at = self.infer(a)
            assert isinstance(t, TFun)
            self.expect(at, t.arg, _argument_words(prim, shown, k, a))
            args_t.append(at)
            t = t.result
        return replace(e, args=tuple(args_t), ty=t)

    # -- top level
    def infer_group(self, defs: list, default_main: bool) -> list[TypedDef]:
        """Infer one strongly connected group of definitions and generalise them together."""
        self.level = 1
        placeholders = {}
        for d in defs:
            placeholders[(d.module, d.name)] = TVar(self.level)
            self.globals[(d.module, d.name)] = Scheme((), placeholders[(d.module, d.name)])
        typed = []
        for d in defs:
            self.annot_vars = {}
            body = self.infer(d.expr)
            self.expect(body, placeholders[(d.module, d.name)], f"the definition of `{d.name}`")
            typed.append((d, body))
        self.level = 0
        out = []
        for d, body in typed:
            if default_main and d.name == "main":
                default_numeric(body.ty)
            scheme = Scheme(tuple(v for v in free_vars(body.ty) if v.level > 0), body.ty)
            self.globals[(d.module, d.name)] = scheme
            out.append(TypedDef(d.name, d.module, body, scheme, d.span, d.name_span))
        self.level = 1
        return out


def _local_key(name: str, inst: tuple) -> str:
    """Specialised local bindings (`sq@Int`) are distinct variables."""
    if not inst:
        return name
    return instance_name(name, inst)


def _esc(text: str) -> str:
    """Source text inside a message template: braces kept literally."""
    return text.replace("{", "{{").replace("}", "}}")


def _literal_type(value, inf: Inferencer) -> Type:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return inf.fresh(NUM)
    if isinstance(value, float):
        return REAL
    return UNIT


def _op_name(op: str) -> str:
    return "unary -" if op == "neg" else f"`{op}`"


def _argument_words(prim, shown: str, k: int, arg: c.Expr) -> str:
    if prim.kind == "ad" and k == 0:
        return (f"{shown} differentiates functions of type {{expected}}, but the function "
                f"{_esc(snippet(arg.span))} has type {{actual}}")
    if prim.kind == "ad" and k == 1:
        return f"the function given to {shown} takes {{expected}}, but the point {_esc(snippet(arg.span))} " \
               "has type {actual}"
    if prim.kind == "ad":
        return f"the tangent given to {shown} must have the type of the point, {{expected}}, but " \
               f"{_esc(snippet(arg.span))} has type {{actual}}"
    if prim.arity == 1:
        return f"the argument of {shown} must have type {{expected}}, but {_esc(snippet(arg.span))} has type {{actual}}"
    ordinal = ["first", "second", "third", "fourth"][k] if k < 4 else f"argument {k + 1}"
    return f"the {ordinal} argument of {shown} must have type {{expected}}, but {_esc(snippet(arg.span))} " \
           "has type {actual}"


# ---- strongly connected components of top-level definitions --------------------


def globals_of(e: c.Expr, out: set) -> set:
    """The (module, name) keys of the top-level definitions `e` refers to."""
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Global):
            out.add((t.module, t.name))
        else:
            stack.extend(c.children(t))
    return out


def components(defs: list) -> list[list]:
    """Tarjan's algorithm, iteratively: groups of mutually recursive definitions, dependencies first."""
    by_key = {(d.module, d.name): d for d in defs}
    deps = {k: [x for x in sorted(globals_of(d.expr, set())) if x in by_key] for k, d in by_key.items()}
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    out: list[list] = []

    def visit(node) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in by_key:
        if root in index:
            continue
        visit(root)
        work = [(root, iter(deps[root]))]
        while work:
            node, successors = work[-1]
            for w in successors:
                if w not in index:
                    visit(w)
                    work.append((w, iter(deps[w])))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        group.append(by_key[w])
                        if w == node:
                            break
                    out.append(group[::-1])
    return out


def infer_definitions(defs: list, globals_: dict, default_main: bool = True) -> list[TypedDef]:
    """Infer a batch of top-level definitions (they may refer to each other and to `globals_`)."""
    inf = Inferencer(globals_)
    order = {(d.module, d.name): k for k, d in enumerate(defs)}
    typed: list[TypedDef] = []
    for group in components(defs):
        typed.extend(inf.infer_group(group, default_main))
    typed.sort(key=lambda t: order[(t.module, t.name)])
    return typed


def infer_expression(e: c.Expr, globals_: dict) -> c.Expr:
    """Infer a REPL expression; open numeric variables in its type default to Real."""
    inf = Inferencer(globals_)
    typed = inf.infer(e)
    default_numeric(typed.ty)
    return typed


__all__ = ["infer_definitions", "infer_expression", "TypedDef", "unify", "Mismatch", "snippet", "EQ"]
