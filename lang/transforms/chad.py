"""CHAD, Combinatory Homomorphic Automatic Differentiation (Vákár & Smeding, TOPLAS 2022), and the
efficient variant of Smeding & Vákár (POPL 2024) (docs/transforms.md, chad).

Each term returns its primal *and* a linear map from its cotangent to the
cotangent of its whole environment:

    Γ ⊢ t : τ   ↦   Dr1(Γ) ⊢ Dr_Γ[t] : Dr1(τ) * (Dr2(τ) ⊸ Dr2(Γ))

with the types of chad_target.py. Γ is the list of local variables in scope,
in binding order; Dr2(Γ) is the tuple of their cotangents. A top-level
definition is transformed in the empty Γ; the free variables of a function
value being differentiated (its captured values) are constants, like the
definitions it uses: they get no slot, and their cotangents are dropped.

The rules follow the reference implementation (VMatthijs/CHAD,
src/ReverseAD.hs, `dr`) where it has them — variables, λ, let, application,
tuples and projections, primitives, map — and are ours for what it does not
have: lists (`get`, `::`, `++`, fold, ...), `if` on a Bool, functions of
several parameters, `let rec` (docs/transforms.md, chad: What is ours). In dl
notation, with `lapp f ct` the application of a linear map:

    x                  (x, fun ct -o (0, .., ct, .., 0))                     one-hot at x's slot
    c, g               (c, fun ct -o lzero)                                   constants, top-level definitions
    let x = t in u     let (x, x') = Dr[t] in let (y, y') = Dr_{Γ,x}[u] in
                       (y, fun ct -o let (g⃗, cx) = lapp y' ct in lplus g⃗ (lapp x' cx))
    h a1 .. an         let (f, f') = Dr[h] in let (v1, v1') = Dr[a1] in .. let (y, y') = f v1 .. vn in
                       (y, fun ct -o let (c1, .., cn, cf) = lapp y' ct in lplus (lapp f' cf) (Σ lapp vi' ci))
    f(t1, .., tk)      let (v1, v1') = Dr[t1] in .. (f(v⃗), fun ct -o Σ lapp vi' (lscale ∂i f ct))
    fun x⃗ -> t         chad:            let c = fun x⃗ -> Dr_{Γ,x⃗}[t] in
                                         (lcurryk (fun x⃗ -> let (y, y') = c x⃗ in
                                                     (y, fun ct -o let (g⃗, c⃗) = lapp y' ct in (c⃗, lsingleton x1 .. ct))),
                                          fun cp -o lcopowfold (fun x1 -> .. fun ct -o Γ-part of lapp (snd (c x⃗)) ct) cp)
                       chad-efficient:  (lcurryk (fun x⃗ -> let (y, y') = Dr_{Γ,x⃗}[t] in
                                                     (y, fun ct -o let (g⃗, c⃗) = lapp y' ct in (c⃗, lpack g⃗))),
                                          fun env -o lunpack env)

A call of n arguments is `f v` for one and `lcalln f v1 .. vn` for more: the
call of a λ of n parameters (`lcurryn`) runs its entry with all of them at
once, anything else is applied one argument at a time (lang/modes/chad.py).
"""
from __future__ import annotations

from dataclasses import replace

from ..front.desugar import Fresh
from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.primitives import MAX_CURRY, PRIMITIVES
from ..model.primitives import is_zero as is_symbolic_zero
from ..model.types import ARRAY, ENV, INT, REAL, UNIT, TFun, TList, TTuple, Type, linear, prune
from .chad_target import (Types, apply, copow, fst, is_zero, lam, lams, lapp, let_tuple, pair, plus, prim, snd, total,
                          tup, tuple_type, var, zero)
from .chad_simplify import simplify
from .common import TermTransform, closed, variables_of

Key = tuple  # a local variable: (name, instance)


