"""Delimited continuations: the CPS transform with adjoint cells of Wang, Zheng, Decker, Wu, Essertel and
Rompf, "Demystifying differentiable programming: shift/reset the penultimate backpropagator" (ICFP 2019).

In the paper (and in Lantern, its Scala implementation) a real is a value and
a mutable *adjoint cell*, and every primitive is a `shift`:

    shift k. let y = (f x, new cell) in k y; x.d += ∂f(x) * y.d

The forward pass is the chain of calls `k y`; the backward pass is the code
after each `k y`, run as the calls return. Here the shift is made explicit by
a call-by-value CPS transform whose answer type is Unit (docs/transforms.md,
shift-reset). On types:

    K(Real)   = Real * Cell          K(Int) = Int, K(Bool) = Bool, K(Unit) = Unit, K('a) = 'a
    K(A * B)  = K(A) * K(B)          K([A]) = [K(A)]
    K(A -> B) = K(A) -> (K(B) -> Unit) -> Unit

The target language (lang/transforms/cps.py, with its grammar) is dl's core
plus a few rows of the primitive table that exist only there: `shift h` (a
fresh cell holding 0 for the rest of the term, whose post h runs with the
cell's final value when the rest has returned), `nocell` (the cell of a
constant), `accum c r` (add r into c), `let _ = e1 in e2` (sequencing), the
CPS loops `mapK`, `foldK`, `zipWithK`, `buildK`, and `reset`, which runs a CPS
computation to its end and gives its value.

The rules (one pass, after Danvy and Filinski: the continuation of a subterm is code written in place when it is
known, and a `fun` only where a value must be passed):

    x, g, literals, closed real terms r   give  x, g, (r, nocell)
    fun x -> t               fun x k -> ⟦t⟧ k       (a real parameter used as a number: let (x, x') = x in ...)
    f a1 ... an              f a1 (fun g -> g a2 (... (fun g' -> g' an κ)))   (arguments first)
    let x = t in u           ⟦t⟧ (fun x -> ⟦u⟧ κ)
    if c then a else b       let j = κ in if c then ⟦a⟧ j else ⟦b⟧ j          (one join point: κ once)
    f(x1, ..., xk), real     let y = f(x1, ..., xk) in
                             let y' = shift (fun a -> accum x1' (∂1 f * a); ...; accum xk' (∂k f * a)) in
                             κ (y, y')
    map f xs, fold f z xs    mapK f xs κ, foldK f z xs κ   (likewise zipWith, build)
    grad f x, vjp f x, ...   grad f (fun g -> g x κ), ...  (the primitive's CPS as a function value;
                                                            refused when it runs: the mode does not nest)

with ∂i f read from the primitive table and comparisons reading primal
values. A term that is not a value is `reset (fun k -> ⟦t⟧ k)`.

Every transformed term is checked, wherever the type checker runs, for the
discipline of cps.py as well: calls in tail position, adjoints read only in
posts, one-shot continuations.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..front.desugar import Fresh
from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.types import BOOL, CELL, REAL, UNIT, TCon, TFun, TList, TNeg, TTuple, TVar, Type, prune, resolve
from .common import (TermTransform, arrays_unsupported, by_cases, closed as _closed, definitions_used, scale,
                     touches_array, variables_of)
from .cps import (CELL_PAIR, LOOPS_K, NOCELL, NOTHING, accum, check_discipline, components, is_atom, pair, sequence,
                  shift_let, simplify)

# The CPS version of each structural primitive that calls a function: a missing row is an error naming it.
LOOPS = {"map": "mapK", "fold": "foldK", "zipWith": "zipWithK", "build": "buildK"}
assert set(LOOPS.values()) <= LOOPS_K


# ---- types ------------------------------------------------------------------------------


def k_type(t: Type) -> Type:
    """K on types: Real carries a cell, a function takes a continuation."""
    t = prune(t)
    match t:
        case TCon("Real"):
            return CELL_PAIR
        case TCon("Array"):  # no array rules in shift-reset yet: the shared refusal (the call site's span is added)
            raise arrays_unsupported("shift-reset", "a value of type Array")
        case TCon() | TVar():
            return t
        case TFun(a, r):
            return TFun(k_type(a), cont_of(k_type(r)))
        case TTuple(items):
            return TTuple(tuple(k_type(i) for i in items))
        case TList(item):
            return TList(k_type(item))
        case TNeg():
            raise AssertionError(f"the CPS transform cannot transform the linear type {t}")
    raise AssertionError(f"no CPS transform of the type {t}")


def cont_of(t: Type) -> Type:
    """The type of a CPS computation of a `t`: (t -> Unit) -> Unit."""
    return TFun(TFun(t, UNIT), UNIT)


def _cont(t: Type) -> Type:
    """The type of a continuation receiving a `t`: t -> Unit."""
    return TFun(t, UNIT)


def _curried(arg_types: list[Type], result: Type) -> Type:
    for a in reversed(arg_types):
        result = TFun(a, result)
    return result


# ---- continuations while transforming -----------------------------------------------------


@dataclass(frozen=True)
class Static:
    """The rest of the term, known here: `build(v)` writes it with the value v in place."""

    build: Callable[[c.Expr], c.Expr]
    ty: Type             # the K-type of the value it receives
    hint: str | None     # a name for that value (the `let` it binds), if any


@dataclass(frozen=True)
class Dynamic:
    """A continuation variable of the target term (a function's k, or a join point j)."""

    var: c.Var


Cont = Static | Dynamic


def _inert(e: c.Expr) -> bool:
    """Atoms, lambdas, and tuples and lists of them: evaluating them cannot fail, so it can move."""
    if is_atom(e) or isinstance(e, c.Lam):
        return True
    return isinstance(e, (c.Tuple, c.List)) and all(_inert(i) for i in e.items)


# ---- the transform --------------------------------------------------------------------------


def transform(e: c.Expr) -> c.Expr:
    """K of a specialised core term: a CPS value (a lambda, ...) or `reset (fun k -> ⟦e⟧ k)`."""
    # the names of definitions it uses too: a continuation `k` would capture a definition `k` once printed
    avoid = variables_of(e) | definitions_used(e)
    fresh = Fresh(avoid, "v")
    e = unique_binders(e, fresh)
    return CPS(fresh, avoid, _primal_uses(e)).top(e)


class CPS:
    """One run of the transform: fresh names, which variables are used as numbers, which terms are trivial."""

    def __init__(self, fresh: Fresh, avoid: set[str], primal_uses: set[tuple]):
        self.fresh = fresh
        self.avoid = avoid
        self.k = "k" if "k" not in avoid else fresh("k")  # every function's continuation parameter
        avoid.add(self.k)
        self.a = "a" if "a" not in avoid else fresh("a")  # every post's parameter, its shift's adjoint
        avoid.add(self.a)
        self.primal_uses = primal_uses  # (name, inst) of the variables a real primitive or comparison reads
        self.memo: dict[int, tuple[c.Expr, bool]] = {}

    # ---- names
    def pair_names(self, base: str | None, reuse: bool) -> tuple[str, str]:
        """A number's name and its cell's (x, x'), the cell's name new to the term."""
        if reuse and base is not None and base + "'" not in self.avoid:
            self.avoid.add(base + "'")
            return base, base + "'"
        while True:
            p = self.fresh(base or "x")
            if p + "'" not in self.avoid:
                self.avoid.add(p + "'")
                return p, p + "'"

    # ---- which terms call nothing
    def trivial(self, e: c.Expr) -> bool:
        """Whether `e` can neither call a function nor apply a real primitive to a variable (a value)."""
        hit = self.memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        match e:
            case c.Var() | c.Global() | c.Lit() | c.Lam():
                out = True
            case c.App():
                out = False
            case c.Prim(op, args):
                prim = PRIMITIVES[op]
                serious = (prim.kind == "ad" or op in LOOPS
                           or (prim.kind == "real" and _at_real(e) and not _closed(e)))
                out = not serious and all(self.trivial(a) for a in args)
            case c.LetRec(body=body):
                out = self.trivial(body)
            case _:
                out = all(self.trivial(t) for t in c.children(e))
        self.memo[id(e)] = (e, out)
        return out

    # ---- entry
    def top(self, e: c.Expr) -> c.Expr:
        if self.trivial(e):
            return self.value(e, {})
        t = k_type(e.ty)
        k = c.Var(self.k, ty=_cont(t))
        body = self.cps(e, Dynamic(k), {})
        return c.Prim("reset", (c.Lam(self.k, body, ty=cont_of(t)),), ty=t, span=e.span)

    # ---- values
    def value(self, e: c.Expr, env: dict) -> c.Expr:
        """The K-value of a trivial term. `env`: the real variables taken apart, (name, inst) -> (x, x')."""
        ty = k_type(e.ty)
        match e:
            case c.Var(name, inst):
                parts = env.get((name, inst))
                if parts is not None:
                    return pair(c.Var(parts[0], ty=REAL), c.Var(parts[1], ty=CELL))
                return replace(e, ty=ty)
            case c.Global():
                return replace(e, ty=ty)
            case c.Lit() if prune(e.ty) == REAL:
                return pair(e, NOCELL)
            case c.Lit():
                return replace(e, ty=ty)
            case c.Lam(param, body):                       # fun x -> t   =>   fun x k -> ⟦t⟧ k
                inner = _without(env, [(param, ())])
                arg_t = prune(e.ty).arg
                take_apart = self.take_apart(param, (), arg_t, inner)
                k = c.Var(self.k, ty=_cont(k_type(body.ty)))
                out = self.cps(body, Dynamic(k), inner)
                if take_apart is not None:
                    out = c.LetTuple(take_apart, c.Var(param, ty=CELL_PAIR), out, ty=UNIT)
                return c.Lam(param, c.Lam(self.k, out, ty=cont_of(k_type(body.ty))), origin=e.origin or e,
                             ty=ty, span=e.span)
            case c.Prim(_, args):
                return self.rebuild(e, [self.value(a, env) for a in args])
            case c.Let(name, bound, body, inst):
                return replace(e, bound=self.value(bound, env), body=self.value(body, _without(env, [(name, inst)])),
                               ty=ty)
            case c.LetRec(name, bound, body, inst):
                inner = _without(env, [(name, inst)])
                return replace(e, bound=self.value(bound, inner), body=self.value(body, inner), ty=ty)
            case c.LetTuple(names, bound, body):
                return replace(e, bound=self.value(bound, env),
                               body=self.value(body, _without(env, [(n, ()) for n in names])), ty=ty)
            case c.If() | c.Tuple() | c.List():
                return replace(c.map_children(e, lambda t: self.value(t, env)), ty=ty)
        raise AssertionError(f"the CPS transform has no rule for {type(e).__name__}")

    def rebuild(self, e: c.Prim, args: list[c.Expr]) -> c.Expr:
        """A primitive that calls nothing, on the K-values of its arguments."""
        prim = PRIMITIVES[e.op]
        if touches_array(e):  # no array rules in shift-reset yet: the shared refusal
            raise arrays_unsupported("shift-reset", f"the array operation `{e.op}`", e.span)
        match prim.kind:
            case "real" if _at_real(e):                    # closed: a constant
                return pair(e, NOCELL)
            case "compare" if _at_real(e):
                return c.Prim(e.op, tuple(_primal(a) for a in args), ty=BOOL, span=e.span)
            case "toint":
                return c.Prim(e.op, tuple(_primal(a) for a in args), ty=e.ty, span=e.span)
            case "toreal":
                return pair(c.Prim(e.op, tuple(args), ty=REAL, span=e.span), NOCELL)
            case "structural" if e.op in LOOPS:
                raise AssertionError(f"{e.op} calls a function: it has a CPS rule")
            case "structural" if any(isinstance(prune(a), TFun) for a in _arg_types(prim)):
                raise AssertionError(f"the structural primitive {e.op!r} calls a function but has no CPS "
                                     "version in shift_reset.LOOPS")
            case "real" | "compare" | "int" | "bool" | "structural":
                return c.Prim(e.op, tuple(args), ty=k_type(e.ty), span=e.span)
        raise AssertionError(f"no CPS rule for the primitive {e.op!r} ({prim.kind})")

    def take_apart(self, name: str, inst: tuple, t: Type, env: dict) -> tuple[str, str] | None:
        """A real variable that some primitive reads as a number is taken apart where it is bound:
        `let (x, x') = x in ...`; env then maps it to (x, x'). None for any other variable."""
        if prune(t) != REAL or (name, inst) not in self.primal_uses:
            return None
        parts = self.pair_names(name, reuse=not inst)
        env[(name, inst)] = parts
        return parts

    # ---- serious terms
    def cps(self, e: c.Expr, k: Cont, env: dict) -> c.Expr:
        """⟦e⟧ k: a Unit term that computes e and passes its K-value to k."""
        if self.trivial(e):
            return self.give(k, self.value(e, env))
        match e:
            case c.App():                                  # f a1 ... an: the arguments first
                head, args = c.spine(e)
                return self.sequence([head, *args], env, lambda vs: self.apply(e, head.ty, vs[0], vs[1:], k))
            case c.Let(name, bound, body, inst) if len(uses := _use_types(body, (name, inst))) > 1:
                return self.cps(self.specialise(e, uses), k, env)
            case c.Let(name, bound, body, inst):           # ⟦t⟧ (fun x -> ⟦u⟧ k)
                hint = name if not inst else None
                return self.cps(bound, Static(lambda v: self.bind_let(e, v, k, env), k_type(bound.ty), hint), env)
            case c.LetTuple(bound=bound):
                return self.cps(bound, Static(lambda v: self.bind_tuple(e, v, k, env), k_type(bound.ty), None), env)
            case c.LetRec(name, bound, body, inst):
                inner = _without(env, [(name, inst)])
                return replace(e, bound=self.value(bound, inner), body=self.cps(body, k, inner), ty=UNIT)
            case c.If(cond, then, else_):                  # let j = k in if c then ⟦a⟧ j else ⟦b⟧ j
                def branches(test: c.Expr) -> c.Expr:
                    return self.join(k, lambda j: c.If(test, self.cps(then, j, env), self.cps(else_, j, env),
                                                       ty=UNIT, span=e.span))
                return self.cps(cond, Static(branches, BOOL, None), env)
            case c.Tuple(items) | c.List(items):
                return self.sequence(list(items), env,
                                     lambda vs: self.give(k, replace(e, items=tuple(vs), ty=k_type(e.ty))))
            case c.Prim():
                return self.primitive(e, k, env)
        raise AssertionError(f"the CPS transform has no rule for {type(e).__name__}")

    def specialise(self, e: c.Let, uses: list[Type]) -> c.Expr:
        """`let p = t in u` with t serious and p used at several types: one copy of the let per type.

        ⟦t⟧ (fun p -> ...) binds p by a lambda, which the target's inference does not generalise (CPS
        loses let-polymorphism of computed values), so `p true` and `p 1.0` would not type-check. dl is
        pure: computing t once per type gives the same values (and costs t that many times)."""
        names = [self.fresh(e.name.rstrip("'0123456789") or "p") for _ in uses]
        key = (e.name, e.inst)

        def rename(t: c.Expr) -> c.Expr:
            if isinstance(t, c.Var) and (t.name, t.inst) == key:
                return c.Var(names[uses.index(resolve(t.ty))], ty=t.ty, span=t.span)
            return c.map_children(t, rename)
        out = rename(e.body)
        for name, t in reversed(list(zip(names, uses))):
            out = c.Let(name, replace(e.bound, ty=t), out, ty=e.ty, span=e.span)
        return out

    def primitive(self, e: c.Prim, k: Cont, env: dict) -> c.Expr:
        prim = PRIMITIVES[e.op]
        if touches_array(e):  # no array rules in shift-reset yet: the shared refusal
            raise arrays_unsupported("shift-reset", f"the array operation `{e.op}`", e.span)
        args = list(e.args)
        if prim.kind == "real" and _at_real(e):
            return self.sequence(args, env, lambda vs: self.shift(e, vs, k))
        if prim.kind == "ad":                              # grad f x  =>  grad f (fun g -> g x k)
            rest_t = _curried([a.ty for a in args[1:]], e.ty)   # the type of `grad f`
            return self.sequence(args, env, lambda vs: self.join(k, lambda j: c.Prim(
                e.op, (vs[0], self.spine_continuation(e, rest_t, vs[1:], j)), src=e.src, ty=UNIT, span=e.span)))
        if e.op in LOOPS:                                  # map f xs  =>  mapK f xs k
            return self.sequence(args, env, lambda vs: self.join(k, lambda j: c.Prim(
                LOOPS[e.op], (*vs, self.reify(j)), ty=UNIT, span=e.span)))
        return self.sequence(args, env, lambda vs: self.give(k, self.rebuild(e, vs)))

    def shift(self, e: c.Prim, values: list[c.Expr], k: Cont) -> c.Expr:
        """let y = f(x1..xk) in let y' = shift (fun a -> accum x1' (∂1 f * a); ...) in k (y, y')"""
        binds: list[tuple[tuple[str, str], c.Expr]] = []
        parts: list[tuple[c.Expr, c.Expr]] = []
        seen: dict = {}
        for v in values:
            found = components(v)
            if found is None and isinstance(v, c.Var) and (v.name, v.inst) in seen:
                found = seen[(v.name, v.inst)]                 # x * x takes x apart once
            if found is None:
                base = v.name.rstrip("0123456789'") if isinstance(v, c.Var) else None
                names = self.pair_names(base or None, reuse=False)
                binds.append((names, v))
                found = (c.Var(names[0], ty=REAL), c.Var(names[1], ty=CELL))
                if isinstance(v, c.Var):
                    seen[(v.name, v.inst)] = found
            parts.append(found)
        primals = [p for p, _ in parts]
        hint = k.hint if isinstance(k, Static) else None
        y, y_cell = self.pair_names(hint or "y", reuse=hint is not None)
        result, cell = c.Var(y, ty=REAL), c.Var(y_cell, ty=CELL)
        partials = PRIMITIVES[e.op].partials(*primals, result)

        adj = c.Var(self.a, ty=REAL)

        def updates(pairs: list) -> c.Expr:                   # accum x1' (∂1 * a); ...
            out: c.Expr | None = None
            for x_cell, d in reversed(pairs):
                update = accum(x_cell, scale(d, adj))
                out = update if out is None else sequence(update, out)
            return out if out is not None else NOTHING
        # the zeros rule: a partial zero on a branch (relu, min) is an `if` around the updates, never `0 * ..`
        post = by_cases([(x_cell, d) for (_, x_cell), d in zip(parts, partials)], updates)
        out: c.Expr = c.Let(y, c.Prim(e.op, tuple(primals), ty=REAL, span=e.span),
                            shift_let(y_cell, self.a, post, self.give(k, pair(result, cell))), ty=UNIT, span=e.span)
        for names, v in reversed(binds):
            out = c.LetTuple(names, v, out, ty=UNIT)
        return out

    # ---- continuations
    def give(self, k: Cont, v: c.Expr) -> c.Expr:
        """k v: a call of a continuation variable, or the known rest written in place."""
        if isinstance(k, Dynamic):
            return c.App(k.var, v, ty=UNIT)
        return k.build(v)

    def reify(self, k: Cont) -> c.Expr:
        """k as a value: the variable, or `fun x -> <the rest>`."""
        if isinstance(k, Dynamic):
            return k.var
        name = k.hint or self.fresh("v")
        return c.Lam(name, k.build(c.Var(name, ty=k.ty)), ty=_cont(k.ty))

    def join(self, k: Cont, make: Callable[[Cont], c.Expr]) -> c.Expr:
        """k named once by a let, `let j x = <the rest> in ...` (Lantern's FUN(k)): both branches of an `if`
        continue with it, and a call or a loop takes it by name. So the rest of the term after a call is a
        let's bound, not the call's last argument: the printed term nests no deeper than its lets, where
        `f a (fun x -> <rest>)` would close one parenthesis per call still pending at its end."""
        if isinstance(k, Dynamic):
            return make(k)
        j = c.Var(self.fresh("j"), ty=_cont(k.ty))
        return c.Let(j.name, self.reify(k), make(Dynamic(j)), ty=UNIT)

    def apply(self, e: c.App, head_t: Type, fn: c.Expr, args: list[c.Expr], k: Cont) -> c.Expr:
        """f a1 ... an  =>  f a1 (fun g -> g a2 (... k)), the rest named first when it is code (join)."""
        rest_t = prune(head_t).result

        def call(j: Cont) -> c.Expr:
            cont = self.spine_continuation(e, rest_t, args[1:], j)
            return c.App(c.App(fn, args[0], ty=cont_of(k_type(rest_t)), span=e.span), cont, ty=UNIT, span=e.span)
        return self.join(k, call)

    def spine_continuation(self, e: c.Expr, fn_t: Type, args: list[c.Expr], k: Cont) -> c.Expr:
        """The continuation that applies the function it receives (of source type fn_t) to the rest of
        an application's arguments: `fun g -> g a k`, or k itself when none are left."""
        if not args:
            return self.reify(k)
        g = c.Var(self.fresh("g"), ty=k_type(fn_t))
        return c.Lam(g.name, self.apply(e, fn_t, g, args, k), ty=_cont(k_type(fn_t)))

    # ---- binding the value a continuation receives
    def bind_let(self, e: c.Let, v: c.Expr, k: Cont, env: dict) -> c.Expr:
        key = (e.name, e.inst)
        inner = _without(env, [key])
        parts = components(v)
        if prune(e.bound.ty) == REAL and parts is not None and all(isinstance(p, c.Var) for p in parts):
            inner[key] = (parts[0].name, parts[1].name)    # the shift that made it used this let's name
            return self.cps(e.body, k, inner)
        take_apart = self.take_apart(e.name, e.inst, e.bound.ty, inner)
        body = self.cps(e.body, k, inner)
        if take_apart is not None:
            return c.LetTuple(take_apart, v, body, ty=UNIT, span=e.span)
        if isinstance(v, c.Var) and (v.name, v.inst) == key:  # the continuation's parameter is the let's name
            return body
        return c.Let(e.name, v, body, e.inst, ty=UNIT, span=e.span)

    def bind_tuple(self, e: c.LetTuple, v: c.Expr, k: Cont, env: dict) -> c.Expr:
        inner = _without(env, [(n, ()) for n in e.names])
        items = prune(e.bound.ty).items
        apart = [(n, self.take_apart(n, (), t, inner)) for n, t in zip(e.names, items)]
        body = self.cps(e.body, k, inner)
        for n, names in reversed(apart):
            if names is not None:
                body = c.LetTuple(names, c.Var(n, ty=CELL_PAIR), body, ty=UNIT)
        return c.LetTuple(e.names, v, body, ty=UNIT, span=e.span)

    def sequence(self, items: list[c.Expr], env: dict, then: Callable[[list[c.Expr]], c.Expr]) -> c.Expr:
        """Evaluate `items` left to right and continue with their K-values. A trivial item that is not an
        atom and comes before a serious one is named first, so that it is still evaluated first."""
        later_serious = [False] * (len(items) + 1)
        for i in range(len(items) - 1, -1, -1):
            later_serious[i] = later_serious[i + 1] or not self.trivial(items[i])

        def go(i: int, values: list[c.Expr]) -> c.Expr:
            if i == len(items):
                return then(values)
            item = items[i]
            if self.trivial(item):
                v = self.value(item, env)
                if later_serious[i + 1] and not _inert(v):
                    t = c.Var(self.fresh("t"), ty=v.ty)
                    return c.Let(t.name, v, go(i + 1, values + [t]), ty=UNIT)
                return go(i + 1, values + [v])
            return self.cps(item, Static(lambda v: go(i + 1, values + [v]), k_type(item.ty), None), env)
        return go(0, [])


def _at_real(e: c.Prim) -> bool:
    return any(prune(a.ty) == REAL for a in e.args)


def _arg_types(prim) -> list[Type]:
    out, t = [], prim.scheme.body
    while isinstance(t, TFun):
        out.append(t.arg)
        t = t.result
    return out


def _primal(v: c.Expr) -> c.Expr:
    """The number inside a K-real: x of (x, x'), else fst v."""
    parts = components(v)
    if parts is not None:
        return parts[0]
    return c.Prim("fst", (v,), ty=REAL)


def _use_types(body: c.Expr, key: tuple) -> list[Type]:
    """The distinct types at which `body` uses the variable `key` (binders are unique: no shadowing)."""
    out: list[Type] = []
    stack = [body]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Var) and (t.name, t.inst) == key:
            ty = resolve(t.ty)
            if ty not in out:
                out.append(ty)
        stack.extend(c.children(t))
    return out


