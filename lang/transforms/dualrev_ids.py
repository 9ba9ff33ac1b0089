"""Stages 3 and 4 of dualrev: every real gets an ID from a supply that the program threads (state passing).

Types (docs/transforms.md, dualrev; everything not shown is homomorphic, `D('a) = 'a`):

    D(Real)   = Real * ID * BP                  BP = Real -> Staged -> Staged      (stage 3: dualrev-ids)
                                                BP = Contrib                       (stage 4: dualrev-defun)
    D(A -> B) = D(A) -> Supply -> D(B) * Supply

A function takes the supply after its argument and returns it with its result: the ID supply is an
explicit effect of the printed program (the POPL'23 artifact of tomsmeding/ad-dualrev-th passes it
the same way, `Dt[a] -> Int -> (Dt[b], Int)`). Terms, D[s, t] : D(A) * Supply with s the supply on
entry, used exactly once:

    x                       (x, s)
    r  (a real literal)     ((r, noId, zero), s)              zero: fun a -> fun acc -> acc | contrib0
    fun x -> t              (fun x s1 -> D[s1, t], s)
    t u1 .. un              t, u1 .. un in order, then  applyI (.. applyI (f a1 s') a2 ..) an
    let x = t in u          let (x, s1) = D[s, t] in D[s1, u]
    if c then t else u      c, then  if c' then D[s1, t] else D[s1, u]   (both branches from one supply)
    f(t1, .., tk)  real     the ti in order, each taken apart as (xi, xi_i, xi_c), then
                              let (j, s') = fresh s in ((f(x1, .., xk), j, bp), s')
                            bp = fun a -> fun acc -> stageAt x2_i x2' (∂2 * a) (stageAt x1_i x1' (∂1 * a) acc)
                            or   contrib2 x1_i x1_c ∂1 x2_i x2_c ∂2          (a constant argument is left out;
                            a primitive of constants only is a constant: no ID)
                            a partial zero by construction on a branch (relu, min, x^y) is dropped there:
                            `relu x` gives  if x > 0 then contrib1 x_i x_c 1 else contrib0
                            (docs/transforms.md, Zeros and infinities)
    comparisons, floor ..   the primal values: x1 < x2
    map f xs, fold f z xs   mapI f xs s, foldI f z xs s, zipWithI, buildI: the built-ins that thread the supply
    grad f x, ...           applyI (grad f s) x               (refused when run: these stages do not nest)
    a top-level value       runConst (fun s -> D[s, t])       run once on the supply of constants, whose every
                                                              ID is noId (its reals do not depend on an input)

The rules are written in continuation-passing style (`thread(e, s, k)` hands the value and the next
supply to k), so that a term comes out as one flat chain of lets: `sin (x * y)` is

    let (j, s1) = fresh s in
    let (x1, x1_i, x1_c) = (x * y, j, contrib2 x_i x_c y y_i y_c x) in
    let (j1, s2) = fresh s1 in
    ((sin x1, j1, contrib1 x1_i x1_c (cos x1)), s2)

A real bound to a variable is kept as its three components (x, x_i, x_c) when the program computes with
it. Floating a let out of a subterm puts its name over the rest of the term: in
`(let (p, q) = (y, y) in p) + (let (p, q) = (x, x) in x)` the first `p` is in scope where the second
pattern is bound, and the sum reads it there. So a binder (let, pattern, function parameter) is renamed
when it would shadow a name in scope in the source *or* a binder the target has around it (`enclosing`:
the target's binders around the term being built, which, the rules being in continuation-passing style,
are those whose construction is under way).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..model import core as c
from ..model.primitives import PRIMITIVES, Primitive, is_zero
from ..model.types import CONTRIB, ID, REAL, STAGED, SUPPLY, TFun, TList, TNeg, TTuple, Type, prune
from .common import TermTransform, arrays_unsupported, by_cases, closed, scale, touches_array, variables_of

BP_CAYLEY = TFun(REAL, TFun(STAGED, STAGED))  # stages 2-3: a backpropagator adds its calls to the pending ones
HIGHER_ORDER = {"map": "mapI", "fold": "foldI", "zipWith": "zipWithI", "build": "buildI"}
NUMERIC = {"real", "compare", "toint"}  # the kinds of primitive that take reals apart

Cont = Callable[[c.Expr, c.Expr], c.Expr] | None  # what to do with (value, supply); None: return the pair
Env = dict  # a source variable (name, inst) -> what it is in the target (a renamed Var, or a real's components)


def _pair(t: Type) -> Type:
    return TTuple((t, SUPPLY))


def _is_atom(e: c.Expr) -> bool:
    """A value that can be read again, or computed later, without cost or failure."""
    match e:
        case c.Var() | c.Global() | c.Lit() | c.Lam() | c.Prim(args=()):
            return True
        case c.Tuple(items) | c.List(items):
            return all(_is_atom(i) for i in items)
    return False


class StatePassing:
    """D[s, t] for one term (stage 3 with `defun=False`, stage 4 with `defun=True`)."""

    def __init__(self, defun: bool, taken: set[str]):
        self.defun = defun
        self.taken = taken            # every name of the term and every name given out
        self.counts: dict[str, int] = {}
        self.lin = self.own("a")      # every backpropagator's parameter (stage 3)
        self.acc = self.own("acc")    # and its accumulator
        self.real = TTuple((REAL, ID, CONTRIB if defun else BP_CAYLEY))
        self.enclosing: dict[str, int] = {}   # the target's binders around the term being built (a count each)

    def fresh(self, base: str) -> str:
        """A new name: base1, base2, ... (a counter per base, so that supplies read s, s1, s2)."""
        while True:
            n = self.counts[base] = self.counts.get(base, 0) + 1
            name = f"{base}{n}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def own(self, name: str) -> str:
        """`name` if no variable of the term has it, else a fresh variant."""
        if name in self.taken:
            return self.fresh(name)
        self.taken.add(name)
        return name

    # ---- types
    def type(self, t: Type) -> Type:
        t = prune(t)
        match t:
            case TFun(a, r):
                return TFun(self.type(a), TFun(SUPPLY, _pair(self.type(r))))
            case TTuple(items):
                return TTuple(tuple(self.type(i) for i in items))
            case TList(item):
                return TList(self.type(item))
            case TNeg():
                raise AssertionError(f"stages 3-4 cannot transform the linear type {t}")
        return self.real if t == REAL else t

    # ---- constants
    def zero(self) -> c.Expr:
        """The backward part of a constant: the zero backpropagator, or the empty record."""
        if self.defun:
            return c.Prim("contrib0", (), ty=CONTRIB)
        acc = c.Var(self.acc, ty=STAGED)
        return c.Lam(self.lin, c.Lam(self.acc, acc, ty=TFun(STAGED, STAGED)), ty=BP_CAYLEY)

    def constant(self, value: c.Expr) -> c.Expr:
        return c.Tuple((value, c.Prim("noId", (), ty=ID), self.zero()), ty=self.real, span=value.span)

    # ---- entry
    def top(self, e: c.Expr) -> c.Expr:
        """The transform of a definition or of a function value's lambda."""
        scope = frozenset(n for n, _ in c.free_locals(e))
        self.enclosing = dict.fromkeys(scope, 1)   # a free variable is around the whole term
        if isinstance(e, c.Lam):
            return self.lam(e, {}, scope)
        s = self.own("s")
        run = c.Lam(s, self.thread(e, c.Var(s, ty=SUPPLY), None, {}, scope), ty=TFun(SUPPLY, _pair(self.type(e.ty))))
        return c.Prim("runConst", (run,), ty=self.type(e.ty), span=e.span)

    def lam(self, e: c.Lam, env: Env, scope: frozenset, waiting: tuple = ()) -> c.Lam:
        """fun x -> t  ->  fun x s -> D[s, t]: a function takes the supply after its argument. The reals
        among the parameters of `fun x y -> t` are taken apart where t starts (so that the curried
        function stays `fun x s -> (fun y s1 -> .., s)`, the shape the compiler writes as one loop body)."""
        s = self.own("s")
        key = (e.param, ())
        ty = self.type(e.ty)
        param = self.fresh(e.param) if e.param in self.enclosing else e.param   # (a parameter does not float)
        env2 = {k: v for k, v in env.items() if k != key}
        if param != e.param:
            env2[key] = c.Var(param, ty=ty.arg)
        scope2 = scope | {e.param}
        params = (*waiting, (key, param, prune(e.ty).arg))

        def build() -> c.Expr:
            if isinstance(e.body, c.Lam):   # (fun y s1 -> .., s)
                inner = self.lam(e.body, env2, scope2, params)
                return c.Tuple((inner, c.Var(s, ty=SUPPLY)), ty=ty.result.result)

            def unpack(i: int, env3: Env) -> c.Expr:
                if i == len(params):
                    return self.thread(e.body, c.Var(s, ty=SUPPLY), None, env3, scope2)
                (k, name, t) = params[i]
                return self.unpack(k, name, t, e.body, env3, lambda env4: unpack(i + 1, env4))
            return unpack(0, env2)
        body = self.under((param, s), build)
        return c.Lam(param, c.Lam(s, body, ty=ty.result), origin=e.origin or e, ty=ty, span=e.span)

    def under(self, names, build: Callable[[], c.Expr]) -> c.Expr:
        """build(), for a term that the target binders `names` are around."""
        for n in names:
            self.enclosing[n] = self.enclosing.get(n, 0) + 1
        try:
            return build()
        finally:
            for n in names:
                self.enclosing[n] -= 1
                if not self.enclosing[n]:
                    del self.enclosing[n]

    def unpack(self, key: tuple, name: str, ty: Type, scope_body: c.Expr, env: Env, rest) -> c.Expr:
        """A real bound to the target variable `name` (the source variable `key`) that the program computes
        with is taken apart at once, `let (x, x_i, x') = x in`: its components stand for it from then on
        (and the whole is rebuilt where it is passed on)."""
        if prune(ty) != REAL or not _computed_with(key, scope_body):
            return rest(env)
        names = self.components(name, exact=True)
        parts = c.Tuple(tuple(c.Var(n, ty=t) for n, t in zip(names, self.real.items)), ty=self.real)
        body = rest({**env, key: parts})
        return c.LetTuple(names, c.Var(name, ty=self.real), body, ty=body.ty)

    def components(self, hint: str | None = None, exact: bool = False) -> tuple[str, str, str]:
        """Names for a real's value, ID and backward part: `hint` itself for the value when `exact`."""
        x = hint if exact and hint else self.fresh(hint or "x")
        return x, self.own(x + "_i"), self.own(x + ("_c" if self.defun else "'"))

    # ---- continuations
    def give(self, k: Cont, value: c.Expr, s: c.Expr) -> c.Expr:
        if k is None:
            return c.Tuple((value, s), ty=_pair(value.ty), span=value.span)
        return k(value, s)

    def join(self, computation: c.Expr, k: Cont, ty: Type, hint: str | None = None) -> c.Expr:
        """A term that computes (value, supply): returned as it is, or taken apart for k."""
        if k is None:
            return computation
        v, s = hint or self.fresh("x"), self.fresh("s")
        body = k(c.Var(v, ty=ty), c.Var(s, ty=SUPPLY))
        return c.LetTuple((v, s), computation, body, ty=body.ty, span=computation.span)

    # ---- terms
    def thread(self, e: c.Expr, s: c.Expr, k: Cont, env: Env, scope: frozenset, hint: str | None = None) -> c.Expr:
        """D[s, t], handed to k (see the module docstring); `hint`: a name for the value, if it is bound."""
        ty = self.type(e.ty)
        match e:
            case c.Var(name, inst):
                found = env.get((name, inst))
                return self.give(k, found if found is not None else replace(e, ty=ty), s)
            case c.Global():
                return self.give(k, replace(e, ty=ty), s)
            case c.Lit() if prune(e.ty) == REAL:
                return self.give(k, self.constant(replace(e, ty=REAL)), s)
            case c.Lit():
                return self.give(k, replace(e, ty=ty), s)
            case c.Lam():
                return self.give(k, self.lam(e, env, scope), s)
            case c.App():
                return self.application(e, s, k, env, scope, hint)
            case c.Let(name, bound, body, inst):
                return self.let(e, name, bound, body, inst, s, k, env, scope)
            case c.LetRec(name, bound, body, inst):
                new = self.rename(name, scope)
                env2 = {**env, (name, inst): c.Var(new, inst, ty=self.type(bound.ty))} if new != name else \
                    {k2: v for k2, v in env.items() if k2 != (name, inst)}
                scope2 = scope | {new}
                fn = self.under((new,), lambda: self.lam(bound, env2, scope2))
                rest = self.under((new,), lambda: self.thread(body, s, k, env2, scope2))
                return c.LetRec(new, fn, rest, inst, ty=rest.ty, span=e.span)
            case c.LetTuple(names, bound, body):
                return self.thread(bound, s, lambda v, s1: self.let_tuple(e, names, v, body, s1, k, env, scope),
                                   env, scope)
            case c.If(cond, then, else_):
                def branches(v: c.Expr, s1: c.Expr) -> c.Expr:
                    choice = c.If(v, self.thread(then, s1, None, env, scope), self.thread(else_, s1, None, env, scope),
                                  ty=_pair(ty), span=e.span)
                    return self.join(choice, k, ty, hint)
                return self.thread(cond, s, branches, env, scope)
            case c.Tuple(items):
                return self.sequence(items, s, lambda vs, s1: self.give(k, c.Tuple(tuple(vs), ty=ty, span=e.span), s1),
                                     env, scope)
            case c.List(items):
                return self.sequence(items, s, lambda vs, s1: self.give(k, c.List(tuple(vs), ty=ty, span=e.span), s1),
                                     env, scope)
            case c.Prim():
                return self.primitive(e, s, k, env, scope, hint)
        raise AssertionError(f"stages 3-4 have no rule for {type(e).__name__}")

    def sequence(self, items, s: c.Expr, k: Callable, env: Env, scope: frozenset) -> c.Expr:
        """The items in order, each bound to a variable unless it is an atom or the last."""
        items = list(items)
        out: list[c.Expr] = []

        def step(i: int, s1: c.Expr) -> c.Expr:
            if i == len(items):
                return k(out, s1)

            def got(v: c.Expr, s2: c.Expr) -> c.Expr:
                if i + 1 < len(items) and not _is_atom(v):
                    return self.bind_value(v, lambda w: (out.append(w), step(i + 1, s2))[1])
                out.append(v)
                return step(i + 1, s2)
            return self.thread(items[i], s1, got, env, scope)
        return step(0, s)

    def bind_value(self, v: c.Expr, rest: Callable[[c.Expr], c.Expr]) -> c.Expr:
        """`let x = v in rest x` (for a real whose backward part is a constant: its value only)."""
        if _constant_backward(v):
            x = self.fresh("x")
            body = rest(c.Tuple((c.Var(x, ty=REAL), *v.items[1:]), ty=self.real))
            return c.Let(x, v.items[0], body, ty=body.ty)
        x = self.fresh("x")
        body = rest(c.Var(x, ty=v.ty))
        return c.Let(x, v, body, ty=body.ty)

    def rename(self, name: str, scope: frozenset) -> str:
        """A binder's name in the target: itself, unless it would shadow a name in scope in the source
        (floating the binding out of its subterm would then capture that name's uses) or a binder that the
        target has around it (one floated out of an earlier subterm, whose variable the rest may read)."""
        return self.fresh(name) if name in scope or name in self.enclosing else name

    def let(self, e, name, bound, body, inst, s, k, env, scope) -> c.Expr:
        """let x = t in u  ->  D[s, t] bound to x (or to its components), then D[s1, u]."""
        key = (name, inst)
        new = self.rename(name, scope)
        scope2 = scope | {new}
        plain = {k2: v for k2, v in env.items() if k2 != key}

        def named(ty: Type) -> Env:   # the variable x is, in the target, `new`
            return plain if new == name else {**plain, key: c.Var(new, inst, ty=ty)}

        def after(v: c.Expr, s1: c.Expr) -> c.Expr:
            return self.under((new,), lambda: bound_to(v, s1))

        def bound_to(v: c.Expr, s1: c.Expr) -> c.Expr:
            if _is_components(v) or _is_constant(v) or isinstance(v, (c.Lit, c.Global)):
                return self.thread(body, s1, k, {**plain, key: v}, scope2)   # stands for x
            if isinstance(v, c.Var) and v.name == new and not inst:        # bound to x already (a call)
                return self.unpack(key, new, bound.ty, body, named(v.ty),
                                   lambda env2: self.thread(body, s1, k, env2, scope2))
            if _constant_backward(v):                                       # (float n, noId, zero)
                parts = c.Tuple((c.Var(new, ty=REAL), *v.items[1:]), ty=self.real)
                rest = self.thread(body, s1, k, {**plain, key: parts}, scope2)
                return c.Let(new, v.items[0], rest, ty=rest.ty, span=e.span)
            rest = self.thread(body, s1, k, named(v.ty), scope2) if inst else \
                self.unpack(key, new, bound.ty, body, named(v.ty), lambda env2: self.thread(body, s1, k, env2, scope2))
            return c.Let(new, v, rest, inst, ty=rest.ty, span=e.span)
        return self.thread(bound, s, after, env, scope, hint=None if inst else new)

    def let_tuple(self, e, names, v, body, s1, k, env, scope) -> c.Expr:
        """let (x1, .., xn) = t in u: the pattern bound (renamed where it would shadow), reals taken apart."""
        news = tuple(self.rename(n, scope) for n in names)
        parts = prune(e.bound.ty).items
        env2 = {k2: x for k2, x in env.items() if k2 not in {(n, ()) for n in names}}
        env2.update({(n, ()): c.Var(m, ty=self.type(t)) for n, m, t in zip(names, news, parts) if n != m})
        scope2 = scope | set(news)

        def unpack(i: int, env3: Env) -> c.Expr:
            if i == len(names):
                return self.thread(body, s1, k, env3, scope2)
            return self.unpack((names[i], ()), news[i], parts[i], body, env3, lambda env4: unpack(i + 1, env4))
        rest = self.under(news, lambda: unpack(0, env2))
        return c.LetTuple(news, v, rest, ty=rest.ty, span=e.span)

    # ---- application
    def application(self, e: c.App, s, k, env, scope, hint) -> c.Expr:
        """f u1 .. un: the head and the arguments in order, then the call, one argument at a time."""
        head, args = c.spine(e)
        ty = self.type(e.ty)

        def call(vs: list, s1: c.Expr) -> c.Expr:
            f, *values = vs
            out: c.Expr = c.App(c.App(f, values[0], ty=None, span=e.span), s1, ty=None, span=e.span)
            out = replace(out, ty=_pair(self.type(_result_after(head.ty, 1))))
            for n, v in enumerate(values[1:], 2):
                out = c.Prim("applyI", (out, v), ty=_pair(self.type(_result_after(head.ty, n))), span=e.span)
            return self.join(out, k, ty, hint)
        return self.sequence([head, *args], s, call, env, scope)

    # ---- primitives
    def primitive(self, e: c.Prim, s, k, env, scope, hint) -> c.Expr:
        prim = PRIMITIVES[e.op]
        if touches_array(e):  # no array rules in the ID stages yet: the shared refusal
            raise arrays_unsupported("dualrev", f"the array operation `{e.op}`", e.span)
        ty = self.type(e.ty)
        at_real = any(prune(a.ty) == REAL for a in e.args)
        match prim.kind:
            case "real" if at_real and closed(e):   # no variable in it: a constant
                return self.give(k, self.constant(e), s)
            case "real" if at_real:
                if prim.partials is None:
                    raise AssertionError(f"the primitive {e.op!r} has no derivative rule in the primitive table")
                return self.sequence(e.args, s, lambda vs, s1: self.real_rule(e, prim, vs, s1, k, hint), env, scope)
            case "compare" | "toint" if at_real:
                return self.sequence(e.args, s, lambda vs, s1: self.take_apart(
                    vs, lambda parts: self.give(k, c.Prim(e.op, tuple(p[0] for p in parts), ty=ty, span=e.span), s1)),
                    env, scope)
            case "toreal":
                return self.sequence(e.args, s, lambda vs, s1: self.give(
                    k, self.constant(c.Prim(e.op, tuple(vs), ty=REAL, span=e.span)), s1), env, scope)
            case "structural" if e.op in HIGHER_ORDER:
                return self.sequence(e.args, s, lambda vs, s1: self.join(
                    c.Prim(HIGHER_ORDER[e.op], (*vs, s1), ty=_pair(ty), span=e.span), k, ty, hint), env, scope)
            case "ad":   # applyI (.. (grad f s) ..) x: typed like any call (and refused when it runs)
                def call(vs: list, s1: c.Expr) -> c.Expr:
                    f, *rest = vs
                    source_t = _application_type(e)
                    out: c.Expr = c.Prim(e.op, (f, s1), src=e.src, ty=_pair(self.type(_result_after(source_t, 1))),
                                         span=e.span)
                    for n, v in enumerate(rest, 2):
                        out = c.Prim("applyI", (out, v), ty=_pair(self.type(_result_after(source_t, n))), span=e.span)
                    return self.join(out, k, ty, hint)
                return self.sequence(e.args, s, call, env, scope)
            case "real" | "compare" | "int" | "bool" | "structural":
                return self.sequence(e.args, s, lambda vs, s1: self.give(
                    k, c.Prim(e.op, tuple(vs), ty=ty, span=e.span), s1), env, scope)
        raise AssertionError(f"no rule for the primitive {e.op!r} ({prim.kind})")

    def take_apart(self, values: list, rest: Callable[[list], c.Expr]) -> c.Expr:
        """Each real's (value, ID, backward part), binding the components of those that are not known;
        a variable passed twice is taken apart once."""
        parts: list = []
        seen: dict = {}
        lets: list = []
        for v in values:
            if _is_components(v) or _is_constant(v):
                parts.append(v.items)
                continue
            if _constant_backward(v):  # a constant from `float n`: its value bound
                x = self.fresh("x")
                lets.append(((x,), v.items[0]))
                parts.append((c.Var(x, ty=REAL), *v.items[1:]))
                continue
            key = v if isinstance(v, (c.Var, c.Global)) else None
            if key is not None and key in seen:
                parts.append(seen[key])
                continue
            names = self.components(v.name if isinstance(v, c.Var) else None)
            comps = (c.Var(names[0], ty=REAL), c.Var(names[1], ty=ID), c.Var(names[2], ty=self.real.items[2]))
            lets.append((names, v))
            parts.append(comps)
            if key is not None:
                seen[key] = comps
        out = rest(parts)
        for names, v in reversed(lets):
            out = c.Let(names[0], v, out, ty=out.ty) if len(names) == 1 else \
                c.LetTuple(names, v, out, ty=out.ty)
        return out

    def real_rule(self, e: c.Prim, prim: Primitive, values: list, s: c.Expr, k: Cont, hint) -> c.Expr:
        """f(x1..xk) -> let (j, s') = fresh s in ((f(x1..xk), j, backward part), s')."""
        def build(parts: list) -> c.Expr:
            primals = [p[0] for p in parts]
            value: c.Expr = c.Prim(e.op, tuple(primals), ty=REAL, span=e.span)
            result, result_name = value, None
            if prim.uses_result():  # name the result when the partials mention it (exp, tanh, /)
                result_name = self.fresh("r")
                result = c.Var(result_name, ty=REAL)
            pairs = [((p[1], p[2]), d) for p, d in zip(parts, prim.partials(*primals, result))
                     if not _is_no_id(p[1]) and not is_zero(d)]
            if not pairs:   # every argument is a constant, or every partial zero by construction: a constant
                out = self.give(k, self.constant(result), s)
            else:
                j, s1 = self.own("j"), self.fresh("s")
                triple = c.Tuple((result, c.Var(j, ty=ID), self.backward(pairs)), ty=self.real, span=e.span)
                if k is None:
                    body: c.Expr = c.Tuple((triple, c.Var(s1, ty=SUPPLY)), ty=_pair(self.real))
                else:
                    names = self.components(hint, exact=hint is not None)
                    comps = c.Tuple(tuple(c.Var(n, ty=t) for n, t in zip(names, self.real.items)), ty=self.real)
                    inner = k(comps, c.Var(s1, ty=SUPPLY))
                    body = c.LetTuple(names, triple, inner, ty=inner.ty, span=e.span)
                out = c.LetTuple((j, s1), c.Prim("fresh", (s,), ty=TTuple((ID, SUPPLY))), body, ty=body.ty)
            if result_name is not None:
                out = c.Let(result_name, value, out, ty=out.ty, span=e.span)
            return out
        return self.take_apart(values, build)

    def backward(self, pairs: list[tuple[tuple[c.Expr, c.Expr], c.Expr]]) -> c.Expr:
        """The backward part of a primitive's result, from its parents' ((ID, backward part), partial):
        a partial that is zero on a branch puts the parts in an `if` (common.by_cases), so that the zero
        is never multiplied (docs/transforms.md, Zeros and infinities)."""
        if self.defun:
            return by_cases(pairs, self.record)
        a, acc = c.Var(self.lin, ty=REAL), c.Var(self.acc, ty=STAGED)

        def calls(parents: list) -> c.Expr:
            body: c.Expr = acc
            for (j, bp), d in parents:
                body = c.Prim("stageAt", (j, bp, scale(d, a), body), ty=STAGED)
            return body
        return c.Lam(self.lin, c.Lam(self.acc, by_cases(pairs, calls), ty=TFun(STAGED, STAGED)), ty=BP_CAYLEY)

    @staticmethod
    def record(parents: list) -> c.Expr:
        """contrib0 | contrib1 j c w | contrib2 j c w k e u: a primitive's Contrib record (stage 4)."""
        if len(parents) > 2:
            raise AssertionError("a Contrib record has at most two parents (no primitive takes more reals)")
        fields = [f for (j, bp), d in parents for f in (j, bp, d)]
        return c.Prim(f"contrib{len(parents)}", tuple(fields), ty=CONTRIB)


