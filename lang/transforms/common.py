"""What every derivative transform shares: a homomorphism on everything but Real.

←D (backprop.py) and →D (forward.py) agree on variables, lambdas,
application, lets, tuples, lists, `if` and the parametric built-ins — they
map each to itself, transformed inside. They differ only in what a real
number becomes (Real * ¬Real, or Real * Real), what a real constant
becomes, and the rule for a real primitive. A subclass says those three
things; this class does the rest, and reads every primitive's kind from the
primitive table (no transform tests a primitive's name).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..model import core as c
from ..front.desugar import Fresh
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES, Primitive, array_instance, is_zero
from ..model.spans import NO_SPAN
from ..model.types import ARRAY, BOOL, INT, REAL, TCon, TFun, TList, TNeg, TTuple, TVar, Type, prune
from ..model.nodes import node


@node(slots=False)  # a frozen dataclass, made quickly (start-up), with a __dict__ as before
class TermTransform:
    """A term transform as the mode table names it: what `dl transform` prints and the checker checks."""

    symbol: str                                # its name in printed titles: ←D, →D
    term: Callable[[c.Expr], c.Expr]           # the transform of a specialised core term
    type: Callable[[Type], Type]               # the transform on types
    simplify: Callable[[c.Expr], c.Expr]       # meaning-preserving clean-ups of its output (--simplify)
    parses_back: bool = True                   # its printed terms read back (lang/transforms/read.py)
    custom_rules: bool = False                 # its languages apply custom_vjp's rules (lang/back/kernel.py)
    checks: tuple = ()                         # its target's rules beyond typing, each run on the typed term
    ad_args: bool = False                      # grad & co. in its target take each argument transformed, as
                                               # its functions return pairs (ps): TargetLanguage.ad_args
    fuses: bool = False                        # simplified, its source's folds over maps are fused first
                                               # (backprop: lang/transforms/fusion.py)


# ---- arrays: the shared refusal ----------------------------------------------------------------


def touches_array(e: c.Prim) -> bool:
    """Whether a primitive application runs on Arrays (an array row, or a real row at Array)."""
    return array_instance(PRIMITIVES[e.op], [a.ty for a in e.args], e.ty)


def arrays_unsupported(mode: str, what: str, span=NO_SPAN) -> DlRuntimeError:
    """The diagnostic of a mode that cannot differentiate arrays yet, at what needs it (`what`: "`+` on
    an Array", "a function of an Array").

    Every transform built on Homomorphism gets it by default (`array_primitive`, `array_constant`); a
    mode with a runtime or a transform of its own raises it where it meets an array (symbolic does,
    lang/modes/symbolic.py)."""
    return DlRuntimeError(f"{what}: the {mode} mode does not support arrays yet (backprop, backprop-naive, "
                          "forward, tape and numeric do)", span)


def refuse_array_types(mode: str, in_t: Type, out_t: Type) -> None:
    """The refusal of a runtime without array rules (symbolic, delta), at a derivative call of a function
    of an Array or into one: even a body with no array operation (`fun (a : Array) -> 2.0`) would give a
    gradient of the wrong kind."""
    if mentions_array(in_t):
        raise arrays_unsupported(mode, "differentiating a function of an Array")
    if mentions_array(out_t):
        raise arrays_unsupported(mode, "differentiating a function that returns an Array")


def mentions_array(t: Type) -> bool:
    """Whether a type has an Array in it (a mode without array rules refuses such inputs and outputs)."""
    t = prune(t)
    match t:
        case TCon(name):
            return name == "Array"
        case TFun(a, r):
            return mentions_array(a) or mentions_array(r)
        case TTuple(items):
            return any(mentions_array(i) for i in items)
        case TList(item) | TNeg(item):
            return mentions_array(item)
    return False


def definitions_used(e: c.Expr) -> set[str]:
    """The names of the top-level definitions `e` uses (a fresh local name must not capture one once the
    term is printed and read back)."""
    names: set[str] = set()
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Global):
            names.add(t.name)
        stack.extend(c.children(t))
    return names


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


class Homomorphism:
    """A transform that is the identity on everything that does not touch a real."""

    real_pair: Type  # what Real becomes

    def __init__(self, fresh: Fresh):
        self.fresh = fresh
        # memos by identity (term, answer): a subterm's type is part of its parent's, and `is_closed` asks
        # about every subterm of a chain of primitives: without them both are quadratic in depth
        self._types: dict[int, tuple[Type, Type]] = {}
        self._closed: dict[int, tuple[c.Expr, bool]] = {}

    # ---- what a subclass defines
    suffix: str  # the second component's name: x' (backpropagator) or x_dot (tangent)
    second_type: Type

    def constant(self, value: c.Lit) -> c.Expr:
        raise NotImplementedError

    def contribution_sum(self, pairs: list[tuple[c.Expr, c.Expr]]) -> c.Expr:
        """Σ of each argument's second component times its partial (none: the zero of the kind)."""
        raise NotImplementedError

    def derivative_part(self, seconds: list[c.Expr], partials: list[c.Expr]) -> c.Expr:
        """The second component of f(x1..xk)'s transform, from the arguments' and f's partials."""
        return self.by_cases(list(zip(seconds, partials)))

    def by_cases(self, pairs: list[tuple[c.Expr, c.Expr]]) -> c.Expr:
        """The contributions, with a partial's `if` lifted out and its symbolic zeros dropped (`by_cases`)."""
        return by_cases(pairs, self.contribution_sum)

    # ---- arrays: a transform that handles them overrides these three (backprop.py, forward.py)
    def array_type(self, t: Type) -> Type:
        """What Array becomes (left as it is by a transform without array rules: they refuse)."""
        return t

    def array_constant(self, e: c.Expr) -> c.Expr:
        """A constant at Array (a literal, `pi`)."""
        raise arrays_unsupported(self.mode_name(), "an Array constant", e.span)

    def array_primitive(self, e: c.Prim, prim: Primitive, ty: Type) -> c.Expr:
        """An operation on Arrays (lang/transforms/arrays.py)."""
        raise arrays_unsupported(self.mode_name(), f"the array operation `{e.op}`", e.span)

    def mode_name(self) -> str:
        return type(self).__name__.lower()

    def second_of(self, t: Type) -> Type:
        """The type of the second component for a primal type (backpropagator ¬T, or tangent T)."""
        return self.second_type

    # ---- the rule for a real primitive, shared
    def real_rule(self, e: c.Prim, prim: Primitive, args: tuple[c.Expr, ...], ty: Type) -> c.Expr:
        """let (xi, xi') = D(ti) in (f(x1..xk), <derivative part from the xi' and the partials of f>)."""
        names, binds = self.bind_arguments(e, args, self.suffix)
        primals = [c.Var(x, ty=REAL) for x, _ in names]
        value = c.Prim(e.op, tuple(primals), ty=REAL, span=e.span)
        result: c.Expr = value
        result_name = None
        if prim.uses_result():  # name the result when the partials mention it (exp, tanh, /)
            result_name = self.fresh("r")
            result = c.Var(result_name, ty=REAL)
        seconds = [c.Var(x2, ty=self.second_type) for _, x2 in names]
        out: c.Expr = c.Tuple((result, self.derivative_part(seconds, prim.partials(*primals, result))),
                              ty=ty, span=e.span)
        if result_name is not None:
            out = c.Let(result_name, value, out, ty=ty, span=e.span)
        for pair, arg in reversed(binds):
            out = c.LetTuple(pair, arg, out, ty=ty, span=e.span)
        return out

    # ---- types
    def type(self, t: Type) -> Type:
        t = prune(t)
        hit = self._types.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        out = self.type_of(t)
        self._types[id(t)] = (t, out)
        return out

    def type_of(self, t: Type) -> Type:
        match t:
            case TCon("Real"):
                return self.real_pair
            case TCon("Array"):
                return self.array_type(t)
            case TCon() | TVar():
                return t
            case TFun(a, r):
                return TFun(self.type(a), self.type(r))
            case TTuple(items):
                return TTuple(tuple(self.type(i) for i in items))
            case TList(item):
                return TList(self.type(item))
            case TNeg():
                raise AssertionError(f"{type(self).__name__} cannot transform the linear type {t}")
        raise AssertionError(f"no transform of the type {t}")

    # ---- terms
    def term(self, e: c.Expr) -> c.Expr:
        ty = self.type(e.ty)
        match e:
            case c.Var() | c.Global():
                return replace(e, ty=ty)
            case c.Lit() if prune(e.ty) == REAL:
                return self.constant(e)
            case c.Lit() if prune(e.ty) == ARRAY:
                return self.array_constant(e)
            case c.Lit():
                return replace(e, ty=ty)
            case c.Lam():                   # fun x -> t: the transformed lambda remembers its source
                return replace(c.map_children(e, self.term), annot=None, origin=e.origin or e, ty=ty)
            case c.Prim():
                return self.primitive(e, ty)
            case c.App() | c.Let() | c.LetRec() | c.LetTuple() | c.If() | c.Tuple() | c.List():
                return replace(c.map_children(e, self.term), ty=ty)
        raise AssertionError(f"{type(self).__name__} has no rule for {type(e).__name__}")

    def primitive(self, e: c.Prim, ty: Type) -> c.Expr:
        prim = PRIMITIVES[e.op]
        if touches_array(e):
            return self.array_primitive(e, prim, ty)
        args = tuple(self.term(a) for a in e.args)
        at_real = any(prune(a.ty) == REAL for a in e.args)
        match prim.kind:
            case "real" if at_real and self.is_closed(e):
                return self.constant(e)  # no variable in it: a constant, whose derivative is zero
            case "real" if at_real:
                if prim.partials is None:
                    raise AssertionError(f"the primitive {e.op!r} has no derivative rule in the primitive table")
                return self.real_rule(e, prim, args, ty)
            case "compare" if at_real:
                return c.Prim(e.op, tuple(self.primal(a) for a in args), ty=BOOL, span=e.span)
            case "toint":
                return c.Prim(e.op, tuple(self.primal(a) for a in args), ty=INT, span=e.span)
            case "toreal":
                return self.constant(c.Prim(e.op, args, ty=REAL, span=e.span))
            case "real" | "compare" | "int" | "bool" | "structural":
                return c.Prim(e.op, args, ty=ty, span=e.span)
            case "ad" | "custom":
                return c.Prim(e.op, args, src=e.src, ty=ty, span=e.span)
        raise AssertionError(f"no rule for the primitive {e.op!r} ({prim.kind})")

    def primal(self, dual: c.Expr) -> c.Expr:
        """The primal component of a transformed real: fst x (just r for a constant (r, ...))."""
        if isinstance(dual, c.Tuple) and len(dual.items) == 2 and isinstance(dual.items[0], c.Lit):
            return dual.items[0]
        if prune(dual.ty) == self.real_pair:
            return c.Prim("fst", (dual,), ty=REAL)
        return dual

    def bind_arguments(self, e: c.Prim, args: tuple[c.Expr, ...], suffix: str):
        """Pattern names for each argument's components, and the bindings to make.

        `x * y` binds (x, x') and (y, y') as the paper writes, and `x * x` binds (x, x')
        once. A source name is not reused when it could capture a variable of a later
        argument or repeats a name bound here.
        """
        names, binds = [], []
        taken: set[str] = set()
        seen: dict = {}
        for k, (source_arg, arg) in enumerate(zip(e.args, args)):
            if isinstance(source_arg, c.Var) and (source_arg.name, source_arg.inst) in seen:
                names.append(seen[(source_arg.name, source_arg.inst)])
                continue
            x = source_arg.name if isinstance(source_arg, c.Var) and not source_arg.inst else None
            if x is not None and not {x, x + suffix} & taken:
                # the later arguments' variables only when a source name may be reused: `1.0 + e` would walk
                # all of e at each level of a nesting (quadratic in depth; issue 19 item 9)
                later: set[str] = set()
                for source_other, other in zip(e.args[k + 1:], args[k + 1:]):
                    if not (isinstance(source_other, c.Var) and source_other == source_arg):
                        later |= {n for n, _ in c.free_locals(other)}
                if {x, x + suffix} & later:
                    x = None
            if x is None or {x, x + suffix} & taken:
                x = self.fresh("x")
            pair = (x, x + suffix)
            names.append(pair)
            binds.append((pair, arg))
            taken |= set(pair)
            if isinstance(source_arg, c.Var):
                seen[(source_arg.name, source_arg.inst)] = pair
        return names, binds

    def is_closed(self, e: c.Expr) -> bool:
        """A term with no variables and no references to definitions (only literals and primitives): `closed`,
        remembered for every subterm it looks at (iterative: terms can be deep)."""
        memo = self._closed
        stack: list[tuple[c.Expr, bool]] = [(e, False)]
        while stack:
            t, children_done = stack.pop()
            hit = memo.get(id(t))
            if hit is not None and hit[0] is t:
                continue
            if not isinstance(t, (c.Lit, c.Prim)):
                memo[id(t)] = (t, False)
            elif children_done:
                memo[id(t)] = (t, all(memo[id(k)][1] for k in c.children(t)))
            else:
                stack.append((t, True))
                stack.extend((k, False) for k in c.children(t))
        return memo[id(e)][1]


def by_cases(pairs: list[tuple], total: Callable[[list[tuple]], c.Expr]) -> c.Expr:
    """`total` of the (second, partial) pairs, with a partial's `if` lifted out and its symbolic zeros dropped.

    A partial that is zero on a branch (relu, min, max, x^y: the primitive table) makes the
    contribution `if c then x' (∂ * a) else 0` — read in the forward direction,
    `if c then ∂ * x_dot else 0` — so that the zero is never multiplied (docs/transforms.md, Zeros and
    infinities). Partials testing the same condition share one `if`: min x y gives
    `if x <= y then x' a else y' a`. The seconds are opaque here: a transform may pair a partial with
    anything it needs (dualrev's stages pair it with a parent's ID and backward part)."""
    for _, d in pairs:
        if isinstance(d, c.If):
            cond = d.cond

            def branch(pick):
                return [(s, pick(p) if isinstance(p, c.If) and p.cond == cond else p) for s, p in pairs]
            then = by_cases(branch(lambda p: p.then), total)
            else_ = by_cases(branch(lambda p: p.else_), total)
            return c.If(cond, then, else_, ty=then.ty)
    return total([(s, d) for s, d in pairs if not is_zero(d)])


def closed(e: c.Expr) -> bool:
    """A term with no variables and no references to definitions (only literals and primitives)."""
    stack = [e]
    while stack:
        t = stack.pop()
        if not isinstance(t, (c.Lit, c.Prim)):
            return False
        stack.extend(c.children(t))
    return True


def scale(d: c.Expr, a: c.Expr, ty: Type = REAL) -> c.Expr:
    """∂ * a, written as the paper writes it: `a` for ∂ = 1, `-a` for ∂ = -1 (at Real, or elementwise at Array)."""
    if isinstance(d, c.Lit) and d.value == 1.0:
        return a
    if isinstance(d, c.Lit) and d.value == -1.0:
        return c.Prim("neg", (a,), ty=ty)
    return c.Prim("*", (d, a), ty=ty)


__all__ = ["Homomorphism", "TermTransform", "variables_of", "scale", "closed", "by_cases", "Fresh", "touches_array",
           "arrays_unsupported", "mentions_array", "refuse_array_types", "definitions_used"]