def _without(env: dict, keys) -> dict:
    out = dict(env)
    for key in keys:
        out.pop(key, None)
    return out


def _primal_uses(e: c.Expr) -> set[tuple]:
    """The variables that a real primitive or a comparison of reals reads as numbers."""
    out: set = set()
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Prim) and PRIMITIVES[t.op].kind in ("real", "compare", "toint") and _at_real(t):
            out.update((a.name, a.inst) for a in t.args if isinstance(a, c.Var))
        stack.extend(c.children(t))
    return out


def unique_binders(e: c.Expr, fresh: Fresh) -> c.Expr:
    """`e` with every binder that would shadow a variable in scope (or a free one) renamed.

    One-pass CPS writes a term's continuation *inside* the scopes the term opens (`f (let x = .. in ..) x`
    becomes `let x = .. in f .. x`), where a shadowing binder would capture it."""
    taken: set = set(c.free_locals(e))

    def pick(name: str, inst: tuple) -> str:
        if (name, inst) not in taken:
            taken.add((name, inst))
            return name
        new = fresh(name.rstrip("'0123456789") or "x")
        taken.add((new, inst))
        return new

    def go(t: c.Expr, ren: dict) -> c.Expr:
        match t:
            case c.Var(name, inst) if (name, inst) in ren:
                return replace(t, name=ren[(name, inst)])
            case c.Lam(param, body):
                p = pick(param, ())
                return replace(t, param=p, body=go(body, {**ren, (param, ()): p}))
            case c.Let(name, bound, body, inst):
                b = go(bound, ren)
                n = pick(name, inst)
                return replace(t, name=n, bound=b, body=go(body, {**ren, (name, inst): n}))
            case c.LetRec(name, bound, body, inst):
                n = pick(name, inst)
                inner = {**ren, (name, inst): n}
                return replace(t, name=n, bound=go(bound, inner), body=go(body, inner))
            case c.LetTuple(names, bound, body):
                b = go(bound, ren)
                new = tuple(pick(n, ()) for n in names)
                return replace(t, names=new, bound=b, body=go(body, {**ren, **{(n, ()): m for n, m in zip(names, new)}}))
        return c.map_children(t, lambda u: go(u, ren))
    return go(e, {})


# `grad f x` becomes `grad f (fun g -> g x k)`: the primitive takes K(f) and a continuation, typed as K of its
# whole arrow (TermTransform.ad_args False, the default)
SHIFT_RESET = TermTransform("K", transform, k_type, simplify, checks=(check_discipline,))