# ---- small helpers -----------------------------------------------------------------------------------


def _result_after(t: Type, n: int) -> Type:
    """The type of `f a1 .. an` for f : t."""
    for _ in range(n):
        t = prune(t)
        assert isinstance(t, TFun), t
        t = t.result
    return t


def _application_type(e: c.Prim) -> Type:
    """The type of a primitive as this use applies it: its arguments' types, then its result's."""
    t = e.ty
    for a in reversed(e.args):
        t = TFun(a.ty, t)
    return t


def _is_no_id(e: c.Expr) -> bool:
    return isinstance(e, c.Prim) and e.op == "noId"


def _is_constant(v: c.Expr) -> bool:
    """(r, noId, zero) with r a literal."""
    return isinstance(v, c.Tuple) and len(v.items) == 3 and isinstance(v.items[0], c.Lit) and _is_no_id(v.items[1])


def _is_components(v: c.Expr) -> bool:
    """(x, x_i, x_c): a real's components, bound to variables."""
    return isinstance(v, c.Tuple) and len(v.items) == 3 and all(isinstance(i, c.Var) for i in v.items) \
        and v.ty is not None and isinstance(prune(v.ty), TTuple) and prune(prune(v.ty).items[1]) == ID


def _constant_backward(v: c.Expr) -> bool:
    """(r, noId, zero) with r computed (float n, pi): a constant whose value is not a literal."""
    return isinstance(v, c.Tuple) and len(v.items) == 3 and _is_no_id(v.items[1]) and _is_atom(v.items[2])


