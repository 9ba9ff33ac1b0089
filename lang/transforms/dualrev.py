"""Dual-numbers reverse AD made efficient by well-known program transformations, one stage at a time.

T. J. Smeding and M. Vákár, "Efficient Dual-Numbers Reverse AD via Well-Known Program Transformations",
POPL 2023 (docs/transforms.md, dualrev). They start from the dual numbers of ←D (each real paired with
its backpropagator) and reach the right complexity by standard functional-programming steps. Here each
step is a mode whose target `dl transform` prints, the checker checks and `dl compare` runs:

    stage 0  backprop-naive   ←D, each backpropagator run when it is called: exponential on sharing
    stage 1  dualrev-staged   linear factoring made explicit: a backpropagator *returns* the calls it
                              would make, as data (`Staged`), and a driver merges calls of the same
                              backpropagator before running it (x' u + x' v = x' (u + v))
    stage 2  dualrev-cayley   the Cayley transform of that monoid: a backpropagator takes the pending
                              calls and adds its own to them (0 becomes the identity, + composition)
    stage 3  dualrev-ids      every real gets an ID from a supply threaded through the program (state
                              passing, lang/transforms/dualrev_ids.py); the driver runs the largest ID
                              first, so each body runs once
    stage 4  dualrev-defun    the backpropagators defunctionalised: a `Contrib` record of the parents'
                              IDs, their records and the partial derivatives
    stage 5  dualrev          stage 4's term, resolved with two mutable arrays indexed by ID
                              (lang/modes/dualrev.py); the transform is stage 4's

Stages 1 and 2 change only what ←D's linear fragment means; their term is ←D's, written at the
stage's type (everything not shown is ←D's rule):

    stage 1   D(Real) = Real * (Real -> Staged)
              fun a -o t  ↦  fun a -> ⟦t⟧        ⟦x' e⟧ = stage x' e    ⟦t + u⟧ = plusS ⟦t⟧ ⟦u⟧    ⟦0⟧ = zeroS
    stage 2   D(Real) = Real * (Real -> Staged -> Staged)
              fun a -o t  ↦  fun a -> fun acc -> ⟦t⟧acc
              ⟦x' e⟧acc = stageC x' e acc    ⟦t + u⟧acc = ⟦u⟧(⟦t⟧acc)    ⟦0⟧acc = acc
    both      ⟦if c then t else u⟧ = if c then ⟦t⟧ else ⟦u⟧   (←D's `if` for a partial zero on a branch:
              relu, min, x^y; docs/transforms.md, Zeros and infinities)

so that `x * y` becomes, at stage 2,

    let (x, x') = x in let (y, y') = y in
    (x * y, fun a -> fun acc -> stageC y' (x * a) (stageC x' (y * a) acc))

A `Staged` value is a finite map from backpropagators to the argument pending for each; in stages 1
and 2 a backpropagator is known only by its identity as a closure (not printable: the runtime keys
its map by the closure object), which stage 3 replaces by an ID that is data.

The targets' rules beyond typing (TermTransform.checks, run on every checked term): a backpropagator
uses its parameter linearly (as ←D's do: lang/transforms/check.py), its accumulator exactly once, at
the end of the chain; from stage 3 on, every supply is used exactly once on every path (the supply
is threaded, never dropped or duplicated: dualrev_ids.check_supply).
"""
from __future__ import annotations

from dataclasses import replace

from ..model import core as c
from ..model.types import D, REAL, STAGED, SUPPLY, TFun, TList, TNeg, TTuple, TVar, Type, prune, resolve
from .backprop import BACKPROP
from .check import TransformBug, linear_real
from .common import TermTransform, arrays_unsupported, touches_array, variables_of
from .dualrev_ids import BP_CAYLEY, ids_transform
from .simplify import simplify as simplify_backprop

BP_STAGED = TFun(REAL, STAGED)   # stage 1: a backpropagator returns the calls it stages
STAGING = {"stage", "stageC", "stageAt"}  # the rows that stage a call: (ID,) backpropagator, weight(, acc)


def _prim(op: str, *args: c.Expr, ty: Type) -> c.Prim:
    return c.Prim(op, tuple(args), ty=ty)