class Chad:
    """Dr_Γ[t] for one term (a definition, or a function value's lambda with its free variables constants)."""

    def __init__(self, fresh: Fresh, ct: str, efficient: bool):
        self.fresh = fresh
        self.ct = ct                 # the name of every linear map's parameter
        self.efficient = efficient
        self.types = Types(efficient)

    # ---- the top level: a definition's Dr1 value ------------------------------------------------

    def value(self, e: c.Expr) -> c.Expr:
        """The Dr1 value of a closed term: a λ chain's entry (closed: its own cotangent is zero), or the
        primal part of Dr_()[e]."""
        if isinstance(e, c.Lam):
            params, body = _chain(e)
            return self.first(self.function(params, body, [], closed=True))
        r = self.term(e, [])
        return self.first(r)

    # ---- Γ and its cotangent -------------------------------------------------------------------

    def env_type(self, env: list) -> Type:
        return self.types.env([t for _, t in env])

    def onehot(self, env: list, key: Key, ct: c.Expr) -> c.Expr:
        """The environment cotangent with ct at the slot of `key` (its last binding) and zeros elsewhere;
        zero when the variable has no slot (a constant)."""
        slot = _slot(env, key)
        if slot is None:
            return zero(self.env_type(env))
        return tup([ct if k == slot else zero(self.types.d2(t)) for k, (_, t) in enumerate(env)])

    def split(self, e: c.Expr, env: list, extra: list, body) -> c.Expr:
        """let (g1, .., gn, c1, .., cm) = e in body(Γ-part, [c1, .., cm]): the cotangent of Γ followed by
        `extra` variables taken apart."""
        whole = env + extra
        if not whole:
            return body(zero(UNIT), [])
        names = [self.fresh("g") for _ in env] + [self.fresh("c") for _ in extra]
        vars_ = [var(n, self.types.d2(t)) for n, (_, t) in zip(names, whole)]
        inner = body(tup(vars_[:len(env)]) if env else zero(UNIT), vars_[len(env):])
        return let_tuple(names, e, inner)

    # ---- binding the results of subterms ----------------------------------------------------------

    def bind(self, r: c.Expr, hint: str = "r"):
        """The components (primal, linear map) of a transformed subterm, and a wrapper binding them:
        written in place when the primal is a variable, constant or definition and the map is written
        out (a variable's one-hot map), else `let (r, r') = Dr[t] in ...`."""
        if isinstance(r, c.Tuple) and isinstance(r.items[0], (c.Var, c.Lit, c.Global)) \
                and isinstance(r.items[1], c.LinLam):
            return r.items[0], r.items[1], lambda body: body
        p = self.fresh(hint)
        pp = self.fresh_prime(p)
        t1, t2 = prune(r.ty).items
        return var(p, t1), var(pp, t2), lambda body: c.LetTuple((p, pp), r, body, ty=body.ty)

    def fresh_prime(self, name: str) -> str:
        primed = name + "'"
        if primed in self.fresh.avoid:
            return self.fresh(name + "_")
        self.fresh.avoid.add(primed)
        return primed

    def first(self, r: c.Expr) -> c.Expr:
        """The primal part of a transformed term."""
        if isinstance(r, c.Tuple):
            return r.items[0]
        p, pp = self.fresh("r"), self.fresh("r")
        t1 = prune(r.ty).items[0]
        return c.LetTuple((p, pp), r, var(p, t1), ty=t1)

    def result(self, primal: c.Expr, src_ty: Type, env: list, body_of_ct) -> c.Tuple:
        """(primal, fun ct -o body_of_ct(ct)) at the source type src_ty in Γ."""
        ct = var(self.ct, self.types.d2(src_ty))
        body = body_of_ct(ct)
        if body.ty is None:
            body = replace(body, ty=self.env_type(env))
        return pair(primal, lam(self.ct, ct.ty, body))

    def constant(self, primal: c.Expr, src_ty: Type, env: list) -> c.Tuple:
        """(primal, fun ct -o lzero): a constant's linear map."""
        return self.result(primal, src_ty, env, lambda ct: zero(self.env_type(env)))

    # ---- terms -----------------------------------------------------------------------------------

    def term(self, e: c.Expr, env: list) -> c.Expr:
        """Dr_Γ[e] : Dr1(τ) * (Dr2(τ) ⊸ Dr2(Γ))."""
        ty = e.ty
        match e:
            case c.Var(name, inst):                                   # x: one-hot
                return self.result(replace(e, ty=self.types.d1(ty)), ty, env,
                                   lambda ct: self.onehot(env, (name, inst), ct))
            case c.Global():                                          # g: a constant
                return self.constant(replace(e, ty=self.types.d1(ty)), ty, env)
            case c.Lit():
                return self.constant(e, ty, env)
            case c.Annot(expr=x):
                return self.term(x, env)
            case c.Lam():
                params, body = _chain(e)
                return self.function(params, body, env)
            case c.App():
                return self.application(e, env)
            case c.Let(name, bound, body, inst):
                return self.let(e, name, inst, bound, body, env)
            case c.LetTuple(names, bound, body):
                return self.let_tuple(e, names, bound, body, env)
            case c.LetRec():
                return self.let_rec(e, env)
            case c.If(cond, then, else_):                             # the test's cotangent (Unit) is dropped
                b, _, wrap = self.bind(self.term(cond, env), "b")
                return wrap(c.If(b, self.term(then, env), self.term(else_, env), ty=self.pair_type(ty, env)))
            case c.Tuple(items):
                return self.tuple_(items, ty, env)
            case c.List(items):
                return self.list_(items, ty, env)
            case c.Prim():
                return self.primitive(e, env)
        raise AssertionError(f"chad has no rule for {type(e).__name__}")

    def pair_type(self, src_ty: Type, env: list) -> Type:
        return TTuple((self.types.d1(src_ty), linear(self.types.d2(src_ty), self.env_type(env))))

    def args(self, terms, env: list):
        """Each argument transformed and bound, left to right: [(primal, map)] and one wrapper."""
        out, wraps = [], []
        for t in terms:
            p, pp, wrap = self.bind(self.term(t, env), "v")
            out.append((p, pp))
            wraps.append(wrap)

        def wrap_all(body):
            for w in reversed(wraps):
                body = w(body)
            return body
        return out, wrap_all

    def back(self, parts: list[tuple[c.Expr, c.Expr]], env: list) -> c.Expr:
        """Σ lapp vi' ci: each part's cotangent sent through its linear map, summed in Dr2(Γ)."""
        e_ty = self.env_type(env)
        return total([lapp(m, ct, e_ty) for m, ct in parts if not is_zero(ct)], e_ty)

    # ---- let, tuples, lists --------------------------------------------------------------------

    def let(self, e: c.Let, name: str, inst: tuple, bound: c.Expr, body: c.Expr, env: list) -> c.Expr:
        """let x = t in u: u's cotangent at x goes back through t's map, the rest is summed into Γ's."""
        r = self.term(bound, env)
        x_ty = bound.ty
        inner = env + [((name, inst), x_ty)]
        s = self.term(body, inner)
        y, yp, wrap_s = self.bind(s, "y")
        xp = self.fresh_prime(name if not inst else self.fresh("x"))
        e_ty = self.env_type(env)
        out_body = self.result(y, e.ty, env, lambda ct: self.split(
            lapp(yp, ct, self.env_type(inner)), env, [((name, inst), x_ty)],
            lambda g, cs: plus(g, lapp(var(xp, linear(self.types.d2(x_ty), e_ty)), cs[0], e_ty), e_ty)))
        inner_term = wrap_s(out_body)
        if inst:  # a specialised local: `let (r, x') = Dr[t] in let x@T = r in ...`
            p = self.fresh("r")
            p1 = prune(r.ty).items[0]
            return c.LetTuple((p, xp), r, c.Let(name, var(p, p1), inner_term, inst, ty=inner_term.ty),
                              ty=inner_term.ty)
        return c.LetTuple((name, xp), r, inner_term, ty=inner_term.ty)

    def let_tuple(self, e: c.LetTuple, names, bound, body, env: list) -> c.Expr:
        """let (x1, .., xm) = t in u: the pattern's cotangents, as a tuple, go back through t's map."""
        p, pp, wrap = self.bind(self.term(bound, env), "p")
        item_types = list(prune(bound.ty).items)
        extra = [((n, ()), t) for n, t in zip(names, item_types)]
        inner = env + extra
        y, yp, wrap_s = self.bind(self.term(body, inner), "y")
        e_ty = self.env_type(env)
        out = self.result(y, e.ty, env, lambda ct: self.split(
            lapp(yp, ct, self.env_type(inner)), env, extra,
            lambda g, cs: plus(g, lapp(pp, tup(cs), e_ty), e_ty)))
        return wrap(c.LetTuple(tuple(names), p, wrap_s(out), ty=out.ty))

    def tuple_(self, items, ty: Type, env: list) -> c.Expr:
        parts, wrap = self.args(items, env)
        primal = c.Tuple(tuple(p for p, _ in parts), ty=self.types.d1(ty))
        names = [self.fresh("c") for _ in items]

        def body(ct):
            cs = [var(n, self.types.d2(t.ty)) for n, t in zip(names, items)]
            return c.LetTuple(tuple(names), ct, self.back([(m, x) for (_, m), x in zip(parts, cs)], env),
                              ty=self.env_type(env))
        return wrap(self.result(primal, ty, env, body))

    def list_(self, items, ty: Type, env: list) -> c.Expr:
        parts, wrap = self.args(items, env)
        primal = c.List(tuple(p for p, _ in parts), ty=self.types.d1(ty))
        item_ct = self.types.d2(prune(ty).item)
        return wrap(self.result(primal, ty, env, lambda ct: self.back(
            [(m, prim("lat", ct, c.Lit(k, ty=INT), ty=item_ct)) for k, (_, m) in enumerate(parts)], env)))

    # ---- functions and calls -------------------------------------------------------------------------

    def function(self, params: list[tuple[str, Type]], body: c.Expr, env: list, closed: bool = False) -> c.Expr:
        """Dr_Γ[fun x1 .. xk -> t] (module docstring); `closed`: Γ is empty and the function's own cotangent
        is never used (a definition), so it is zero."""
        if len(params) > MAX_CURRY:  # a longer chain: the rest is a function returned by the first MAX_CURRY
            rest = body
            for name, t in reversed(params[MAX_CURRY:]):
                rest = c.Lam(name, rest, ty=TFun(t, rest.ty))
            params, body = params[:MAX_CURRY], rest
        k = len(params)
        keys = [((n, ()), t) for n, t in params]
        inner = env + keys
        d1 = self.types.d1
        result_ty = body.ty
        fn_ty = body.ty
        for _, t in reversed(params):
            fn_ty = TFun(t, fn_ty)
        f_ct = self.types.d2(fn_ty)
        e_ty = self.env_type(env)
        targets = [(n, d1(t)) for n, t in params]
        xs = [var(n, d1(t)) for n, t in params]

        def entry_body(call: c.Expr) -> c.Expr:
            """let (y, y') = call in (y, fun ct -o (cotangents of the parameters, the function's own))."""
            y, yp, wrap = self.bind(call, "y")

            def ct_body(ct):
                def own(g, cs):
                    if closed or not env:
                        f_part = zero(f_ct)
                    elif self.efficient:
                        f_part = prim("lpack", g, ty=ENV)
                    else:
                        f_part = ct
                        for x in reversed(xs):
                            f_part = prim("lsingleton", x, f_part, ty=copow(x.ty, f_part.ty))
                    return tup(cs + [f_part])
                return self.split(lapp(yp, ct, self.env_type(inner)), env, keys, own)
            return wrap(self.result(y, result_ty, [], ct_body))

        def curried(entry: c.Expr) -> c.Expr:
            return entry if k == 1 else prim(f"lcurry{k}", entry, ty=d1(fn_ty))

        if self.efficient or closed or not env:
            value = curried(lams(targets, entry_body(self.term(body, inner))))
            if closed or not env:
                return self.constant(value, fn_ty, env)
            return pair(value, lam(self.ct, ENV, prim("lunpack", var(self.ct, ENV), ty=e_ty)))
        # basic CHAD: the body again, for each entry of the function's cotangent (recomputation)
        c_name = self.fresh("dr")
        dr_body = self.term(body, inner)
        c_ty = dr_body.ty
        for _, t in reversed(targets):
            c_ty = TFun(t, c_ty)
        c_fun = lams(targets, dr_body)
        c_var = var(c_name, c_ty)
        value = curried(lams(targets, entry_body(apply(c_var, *xs, ty=dr_body.ty))))

        def fold(level: int, cp: c.Expr) -> c.Expr:
            """lcopowfold over the entries of level `level` of the copower; at the last, the Γ part of the
            body's map at the entry's arguments."""
            name, t = targets[level]
            inner_ct_ty = prune(cp.ty).args[1]
            param = self.fresh("ct") if level + 1 < k else self.ct
            inner_ct = var(param, inner_ct_ty)
            if level + 1 < k:
                inside = fold(level + 1, inner_ct)
            else:
                again = apply(c_var, *xs, ty=dr_body.ty)
                inside = self.split(lapp(snd(again), inner_ct, self.env_type(inner)), env, keys, lambda g, cs: g)
            fn = c.Lam(name, lam(param, inner_ct_ty, inside), ty=TFun(t, linear(inner_ct_ty, e_ty)))
            return prim("lcopowfold", fn, cp, ty=e_ty)
        cp = var(self.ct, f_ct)
        out = pair(value, lam(self.ct, f_ct, fold(0, cp)))
        return c.Let(c_name, c_fun, out, ty=out.ty)

    def application(self, e: c.App, env: list) -> c.Expr:
        """h a1 .. an (module docstring): at most MAX_CURRY arguments at once, the rest applied to the result."""
        head, args = _spine(e)
        r, fn_ty = self.term(head, env), head.ty
        while args:
            now, args = args[:MAX_CURRY], args[MAX_CURRY:]
            r, fn_ty = self.call(r, fn_ty, now, env)
        return r

    def call(self, r: c.Expr, fn_ty: Type, args: list[c.Expr], env: list) -> tuple[c.Expr, Type]:
        """Dr of (the function whose transform is r) applied to args, and the source type of the result."""
        d1, d2 = self.types.d1, self.types.d2
        n = len(args)
        result_src = prune(fn_ty)
        for _ in range(n):
            result_src = prune(result_src.result)
        f, fp, wrap_f = self.bind(r, "f")
        parts, wrap = self.args(args, env)
        vs = [p for p, _ in parts]
        cts_ty = TTuple(tuple([d2(a.ty) for a in args] + [d2(fn_ty)]))
        call_ty = TTuple((d1(result_src), linear(d2(result_src), cts_ty)))
        call = c.App(f, vs[0], ty=call_ty) if n == 1 else prim(f"lcall{n}", f, *vs, ty=call_ty)
        y, yp, wrap_y = self.bind(call, "y")
        e_ty = self.env_type(env)
        names = [self.fresh("c") for _ in range(n + 1)]
        cts = [var(nm, t) for nm, t in zip(names, cts_ty.items)]

        def ct_body(ct):
            sent = self.back([(fp, cts[-1])] + [(m, x) for (_, m), x in zip(parts, cts[:-1])], env)
            return c.LetTuple(tuple(names), lapp(yp, ct, cts_ty), sent, ty=e_ty)
        return wrap_f(wrap(wrap_y(self.result(y, result_src, env, ct_body)))), result_src

    def let_rec(self, e: c.LetRec, env: list) -> c.Expr:
        """let rec f = fun x⃗ -> t in u (ours: the reference has no recursion).

            let rec fe = fun x⃗ -> let f = W in Dr_{Γ,f,x⃗}[t] in      fe: the body with its whole environment's map
            let f = W in                                              W: f's Dr1 value, made from fe
            let (y, y') = Dr_{Γ,f}[u] in
            (y, fun ct -o let (g⃗, cf) = lapp y' ct in lplus g⃗ (BACK cf))

        chad: W's calls give f's cotangent the copower entry of their arguments, and BACK is
        `lfix`: each entry's call is run again, its map applied, its Γ part summed and the entries of
        its own recursive calls folded in turn (a worklist) — every entry re-runs its call, so an n-deep
        recursion costs Θ(n²). chad-efficient: W's calls give the packed Γ part, plus the f-slot Envs of
        their own recursive calls (f's closure is the same closure), and BACK is `lunpack`."""
        name, inst = e.name, e.inst
        params, body = _chain(e.bound)
        if len(params) > MAX_CURRY:
            raise DlRuntimeError(f"chad: a recursive function of more than {MAX_CURRY} parameters", e.span)
        k = len(params)
        d1, d2 = self.types.d1, self.types.d2
        f_src = e.bound.ty
        f_key = ((name, inst), f_src)
        keys = [((n, ()), t) for n, t in params]
        inner = env + [f_key] + keys
        targets = [(n, d1(t)) for n, t in params]
        xs = [var(n, d1(t)) for n, t in targets]
        e_ty = self.env_type(env)
        fe = self.fresh("fe")
        dr_body = self.term(body, inner)
        fe_ty = dr_body.ty
        for _, t in reversed(targets):
            fe_ty = TFun(t, fe_ty)
        fe_var = var(fe, fe_ty)
        f_ct = d2(f_src)
        f_var = var(name, d1(f_src), inst)

        def wrapper() -> c.Expr:
            """W: fun x⃗ -> let (z, z') = fe x⃗ in (z, fun ct -o (the parameters' cotangents, f's own))."""
            z, zp, wrap = self.bind(apply(fe_var, *xs, ty=fe_ty_result(fe_ty, k)), "z")

            def ct_body(ct):
                def own(g, cs):
                    cf, cxs = cs[0], cs[1:]
                    if self.efficient:
                        f_part = plus(prim("lpack", g, ty=ENV), cf, ENV) if env else cf
                    else:
                        f_part = ct
                        for x in reversed(xs):
                            f_part = prim("lsingleton", x, f_part, ty=copow(x.ty, f_part.ty))
                    return tup(cxs + [f_part])
                return self.split(lapp(zp, ct, self.env_type(inner)), env, [f_key] + keys, own)
            entry = lams(targets, wrap(self.result(z, body.ty, [], ct_body)))
            return entry if k == 1 else prim(f"lcurry{k}", entry, ty=d1(f_src))

        fe_fun = lams(targets, c.Let(name, wrapper(), dr_body, inst, ty=dr_body.ty))
        with_f = env + [f_key]
        y, yp, wrap_y = self.bind(self.term(e.body, with_f), "y")

        def back(cf: c.Expr) -> c.Expr:
            if self.efficient:
                return prim("lunpack", cf, ty=e_ty) if env else zero(e_ty)
            return prim("lfix", self.fix_step(0, targets, fe_var, fe_ty, env, f_key, keys, inner), cf, ty=e_ty)

        out = self.result(y, e.ty, env, lambda ct: self.split(
            lapp(yp, ct, self.env_type(with_f)), env, [f_key], lambda g, cs: plus(g, back(cs[0]), e_ty)))
        return c.LetRec(fe, fe_fun, c.Let(name, wrapper(), wrap_y(out), inst, ty=out.ty), ty=out.ty)

    def fix_step(self, level, targets, fe_var, fe_ty, env, f_key, keys, inner) -> c.Expr:
        """The function lfix applies to each entry: the Γ part and the f-slot entries of the call's map
        (k > 1: the inner levels of the entry folded with lcopowfold)."""
        k = len(targets)
        xs = [var(n, t) for n, t in targets]
        name, t = targets[level]
        step_ty = TTuple((self.env_type(env), self.types.d2(f_key[1])))
        param = self.ct if level == k - 1 else self.fresh("ct")
        rest_src = f_key[1]
        for _ in range(level + 1):
            rest_src = prune(rest_src).result
        ct_ty = self.types.d2(rest_src) if level == k - 1 else self.types.d2(rest_src)
        ct = var(param, ct_ty)
        if level == k - 1:
            again = apply(fe_var, *xs, ty=fe_ty_result(fe_ty, k))
            inside = self.split(lapp(snd(again), ct, self.env_type(inner)), env, [f_key] + keys,
                                lambda g, cs: pair(g, cs[0]))
        else:
            fn = self.fix_step(level + 1, targets, fe_var, fe_ty, env, f_key, keys, inner)
            inside = prim("lcopowfold", fn, ct, ty=step_ty)
        return c.Lam(name, lam(param, ct_ty, inside), ty=TFun(t, linear(ct_ty, step_ty)))

    # ---- primitives -----------------------------------------------------------------------------------

    def primitive(self, e: c.Prim, env: list) -> c.Expr:
        row = PRIMITIVES[e.op]
        if row.kind != "structural" and any(prune(t) == ARRAY for t in (e.ty, *(a.ty for a in e.args))):
            raise DlRuntimeError(f"`{e.op}` on an Array: chad does not differentiate arrays yet", e.span)
        at_real = any(prune(a.ty) == REAL for a in e.args)
        if row.kind == "real" and at_real and closed(e):
            return self.constant(e, e.ty, env)  # no variable in it: a constant
        if row.kind == "structural":
            return self.structural(e, env)
        parts, wrap = self.args(e.args, env)
        primals = tuple(p for p, _ in parts)
        match row.kind:
            case "real" if at_real:
                if row.partials is None:
                    raise AssertionError(f"the primitive {e.op!r} has no derivative rule in the primitive table")
                value = c.Prim(e.op, primals, ty=REAL, span=e.span)
                result: c.Expr = value
                r_name = None
                if row.uses_result():
                    r_name = self.fresh("r")
                    result = var(r_name, REAL)
                partials = row.partials(*primals, result)
                out = self.result(result, REAL, env, lambda ct: self.back(
                    [(m, _scaled(d, ct)) for (_, m), d in zip(parts, partials)], env))
                if r_name is not None:
                    out = c.Let(r_name, value, out, ty=out.ty)
                return wrap(out)
            case "ad":  # refused when it runs (the chad modes do not nest): its derivative is never needed
                value = c.Prim(e.op, primals, src=e.src, ty=self.types.d1(e.ty), span=e.span)
                return wrap(self.result(value, e.ty, env, lambda ct: prim("lnested", ct, ty=self.env_type(env))))
            case _:  # compare, toint, toreal, int, bool, Int arithmetic: no cotangent to send back
                return wrap(self.constant(c.Prim(e.op, primals, ty=self.types.d1(e.ty), span=e.span), e.ty, env))

    def structural(self, e: c.Prim, env: list) -> c.Expr:
        """The parametric built-ins: tuples' projections and the list functions."""
        op = e.op
        parts, wrap = self.args(e.args, env)
        ps = [p for p, _ in parts]
        ms = [m for _, m in parts]
        d1, d2 = self.types.d1, self.types.d2
        e_ty = self.env_type(env)
        value = c.Prim(op, tuple(ps), ty=d1(e.ty), span=e.span)
        arg_cts = [d2(a.ty) for a in e.args]

        def res(body_of_ct, primal=value):
            return wrap(self.result(primal, e.ty, env, body_of_ct))

        def length(p):
            return prim("length", p, ty=INT)
        match op:
            case "fst" | "snd":
                items = list(prune(arg_cts[0]).items)
                k = 0 if op == "fst" else 1
                return res(lambda ct: self.back([(ms[0], tup([ct if i == k else zero(t) for i, t in
                                                               enumerate(items)]))], env))
            case "length" | "isEmpty" | "range":
                return wrap(self.constant(value, e.ty, env))
            case "get":
                return res(lambda ct: self.back([(ms[0], prim("lonehot", length(ps[0]), ps[1], ct,
                                                             ty=arg_cts[0]))], env))
            case "head":
                return res(lambda ct: self.back([(ms[0], prim("lonehot", length(ps[0]), c.Lit(0, ty=INT), ct,
                                                             ty=arg_cts[0]))], env))
            case "tail":
                item = prune(arg_cts[0]).item
                return res(lambda ct: self.back([(ms[0], prim("lcons", zero(item), ct, ty=arg_cts[0]))], env))
            case "::":
                return res(lambda ct: self.back([(ms[0], prim("lhead", ct, ty=arg_cts[0])),
                                                 (ms[1], prim("ltail", ct, ty=arg_cts[1]))], env))
            case "++":
                return res(lambda ct: self.back([(ms[0], prim("ltake", length(ps[0]), ct, ty=arg_cts[0])),
                                                 (ms[1], prim("ldrop", length(ps[0]), ct, ty=arg_cts[1]))], env))
            case "reverse":
                return res(lambda ct: self.back([(ms[0], prim("lreverse", length(ps[0]), ct, ty=arg_cts[0]))], env))
            case "map" | "zipWith" | "build":
                return wrap(self.mapping(e, ps, ms, env))
            case "fold":
                return wrap(self.fold(e, ps, ms, env))
        raise AssertionError(f"chad has no rule for the built-in {op!r}")

    def mapping(self, e: c.Prim, ps: list, ms: list, env: list) -> c.Expr:
        """map f xs, zipWith f xs ys, build n f: each element's call gives the element's cotangent and a
        contribution to f's; `lbackmap` applies the calls' maps to the cotangent's entries. chad follows the
        reference (SMap): the forward pass keeps the primals only and the backward pass calls f again;
        chad-efficient keeps each call's map from the forward pass."""
        d1, d2 = self.types.d1, self.types.d2
        op = e.op
        fi = 1 if op == "build" else 0
        f, fm, f_src = ps[fi], ms[fi], e.args[fi].ty
        f_ct = d2(f_src)
        lists = [] if op == "build" else list(zip(ps[1:], ms[1:], e.args[1:]))
        elem_src = prune(e.ty).item
        if lists:
            names = [(self.fresh("a"), d1(prune(a.ty).item)) for _, _, a in lists]
            x_cts = [d2(prune(a.ty).item) for _, _, a in lists]
        else:
            names, x_cts = [(self.fresh("i"), INT)], [UNIT]
        pair_ty = TTuple((d1(elem_src), linear(d2(elem_src), TTuple(tuple(x_cts + [f_ct])))))
        call_args = [var(n, t) for n, t in names]
        call = c.App(f, call_args[0], ty=pair_ty) if len(names) == 1 else prim("lcall2", f, *call_args, ty=pair_ty)
        seq = [p for p, _, _ in lists]
        calls_ty = TList(pair_ty)

        def over(fn: c.Expr, ty: Type) -> c.Prim:
            return c.Prim(op, (ps[0], fn) if op == "build" else (fn, *seq), ty=ty)
        e_ty = self.env_type(env)
        cs_ty = TList(tuple_type(x_cts))
        cs, cf = self.fresh("cs"), self.fresh("cf")
        backmap = "lbackmap" if len(x_cts) == 1 else "lbackmap2"

        def ct_body(ct: c.Expr, calls: c.Expr) -> c.Expr:
            taken = prim(backmap, calls, ct, ty=TTuple((cs_ty, f_ct)))
            sent = [(fm, var(cf, f_ct))]
            if len(lists) == 1:
                return c.LetTuple((cs, cf), taken, self.back(sent + [(lists[0][1], var(cs, cs_ty))], env), ty=e_ty)
            if len(lists) == 2:
                a, b = self.fresh("ca"), self.fresh("cb")
                ab_ty = TTuple((TList(x_cts[0]), TList(x_cts[1])))
                both = self.back(sent + [(lists[0][1], var(a, ab_ty.items[0])), (lists[1][1], var(b, ab_ty.items[1]))],
                                 env)
                return c.LetTuple((cs, cf), taken, c.LetTuple((a, b), prim("lunzip", var(cs, cs_ty), ty=ab_ty), both,
                                                              ty=e_ty), ty=e_ty)
            return c.LetTuple((cs, cf), taken, self.back(sent, env), ty=e_ty)  # build: the index has no cotangent

        if self.efficient:
            ys = self.fresh("ys")
            q = self.fresh("q")
            primal = c.Prim("map", (c.Lam(q, fst(var(q, pair_ty)), ty=TFun(pair_ty, d1(elem_src))), var(ys, calls_ty)),
                            ty=d1(e.ty))
            out = self.result(primal, e.ty, env, lambda ct: ct_body(ct, var(ys, calls_ty)))
            return c.Let(ys, over(lams(names, call), calls_ty), out, ty=out.ty)
        primal = over(lams(names, fst(call)), d1(e.ty))
        return self.result(primal, e.ty, env, lambda ct: ct_body(ct, over(lams(names, call), calls_ty)))

    def fold(self, e: c.Prim, ps: list, ms: list, env: list) -> c.Expr:
        """fold f z xs (ours): `lfoldfwd` runs the loop keeping each step's map; backwards, `lfoldback`
        sends the result's cotangent through the steps from the last to the first, collecting the elements'
        cotangents and f's."""
        d1, d2 = self.types.d1, self.types.d2
        f_src, z_src, xs_src = (a.ty for a in e.args)
        acc_ct, x_ct, f_ct = d2(z_src), d2(prune(xs_src).item), d2(f_src)
        step_ty = linear(acc_ct, TTuple((acc_ct, x_ct, f_ct)))
        fwd_ty = TTuple((d1(z_src), TList(step_ty)))
        y, steps = self.fresh("y"), self.fresh("steps")
        cz, cxs, cf = self.fresh("cz"), self.fresh("cxs"), self.fresh("cf")
        e_ty = self.env_type(env)
        out = self.result(var(y, d1(z_src)), e.ty, env, lambda ct: c.LetTuple(
            (cz, cxs, cf), prim("lfoldback", var(steps, TList(step_ty)), ct,
                                ty=TTuple((acc_ct, TList(x_ct), f_ct))),
            self.back([(ms[1], var(cz, acc_ct)), (ms[2], var(cxs, TList(x_ct))), (ms[0], var(cf, f_ct))], env),
            ty=e_ty))
        return c.LetTuple((y, steps), prim("lfoldfwd", *ps, ty=fwd_ty), out, ty=out.ty)