def _computed_with(key: tuple, body: c.Expr) -> bool:
    """Whether the variable `key` is an argument of a numeric primitive in `body` (where it is not rebound)."""
    name, inst = key
    stack = [body]
    while stack:
        t = stack.pop()
        match t:
            case c.Lam(param) if param == name:
                continue
            case c.Let(name=n, bound=b, inst=i) if (n, i) == key:
                stack.append(b)
                continue
            case c.LetRec(name=n, inst=i) if (n, i) == key:
                continue
            case c.LetTuple(names=ns, bound=b) if name in ns and not inst:
                stack.append(b)
                continue
            case c.Prim(op, args) if PRIMITIVES[op].kind in NUMERIC and \
                    any(isinstance(a, c.Var) and (a.name, a.inst) == key for a in args):
                return True
        stack.extend(c.children(t))
    return False


# ---- the TermTransforms ------------------------------------------------------------------------------


def ids_transform(defun: bool, checks: tuple) -> TermTransform:
    """Stage 3 (defun=False: Cayley backpropagators with IDs) or stage 4 (Contrib records)."""
    def term(e: c.Expr) -> c.Expr:
        return StatePassing(defun, variables_of(e)).top(e)

    def type_(t: Type) -> Type:
        return StatePassing(defun, set()).type(t)

    # Nothing to clean: a constant argument is left out by the rule itself, and a primitive of constants
    # is a constant (the clean-ups ←D's simplifier makes).
    return TermTransform("Ddefun" if defun else "Dids", term, type_, lambda t: t, checks=checks)


__all__ = ["StatePassing", "ids_transform", "BP_CAYLEY", "HIGHER_ORDER"]
