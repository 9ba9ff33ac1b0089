"""Specialisation: one copy of a definition per instance of its class-constrained variables.

`def sq x = x * x` has type `Num 'a => 'a -> 'a`. A use at Int and a use at
Real make two specialised terms, `sq@Int` and `sq@Real`, whose every node has a
concrete type. After this stage the evaluator knows whether `*` multiplies
Ints or Reals, a literal `2` is an Int or the Real 2.0, and the transforms know
which numbers carry derivatives — without run-time type tests. Only
variables with a class (Num, Eq, Diff) are specialised: unconstrained ones
stay parametric, which is sound because no stage looks inside them.

Instances are found by matching a binding's generic type against the type at
each use. Open class variables that no instance fixes default to Real
(docs/reference.md §4). Specialisation is on demand: `get` specialises one definition at
one instance, and the evaluator asks for more as it meets references.
"""
from __future__ import annotations

from ..model.nodes import replace  # dataclasses.replace, without importing dataclasses (start-up)

from ..model import core as c
from ..model.scope import Scope
from .loader import World
from ..model.primitives import PRIMITIVES
from ..model.types import ARRAY, REAL, TFun, TList, TNeg, TTuple, TVar, Type, map_vars, prune, substitute


class Specializer:
    """Specialises the definitions of a World on demand, memoised per (module, name, instance)."""

    def __init__(self, world: World):
        self.world = world
        self.done: dict[tuple, c.Expr] = {}

    def get(self, module: str, name: str, inst: tuple = ()) -> c.Expr:
        """The definition `module.name` specialised at `inst` (types for its constrained variables)."""
        key = (module, name, inst)
        if key not in self.done:
            d = self.world.defs[(module, name)]
            sub = dict(zip(d.scheme.constrained, inst))
            self.done[key] = _Walk(self.world, sub).term(d.expr)
        return self.done[key]

    def expression(self, e: c.Expr) -> c.Expr:
        """Specialise a typed expression that is not a definition (a REPL input)."""
        return _Walk(self.world, {}).term(e)


def concrete(t: Type, sub: dict, memo: dict | None = None) -> Type:
    """`t` under `sub`, with open class variables defaulted to Real (`memo`: see types.map_vars)."""
    return map_vars(t, lambda v: sub[v] if v in sub else REAL if v.constraint else v, memo)


def match(generic: Type, actual: Type, qvars: tuple, out: dict) -> dict:
    """Bind the `qvars` of `generic` so that it becomes `actual`."""
    generic = prune(generic)
    match generic:
        case TVar():
            if generic in qvars and generic not in out:
                out[generic] = actual
        case TFun(a, r) if isinstance(actual, TFun):
            match(a, actual.arg, qvars, out)
            match(r, actual.result, qvars, out)
        case TTuple(items) if isinstance(actual, TTuple):
            for g, x in zip(items, actual.items):
                match(g, x, qvars, out)
        case TList(item) if isinstance(actual, TList):
            match(item, actual.item, qvars, out)
        case TNeg(item) if isinstance(actual, TNeg):
            match(item, actual.item, qvars, out)
    return out


def instance_of(qvars: tuple, generic: Type, actual: Type) -> tuple:
    """The instance (one type per constrained variable) at which `generic` is used as `actual`."""
    if not qvars:
        return ()
    found = match(generic, actual, qvars, {})
    return tuple(found.get(v, REAL if v.constraint else v) for v in qvars)


