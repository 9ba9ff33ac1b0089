"""Hindley–Milner type inference with let-polymorphism and class constraints.

Algorithm W with mutable type variables and Rémy's levels for cheap
generalisation: a variable created at let-depth k has level k, unification
lowers levels, and `let` generalises exactly the variables whose level is
deeper than its own. Every returned node carries its type in `ty`.

Constraints ride on type variables (lang/model/types.py): a literal `2` has
a fresh `Num` variable, `==` asks for `Eq`, `grad` asks for `Diff`;
unifying a constrained variable with a type checks that the type belongs to
the class (tuples and lists are `Diff` when their parts are; functions never
are). Numeric defaulting to Real happens in the type of `main` and of a REPL
expression (`default_numeric`), and for variables no type mentions
(lang/front/mono.py).

What a failed unification *means* is said by lang/front/wording.py: every
expectation here passes a context record (the condition of an `if`, element
k of a list, argument k of a built-in, ...), never a template. Top-level
definitions are inferred a strongly connected group at a time by the loader
(lang/front/loader.py); the transforms' target languages extend this
inferencer with their linear rules (lang/transforms/check.py).
"""
from __future__ import annotations


from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlNameError, DlTypeError
from ..model.primitives import PRIMITIVES, Primitive
from ..model.nodes import replace  # dataclasses.replace, quick for nodes (every node is rebuilt with its type)
from ..model.scope import Scope
from ..model.spans import Span
from ..model.types import (BASE_TYPES, BOOL, CLASSES, D, EQ, FLOAT, LINEAR, LIST_CLASSES, NONE, NUM, REAL, STRING,
                           STRUCTURAL, UNIT, Scheme, TCon, TCtor, TFun, TList, TNeg, TTuple, TVar, Type, free_vars,
                           instance_name, prune, show_scheme, substitute)
from . import wording as w
from .wording import snippet
from ..model.nodes import node


class Mismatch(Exception):
    """Two types do not unify (internal; turned into a DlTypeError with words and a span).

    `why`: "" (different types), "infinite" (occurs check), or the class a type is not in."""

    def __init__(self, why: str = "", offending: Type | None = None):
        super().__init__(why)
        self.why = why
        self.offending = offending


@node(slots=False)  # a frozen dataclass, made quickly (start-up), with a __dict__ as before
class TypedDef:
    name: str
    module: str
    expr: c.Expr
    scheme: Scheme
    span: Span
    name_span: Span


# ---- unification -------------------------------------------------------------


def unify(a: Type, b: Type) -> None:
    """Make `a` and `b` the same type by binding variables, or raise Mismatch.

    A variable binds to the other side (after the occurs check and the class
    check of `_bind`); two constructors unify componentwise. In the target
    languages ¬T and T ⊸ d are one type (a backpropagator is a linear map into d)."""
    a, b = prune(a), prune(b)
    if a is b:
        return
    match a, b:
        case TVar(), _:
            _bind(a, b)
        case _, TVar():
            _bind(b, a)
        case TCon(x), TCon(y) if x == y:
            pass
        case TFun(a1, r1), TFun(a2, r2):
            unify(a1, a2)
            unify(r1, r2)
        case TTuple(xs), TTuple(ys) if len(xs) == len(ys):
            for x, y in zip(xs, ys):
                unify(x, y)
        case (TList(x), TList(y)) | (TNeg(x), TNeg(y)):
            unify(x, y)
        case TCtor(n, xs), TCtor(m, ys) if n == m and len(xs) == len(ys):
            for x, y in zip(xs, ys):
                unify(x, y)
        case (TNeg(x), TCtor(n, (y, r))) | (TCtor(n, (y, r)), TNeg(x)) if n == LINEAR:
            unify(x, y)
            unify(r, D)
        case _:
            raise Mismatch()


def _bind(v: TVar, t: Type) -> None:
    """v := t, lowering the levels of t's variables to v's and pushing v's class into t."""
    if isinstance(t, TVar):
        t.level = min(t.level, v.level)
        t.constraint = t.constraint | v.constraint
        v.link = t
        return
    for u in free_vars(t):
        if u is v:
            raise Mismatch("infinite")
        u.level = min(u.level, v.level)
    enforce(t, v.constraint)
    v.link = t