# ---- helpers --------------------------------------------------------------------------------------------


def _scaled(d: c.Expr, ct: c.Expr) -> c.Expr:
    """lscale ∂ ct (ct itself for ∂ = 1; lzero for a partial that is the symbolic zero, whose contribution is
    dropped, never multiplied: docs/transforms.md, Zeros and infinities)."""
    if is_symbolic_zero(d):
        return zero(REAL)
    if isinstance(d, c.Lit) and d.value == 1.0 and not isinstance(d.value, bool):
        return ct
    return c.Prim("lscale", (d, ct), ty=REAL)


def _slot(env: list, key: Key) -> int | None:
    for k in range(len(env) - 1, -1, -1):
        if env[k][0] == key:
            return k
    return None


def _chain(e: c.Lam) -> tuple[list[tuple[str, Type]], c.Expr]:
    """fun x -> fun y -> body as ([(x, A), (y, B)], body), stopping before a repeated name."""
    params: list[tuple[str, Type]] = []
    while isinstance(e, c.Lam) and e.param not in [n for n, _ in params]:
        params.append((e.param, prune(e.ty).arg))
        e = e.body
    return params, e


def _spine(e: c.Expr) -> tuple[c.Expr, list[c.Expr]]:
    args = []
    while isinstance(e, c.App):
        args.append(e.arg)
        e = e.fn
    return e, args[::-1]


def fe_ty_result(fe_ty: Type, k: int) -> Type:
    t = prune(fe_ty)
    for _ in range(k):
        t = prune(t.result)
    return t


# ---- the TermTransforms ----------------------------------------------------------------------------


def _transform(efficient: bool):
    def transform(e: c.Expr) -> c.Expr:
        """The Dr1 value of a specialised core term (a definition, or a function value's lambda)."""
        avoid = variables_of(e)
        ct = "ct" if "ct" not in avoid else next(n for n in ("ct_", "ct'", "dct", "ct0") if n not in avoid)
        avoid.add(ct)
        return Chad(Fresh(avoid, "r"), ct, efficient).value(e)
    return transform


def _d_type(efficient: bool):
    def d_type(t: Type) -> Type:
        """Dr1 on types: what a definition's transform has."""
        return Types(efficient).d1(t)
    return d_type


CHAD = TermTransform("Dr", _transform(False), _d_type(False), simplify, ad_args=True)
CHAD_EFFICIENT = TermTransform("Dr", _transform(True), _d_type(True), simplify, ad_args=True)

__all__ = ["CHAD", "CHAD_EFFICIENT", "Chad", "Types"]