class _Walk:
    """One specialisation pass under a substitution of the enclosing definition's variables."""

    def __init__(self, world: World, sub: dict):
        self.world = world
        self.sub = sub
        # local name -> None (monomorphic) or (qvars, generic type, demanded instances)
        self.scope: Scope = Scope()
        self.types: dict = {}  # concrete types by identity: a subterm's type is part of its parent's

    def term(self, e: c.Expr) -> c.Expr:
        ty = concrete(e.ty, self.sub, self.types)
        match e:
            case c.Var(name):
                info = self.scope.get(name)
                if info:
                    qvars, generic, demands = info
                    inst = instance_of(qvars, concrete_generic(generic, self.sub, qvars), ty)
                    demands.add(inst)
                    return c.Var(name, inst, ty=ty, span=e.span)
                return replace(e, ty=ty)
            case c.Global(name, module):
                scheme = self.world.schemes[(module, name)]
                inst = instance_of(scheme.constrained, scheme.body, ty)
                return c.Global(name, module, inst, ty=ty, span=e.span)
            case c.Lit(value):
                return c.Lit(_literal(value, ty), ty=ty, span=e.span)
            case c.Lam(param, body):
                old = self.scope.bind(param, None)
                out = c.Lam(param, self.term(body), ty=ty, span=e.span)
                self.scope.restore(param, old)
                return out
            case c.Let(name, bound, body) if e.qvars:
                return self.poly_let(e, name, bound, body, ty, recursive=False)
            case c.LetRec(name, bound, body) if e.qvars:
                return self.poly_let(e, name, bound, body, ty, recursive=True)
            case c.Let(name, bound, body):
                bound_m = self.term(bound)
                old = self.scope.bind(name, None)
                out = c.Let(name, bound_m, self.term(body), ty=ty, span=e.span)
                self.scope.restore(name, old)
                return out
            case c.LetRec(name, bound, body):
                old = self.scope.bind(name, None)
                out = c.LetRec(name, self.term(bound), self.term(body), ty=ty, span=e.span)
                self.scope.restore(name, old)
                return out
            case c.LetTuple(names, bound, body):
                bound_m = self.term(bound)
                olds = [self.scope.bind(n, None) for n in names]
                body_m = self.term(body)
                for n, old in reversed(list(zip(names, olds))):
                    self.scope.restore(n, old)
                return c.LetTuple(names, bound_m, body_m, ty=ty, span=e.span)
            case c.App() | c.If() | c.Tuple() | c.List():
                return replace(c.map_children(e, self.term), ty=ty)
            case c.Prim(op):
                out = c.map_children(e, self.term)
                src = out.args[0].ty if PRIMITIVES[op].kind in ("ad", "custom") else None  # the function differentiated
                return replace(out, src=src, ty=ty)
        raise AssertionError(e)

    def poly_let(self, e, name, bound, body, ty, recursive: bool) -> c.Expr:
        """`let x = e1 in e2` with x polymorphic: the body first, to learn which instances it needs."""
        demands: set = set()
        old = self.scope.bind(name, (e.qvars, bound.ty, demands))
        body_m = self.term(body)
        out = body_m
        for inst in sorted(demands, key=repr):
            inner = _Walk(self.world, {**self.sub, **dict(zip(e.qvars, inst))})
            # the same scope, not a copy: its bindings are undone in order, and a copy per `let` made a chain
            # of n lets quadratic (issue 19 item 9)
            inner.scope = self.scope
            if recursive:
                inner.scope[name] = (e.qvars, bound.ty, set())
                bound_m = inner.term(bound)
                out = c.LetRec(name, bound_m, out, inst, ty=ty, span=e.span)
            else:
                inner.scope.restore(name, old)
                bound_m = inner.term(bound)
                out = c.Let(name, bound_m, out, inst, ty=ty, span=e.span)
        self.scope.restore(name, old)
        return out


def concrete_generic(generic: Type, sub: dict, qvars: tuple) -> Type:
    """A local binding's generic type with the enclosing substitution applied, its own variables kept."""
    return substitute(generic, {**sub, **{v: v for v in qvars}})


def _literal(value, ty: Type):
    """A number literal at its specialised type: `2` at Real is 2.0, and so at Array (where the compiler
    makes it a 0-d array)."""
    if (ty == REAL or ty == ARRAY) and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")
    return value