def enforce(t: Type, classes: frozenset[str]) -> None:
    """Check that `t` belongs to each of the classes, pushing them into its variables."""
    if not classes:
        return
    t = prune(t)
    match t:
        case TVar():
            t.constraint = t.constraint | classes
        case TCon(name):
            for cls in sorted(classes):
                if name not in CLASSES[cls]:
                    raise Mismatch(cls, t)
        case TTuple(items) if classes == {STRUCTURAL}:
            for i in items:
                enforce(i, classes)
        case TList(item) if classes <= LIST_CLASSES:
            enforce(item, classes)
        case _:
            outside = classes - (LIST_CLASSES if isinstance(t, TList) else {STRUCTURAL})
            raise Mismatch(sorted(outside)[0] if outside else STRUCTURAL, t)


def default_numeric(t: Type) -> None:
    """Fix every open Num/Eq/Diff variable of `t` to Real (in main's type, a REPL expression's)."""
    for v in free_vars(t):
        if v.constraint:
            v.link = REAL


def local_key(name: str, inst: tuple) -> str:
    """The environment key of a local: specialised local bindings (`sq@Int`) are distinct variables."""
    return instance_name(name, inst) if inst else name


# ---- inference ---------------------------------------------------------------


class Inferencer:
    """Infers the types of source terms in an environment of top-level schemes."""

    def __init__(self, globals_: dict[tuple[str, str], Scheme]):
        self.globals = globals_
        self.locals: Scope = Scope()  # local name -> its Scheme (let-bound) or Type (lambda-bound)
        self.level = 1
        self.annot_vars: dict[str, TVar] = {}

    def fresh(self, constraint: frozenset[str] = NONE) -> TVar:
        return TVar(self.level, constraint)

    # -- expectations
    def expect(self, node: c.Expr, expected: Type, context) -> None:
        """Unify the type of `node` with `expected`, or report why, in the context's words, at the node.

        `context` is a w.Context, or a function making one: a context quoting source text (`snippet`) is
        made only when a mismatch needs its words, not once per application checked (issue 19 item 9)."""
        try:
            unify(expected, node.ty)
        except Mismatch as e:
            if callable(context):
                context = context()
            raise w.mismatch(e.why, e.offending, node.span, expected, node.ty, context) from None

    def expect_annotation(self, t: Type, annot: s.TypeExpr) -> None:
        written = self.convert(annot)
        try:
            unify(written, t)
        except Mismatch as e:
            raise w.mismatch(e.why, e.offending, annot.span, written, t, w.Named("the parameter's annotation")) \
                from None

    # -- schemes
    def instantiate(self, scheme: Scheme) -> Type:
        if not scheme.qvars:
            return scheme.body
        return substitute(scheme.body, {v: TVar(self.level, v.constraint) for v in scheme.qvars})

    def generalize(self, t: Type) -> Scheme:
        return Scheme(tuple(v for v in free_vars(t) if v.level > self.level), t)

    # -- annotations
    def convert(self, t: s.TypeExpr) -> Type:
        """A written type as a Type; its 'a variables are shared within one definition."""
        match t:
            case s.TyName(name):
                if name in BASE_TYPES:
                    return BASE_TYPES[name]
                raise DlNameError(f"unknown type `{name}` (types are Real, Int, Bool, Unit, Array, String, T -> T, "
                                  "T * T, [T], 'a)", t.span)
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
            case s.TyNeg():
                raise DlTypeError("linear negation ~T appears only in the types of transformed terms", t.span)
            case s.TyScheme(constraints, body):
                for cls, var in constraints:
                    if cls not in CLASSES:
                        raise DlNameError(f"unknown class `{cls}` (classes are {', '.join(CLASSES)})", t.span)
                    v = self.annot_vars.setdefault(var, self.fresh())
                    try:
                        enforce(v, frozenset({cls}))
                    except Mismatch:
                        raise DlTypeError(f"'{var} cannot be in class {cls}", t.span) from None
                return self.convert(body)
        raise AssertionError(t)

    # -- terms
    def infer(self, e: c.Expr) -> c.Expr:
        """`e` with its type, and the types of all its subterms, filled in."""
        match e:
            case c.Var(name, inst):                                   # x
                found = self.locals.get(local_key(name, inst))
                if found is None:
                    raise DlNameError(f"unbound name `{name}`", e.span)
                ty = self.instantiate(found) if isinstance(found, Scheme) else found
                return replace(e, ty=ty)
            case c.Global(name, module, inst):                        # a top-level definition
                return replace(e, ty=self.global_type(e, module, name, inst))
            case c.Lit(value):                                        # 42 | 4.2 | true | ()
                return replace(e, ty=self.literal_type(value))
            case c.Lam(param, body):                                  # fun x -> e
                t = self.fresh()
                if e.annot is not None:
                    self.expect_annotation(t, e.annot)
                old = self.locals.bind(param, t)
                body_t = self.infer(body)
                self.locals.restore(param, old)
                return replace(e, body=body_t, ty=TFun(t, body_t.ty))
            case c.App(fn, arg):                                      # f a
                return self.application(e, fn, arg)
            case c.Let(name, bound, body, inst):                      # let x = e1 in e2: x generalised
                key = local_key(name, inst)
                self.level += 1
                bound_t = self.infer(bound)
                self.level -= 1
                scheme = self.generalize(bound_t.ty)
                old = self.locals.bind(key, scheme)
                body_t = self.infer(body)
                self.locals.restore(key, old)
                return replace(e, bound=bound_t, body=body_t, qvars=scheme.constrained, ty=body_t.ty)
            case c.LetRec(name, bound, body, inst):                   # let rec f = fun x -> e1 in e2
                key = local_key(name, inst)
                self.level += 1
                t = self.fresh()
                old = self.locals.bind(key, t)
                bound_t = self.infer(bound)
                self.expect(bound_t, t, w.Named(f"the recursive function `{name}`"))
                self.level -= 1
                scheme = self.generalize(t)
                self.locals[key] = scheme
                body_t = self.infer(body)
                self.locals.restore(key, old)
                return replace(e, bound=bound_t, body=body_t, qvars=scheme.constrained, ty=body_t.ty)
            case c.LetTuple(names, bound, body):                      # let (x1, ..., xn) = e1 in e2
                bound_t = self.infer(bound)
                n = len(names)
                known = prune(bound_t.ty)
                if isinstance(known, TTuple) and len(known.items) == n:
                    # already a tuple of n: its components are the parts. Binding fresh variables to them
                    # would walk each in the occurs check, and `let (a, (b, (c, ...))) = e` matches each
                    # level against the rest of the type: quadratic in depth (issue 19 item 9)
                    parts = known.items
                else:
                    parts = tuple(self.fresh() for _ in names)
                    self.expect(bound_t, TTuple(parts), w.TuplePattern(n, e.sugar, bound.span))
                olds = [self.locals.bind(x, t) for x, t in zip(names, parts)]
                body_t = self.infer(body)
                for x, old in reversed(list(zip(names, olds))):
                    self.locals.restore(x, old)
                return replace(e, bound=bound_t, body=body_t, ty=body_t.ty)
            case c.If(cond, then, else_):                             # if c then e1 else e2
                cond_t = self.infer(cond)
                if e.sugar is None:
                    self.expect(cond_t, BOOL, lambda: w.Condition(snippet(cond.span)))
                    then_t = self.infer(then)
                    else_t = self.infer(else_)
                else:                                                 # a && b, a || b: two Bool operands
                    self.expect(cond_t, BOOL,
                                lambda: w.Condition(snippet(cond.span), f"the left operand of `{e.sugar}`"))
                    then_t = self.infer(then)
                    else_t = self.infer(else_)
                    right, right_t = (then, then_t) if e.sugar == "&&" else (else_, else_t)
                    self.expect(right_t, BOOL,
                                lambda: w.Condition(snippet(right.span), f"the right operand of `{e.sugar}`"))
                self.expect(else_t, then_t.ty, w.Branches())
                return replace(e, cond=cond_t, then=then_t, else_=else_t, ty=then_t.ty)
            case c.Tuple(items):                                      # (e1, ..., en)
                items_t = tuple(self.infer(i) for i in items)
                return replace(e, items=items_t, ty=TTuple(tuple(i.ty for i in items_t)))
            case c.List(items):                                       # [e1, ..., en]
                # the element type is the first element's: binding a fresh variable to it instead would
                # walk it in the occurs check, at every level of a nested list (quadratic in depth)
                elem = None
                items_t = []
                for k, item in enumerate(items):
                    it = self.infer(item)
                    if elem is None:
                        elem = it.ty
                    else:
                        self.expect(it, elem, lambda k=k, item=item: w.ListElement(k + 1, snippet(item.span)))
                    items_t.append(it)
                return replace(e, items=tuple(items_t), ty=TList(self.fresh() if elem is None else elem))
            case c.Prim(op, args):                                    # a built-in, saturated
                return self.primitive(e, PRIMITIVES[op], args)
            case c.Annot(expr, t):                                    # (e : T)
                expr_t = self.infer(expr)
                m = e.sugar  # a pattern `()` or `(p : T)` (lang/front/desugar.py): words for what it matches
                self.expect(expr_t, self.convert(t), lambda: (
                    w.Annotated(snippet(expr.span)) if m is None else w.UnitPattern(m, expr.span) if m.unit
                    else w.Annotated(w.matched_value(m, expr.span))))
                return expr_t
        return self.infer_other(e)

    def infer_other(self, e: c.Expr) -> c.Expr:
        """A node of another language (the transforms' linear terms): not in a source program."""
        if isinstance(e, (c.LinLam, c.LinApp, c.DZero, c.DSum)):
            raise DlTypeError("linear terms appear only in transformed programs", e.span)
        raise AssertionError(e)

    def global_type(self, e: c.Global, module: str, name: str, inst: tuple) -> Type:
        """The type of a use of a top-level definition: its scheme, instantiated."""
        scheme = self.globals.get((module, name))
        if scheme is None:
            raise DlNameError(f"unbound name `{name}`", e.span)
        return self.instantiate(scheme)

    def literal_type(self, value) -> Type:
        """Bool or Unit; a fresh Num variable for an integer literal (it may be an Int, a Real or an
        Array), a fresh Float one for a real literal (a Real or an Array): `x * 2.0` is the same
        expression for a Real x and an Array x (docs/reference.md §4)."""
        if isinstance(value, bool):
            return BOOL
        if isinstance(value, int):
            return self.fresh(NUM)
        if isinstance(value, float):
            return self.fresh(FLOAT)
        if isinstance(value, str):
            return STRING
        return UNIT

    def application(self, e: c.App, fn: c.Expr, arg: c.Expr) -> c.Expr:
        fn_t = self.infer(fn)
        arg_t = self.infer(arg)
        ft = prune(fn_t.ty)
        if isinstance(ft, TFun):
            self.expect(arg_t, ft.arg, lambda: w.Argument(snippet(fn.span), snippet(arg.span)))
            return replace(e, fn=fn_t, arg=arg_t, ty=ft.result)
        result = self.fresh()
        try:
            unify(ft, TFun(arg_t.ty, result))
        except Mismatch as err:
            if err.why == "infinite":  # `g g`: g would be a function taking itself
                raise w.mismatch(err.why, err.offending, arg.span, ft, TFun(arg_t.ty, result),
                                 w.SelfApplication(snippet(fn.span), snippet(arg.span))) from None
            raise DlTypeError(f"{snippet(fn.span)} has type {show_scheme(ft)}; it is not a function and cannot be "
                              "applied to an argument", fn.span) from None
        return replace(e, fn=fn_t, arg=arg_t, ty=result)

    def primitive_scheme(self, prim: Primitive) -> Scheme:
        """A built-in's type scheme (a target language may give the differentiation kernel another)."""
        return prim.scheme

    def primitive(self, e: c.Prim, prim: Primitive, args: tuple[c.Expr, ...]) -> c.Expr:
        t = self.instantiate(self.primitive_scheme(prim))
        args_t = []
        shown = "unary -" if prim.name == "neg" else f"`{prim.name}`"
        for k, a in enumerate(args):
            t = prune(t)
            at = self.infer(a)
            assert isinstance(t, TFun)
            self.expect(at, t.arg, lambda k=k, a=a: _argument_context(prim, shown, k, a))
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
            self.expect(body, placeholders[(d.module, d.name)], lambda d=d: w.Named(f"the definition of `{d.name}`"))
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


def _argument_context(prim: Primitive, shown: str, k: int, arg: c.Expr) -> w.Context:
    """What argument k of a built-in is, for the words of a mismatch."""
    subject = snippet(arg.span)
    if prim.kind == "ad":
        return (w.Differentiated(shown, subject), w.Point(shown, subject), w.Tangent(shown, subject))[min(k, 2)]
    if prim.kind == "custom" and k == 1:
        return w.CustomRule(shown, subject)
    return w.PrimitiveArgument(shown, k, prim.arity, subject)


def infer_expression(e: c.Expr, globals_: dict) -> c.Expr:
    """Infer a closed expression (a REPL input, `main`'s call); open numeric types default to Real."""
    typed = Inferencer(globals_).infer(e)
    default_numeric(typed.ty)
    return typed


__all__ = ["Inferencer", "infer_expression", "TypedDef", "unify", "Mismatch", "snippet", "local_key", "EQ", "REAL"]