class Lowering:
    """←D's linear fragment written in the target of stage 1 (`cayley=False`) or stage 2, and back."""

    def __init__(self, cayley: bool, acc: str = "acc"):
        self.cayley = cayley
        self.acc = acc  # the accumulator's name (stage 2): a name the term does not use
        self.bp = BP_CAYLEY if cayley else BP_STAGED

    # ---- types: ¬Real becomes the stage's backpropagator type
    def type(self, t: Type) -> Type:
        return _map_type(t, lambda u: self.bp if isinstance(u, TNeg) and prune(u.item) == REAL else None)

    def untype(self, t: Type) -> Type:
        return _map_type(t, lambda u: TNeg(REAL) if u == self.bp else None)

    # ---- terms
    def term(self, e: c.Expr) -> c.Expr:
        """The ←D term `e` at this stage."""
        match e:
            case c.LinLam(a, body) if self.cayley:   # fun a -o t  ->  fun a -> fun acc -> [t]acc
                inner = c.Lam(self.acc, self.chain(body, c.Var(self.acc, ty=STAGED)), ty=TFun(STAGED, STAGED),
                              span=e.span)
                return c.Lam(a, inner, ty=self.bp, span=e.span)
            case c.LinLam(a, body):                  # fun a -o t  ->  fun a -> [t]
                return c.Lam(a, self.sum(body), ty=self.bp, span=e.span)
            case c.LinApp() | c.DZero() | c.DSum():
                raise AssertionError(f"a term of type d outside a backpropagator: {type(e).__name__}")
        return _retyped(c.map_children(e, self.term), e, self.type)

    def sum(self, t: c.Expr) -> c.Expr:
        """A d-typed body as the Staged value of its calls (stage 1)."""
        match t:
            case c.DZero():
                return _prim("zeroS", ty=STAGED)
            case c.DSum(l, r):
                return _prim("plusS", self.sum(l), self.sum(r), ty=STAGED)
            case c.LinApp(fn, arg):
                return _prim("stage", self.term(fn), self.term(arg), ty=STAGED)
            case c.If(cond, then, else_):   # a partial zero on a branch (common.by_cases)
                return c.If(self.term(cond), self.sum(then), self.sum(else_), ty=STAGED, span=t.span)
        raise AssertionError(f"a backpropagator's body is not a sum of calls: {type(t).__name__}")

    def chain(self, t: c.Expr, acc: c.Expr) -> c.Expr:
        """A d-typed body as a function of the accumulator (stage 2): [t]acc."""
        match t:
            case c.DZero():
                return acc
            case c.DSum(l, r):
                return self.chain(r, self.chain(l, acc))
            case c.LinApp(fn, arg):
                return _prim("stageC", self.term(fn), self.term(arg), acc, ty=STAGED)
            case c.If(cond, then, else_):   # [if c then t else u]acc = if c then [t]acc else [u]acc
                return c.If(self.term(cond), self.chain(then, acc), self.chain(else_, acc), ty=STAGED, span=t.span)
        raise AssertionError(f"a backpropagator's body is not a sum of calls: {type(t).__name__}")

    def unlower(self, e: c.Expr) -> c.Expr:
        """The ←D term this stage's term writes (so that ←D's simplifier can clean it)."""
        if isinstance(e, c.Lam) and e.ty is not None and prune(e.ty) == self.bp:
            if self.cayley:
                assert isinstance(e.body, c.Lam), e
                body = self.unchain(e.body.body, e.body.param)
            else:
                body = self.unsum(e.body)
            return c.LinLam(e.param, body, ty=TNeg(REAL), span=e.span)
        return _retyped(c.map_children(e, self.unlower), e, self.untype)

    def unsum(self, t: c.Expr) -> c.Expr:
        match t:
            case c.Prim("zeroS"):
                return c.DZero(ty=D)
            case c.Prim("plusS", (l, r)):
                return c.DSum(self.unsum(l), self.unsum(r), ty=D)
            case c.Prim("stage", (fn, arg)):
                return c.LinApp(self.unlower(fn), self.unlower(arg), ty=D)
            case c.If(cond, then, else_):
                return c.If(self.unlower(cond), self.unsum(then), self.unsum(else_), ty=D, span=t.span)
        raise AssertionError(t)

    def unchain(self, t: c.Expr, acc: str) -> c.Expr:
        match t:
            case c.Var(name) if name == acc:
                return c.DZero(ty=D)
            case c.Prim("stageC", (fn, arg, rest)):
                call = c.LinApp(self.unlower(fn), self.unlower(arg), ty=D)
                before = self.unchain(rest, acc)
                return call if isinstance(before, c.DZero) else c.DSum(before, call, ty=D)
            case c.If(cond, then, else_):
                return c.If(self.unlower(cond), self.unchain(then, acc), self.unchain(else_, acc), ty=D, span=t.span)
        raise AssertionError(t)


def _map_type(t: Type, leaf) -> Type:
    """`t` with the parts `leaf` rewrites (a type, or None to go on inside) rewritten."""
    t = prune(t)
    found = leaf(t)
    if found is not None:
        return found
    match t:
        case TFun(a, r):
            return TFun(_map_type(a, leaf), _map_type(r, leaf))
        case TTuple(items):
            return TTuple(tuple(_map_type(i, leaf) for i in items))
        case TList(item):
            return TList(_map_type(item, leaf))
    return t


def _retyped(e: c.Expr, source: c.Expr, type_fn) -> c.Expr:
    return replace(e, ty=type_fn(source.ty)) if source.ty is not None else e


def _lowering(cayley: bool, e: c.Expr) -> Lowering:
    """The lowering for one term: its accumulator named apart from every variable of the term."""
    taken = variables_of(e)
    return Lowering(cayley, next(n for n in ("acc", "acc'", "acc1", "acc2", "acc3") if n not in taken))


def staged_transform(cayley: bool) -> TermTransform:
    """Stage 1 (cayley=False) or stage 2: ←D, then its linear fragment written as data."""
    symbol = "Dcayley" if cayley else "Dstaged"
    plain = Lowering(cayley)

    def term(e: c.Expr) -> c.Expr:
        _refuse_arrays(e, "dualrev-cayley" if cayley else "dualrev-staged")
        d = BACKPROP.term(e)
        return _lowering(cayley, d).term(d)

    def simplify(t: c.Expr) -> c.Expr:  # ←D's clean-ups, on the ←D term this one writes
        d = plain.unlower(t)
        return _lowering(cayley, d).term(simplify_backprop(d))

    return TermTransform(symbol, term, lambda t: plain.type(BACKPROP.type(t)), simplify,
                         checks=(check_backpropagators,))


def _refuse_arrays(e: c.Expr, mode: str) -> None:
    """←D has array rules, but their backpropagators (vector–Jacobian products, effects) are not sums of
    calls that these stages can write as data: an array operation is refused with the shared diagnostic."""
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Prim) and touches_array(t):
            raise arrays_unsupported(mode, f"the array operation `{t.op}`", t.span)
        stack.extend(c.children(t))


# ---- the backpropagators' discipline (TermTransform.checks) ------------------------------------------


def check_backpropagators(typed: c.Expr) -> None:
    """Every backpropagator `fun a -> ...` of stages 1-3 uses `a` linearly (as a weight of the calls it
    stages) and, in the Cayley form `fun a -> fun acc -> ...`, passes the accumulator on exactly once."""
    stack = [typed]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Lam) and t.ty is not None:
            ty = resolve(t.ty)
            if ty == BP_STAGED:
                _staged_body(t.body, t.param)
            elif _cayley_type(ty):
                if not isinstance(t.body, c.Lam):
                    raise TransformBug("a Cayley backpropagator does not take the accumulator")
                _cayley_body(t.body.body, t.param, t.body.param)
        stack.extend(c.children(t))


def _cayley_type(t: Type) -> bool:
    """Real -> Staged -> Staged, or Real -> 'a -> Staged: a body that never passes its accumulator on
    leaves the accumulator's type free, and must still be caught."""
    match t:
        case TFun(a, TFun(acc, r)):
            return a == REAL and r == STAGED and (acc == STAGED or isinstance(acc, TVar))
    return False


def _mentions(e: c.Expr, name: str) -> bool:
    return (name, ()) in c.free_locals(e)


def _staged_call(args: tuple, a: str, others: tuple[str, ...] = ()) -> None:
    """The backpropagator (and ID) of a staged call do not depend on `a` (nor the accumulator); the
    weight is linear in `a`."""
    *chosen, weight = args
    for x in chosen:
        if any(_mentions(x, n) for n in (a, *others)):
            raise TransformBug(f"the parameter `{a}` of a backpropagator chooses which call it stages")
    if any(_mentions(weight, n) for n in others):
        raise TransformBug("the accumulator of a backpropagator is used in a weight")
    linear_real(weight, a)


def _staged_body(t: c.Expr, a: str) -> None:
    match t:
        case c.Prim("zeroS", ()):
            return
        case c.Prim("plusS", (l, r)):
            _staged_body(l, a)
            _staged_body(r, a)
        case c.Prim("stage", args):
            _staged_call(args, a)
        case c.If(cond, then, else_) if not _mentions(cond, a):   # a partial zero on a branch
            _staged_body(then, a)
            _staged_body(else_, a)
        case _:
            raise TransformBug(f"a stage-1 backpropagator's body contains {type(t).__name__}, not staged calls")


def _cayley_body(t: c.Expr, a: str, acc: str) -> None:
    while True:
        match t:
            case c.Var(name) if name == acc:
                return
            case c.Prim("stageC" | "stageAt", args):
                *call, rest = args
                _staged_call(tuple(call), a, (acc,))
                t = rest
            case c.If(cond, then, else_) if not (_mentions(cond, a) or _mentions(cond, acc)):
                _cayley_body(then, a, acc)   # a partial zero on a branch: each branch passes acc on
                t = else_
            case _:
                raise TransformBug("a Cayley backpropagator must add its calls to its accumulator and return it "
                                   f"(found {type(t).__name__})")


# ---- the supply's discipline (TermTransform.checks) ---------------------------------------------------


def check_supply(typed: c.Expr) -> None:
    """Every supply is used exactly once on every path: the program threads it, never drops or copies it
    (an ID handed out twice would merge two reals' adjoints), and no closure captures one."""
    stack = [typed]
    while stack:
        t = stack.pop()
        match t:
            case c.Lam(param, body) if _is_supply(prune(t.ty).arg if t.ty is not None else None):
                _once(param, body)
            case c.LetTuple(names, bound, body) if bound.ty is not None and isinstance(prune(bound.ty), TTuple):
                for n, part in zip(names, prune(bound.ty).items):
                    if _is_supply(part):
                        _once(n, body)
        stack.extend(c.children(t))


def _is_supply(t: Type | None) -> bool:
    return t is not None and resolve(t) == SUPPLY


def _once(name: str, body: c.Expr) -> None:
    n = _uses(name, body)
    if n != 1:
        raise TransformBug(f"the supply `{name}` is used {n} times (it must be threaded: used exactly once)")


def _uses(name: str, e: c.Expr) -> int:
    """How often `name` is used on any path through `e` (the same on every path, or a TransformBug)."""
    match e:
        case c.Var(n, inst):
            return 1 if n == name and not inst else 0
        case c.Lam(param, body):
            if param != name and (name, ()) in c.free_locals(body):
                raise TransformBug(f"a closure captures the supply `{name}`")
            return 0
        case c.Let(n, bound, body, inst):
            return _uses(name, bound) + (0 if n == name and not inst else _uses(name, body))
        case c.LetRec(n, bound, body):
            return 0 if n == name else _uses(name, bound) + _uses(name, body)
        case c.LetTuple(names, bound, body):
            return _uses(name, bound) + (0 if name in names else _uses(name, body))
        case c.If(cond, then, else_):
            a, b = _uses(name, then), _uses(name, else_)
            if a != b:
                raise TransformBug(f"the supply `{name}` is used {a} times in one branch of an if, {b} in the other")
            return _uses(name, cond) + a
    return sum(_uses(name, t) for t in c.children(e))


STAGED_TRANSFORM = staged_transform(cayley=False)
CAYLEY_TRANSFORM = staged_transform(cayley=True)
IDS_TRANSFORM = ids_transform(defun=False, checks=(check_backpropagators, check_supply))
DEFUN_TRANSFORM = ids_transform(defun=True, checks=(check_supply,))

__all__ = ["STAGED_TRANSFORM", "CAYLEY_TRANSFORM", "IDS_TRANSFORM", "DEFUN_TRANSFORM", "BP_STAGED", "BP_CAYLEY",
           "STAGING", "Lowering", "check_backpropagators", "check_supply"]
