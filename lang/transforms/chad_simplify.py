"""Meaning-preserving clean-ups of the chad modes' target terms (the reference has its own,
VMatthijs/CHAD src/TargetLanguage/Simplify.hs; these are ours, written for dl's terms).

The rules produce, for `def f x = x * sin x`,

    fun x -> let v1 = sin x in (x * v1, fun ct -o (lplus (lscale v1 ct) (lscale (cos x) (lscale x ct)), lzero))

from the term of about forty nodes that the rules of chad.py write. They are:

    let (a, b) = (t, u) in e    each component substituted when it is a variable, constant or zero, a
                                (linear) abstraction used at most once, or a term that cannot fail or call
                                a function used once outside any function body; dropped when unused and
                                it cannot fail; otherwise let-bound — never moved into a function body,
                                where it could run more often (or in the backward pass, not the forward)
    let x = v in e              the same rule for one name
    lapp (fun p -o b) t         b with p := t, when t is a variable or constant or p occurs once in b and not
                                inside a function there; else let p = t in b (linear β)
    (fun x -> b) t              let x = t in b, and the let rules (β; a let around the function floats out)
    lapp f lzero  ->  lzero     (a linear map sends zero to zero)
    lplus lzero t  ->  t        lplus (t1, .., tn) (u1, .., un)  ->  (lplus t1 u1, .., lplus tn un)
    lscale w lzero  ->  lzero   lscale 1.0 t  ->  t
    fst (t, u)  ->  t           (when u is a value: nothing is dropped that could fail)
    let (x1, .., xn) = t in (x1, .., xn)  ->  t
    let p = (let x = t in u) in e  ->  let x = t in let p = u in e     (so that the first rules apply; the
                                                                        same for let rec and let (x1, .., xn))

Substitution avoids capture: a binder of a name free in what is substituted is renamed.
"""
from __future__ import annotations

from dataclasses import replace

from ..front.desugar import Fresh
from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.types import TTuple, prune
from .common import variables_of


def simplify(e: c.Expr) -> c.Expr:
    """Apply the rules everywhere."""
    return _Simplify(Fresh(variables_of(e), "s")).term(e, {})


def _value(e: c.Expr) -> bool:
    """A term whose evaluation cannot fail and costs nothing to drop: a variable, constant, zero, abstraction,
    or a tuple of those."""
    match e:
        case c.Var() | c.Lit() | c.Global() | c.Lam() | c.LinLam():
            return True
        case c.Prim("lzero"):
            return True
        case c.Tuple(items):
            return all(_value(i) for i in items)
    return False


def _pure(e: c.Expr) -> bool:
    """A term that cannot fail and does nothing but compute its value: values, and the primitives that can
    neither fail nor call a function (the linear rows included: moving one within a linear map's body
    changes nothing). Such a term used once, outside any function body, is substituted."""
    match e:
        case c.Var() | c.Lit() | c.Global() | c.Lam() | c.LinLam():
            return True
        case c.Tuple(items):
            return all(_pure(i) for i in items)
        case c.Prim(op, args):
            row = PRIMITIVES[op]
            total = (row.kind in ("real", "compare", "bool", "toreal") and not row.fails) \
                or op in ("fst", "snd", "length", "isEmpty", "reverse", "++", "::") \
                or (row.kind in ("linear", "chad") and row.linear is not None)
            return total and all(_pure(a) for a in args)
    return False


def _atom(e: c.Expr) -> bool:
    """Free to duplicate: a variable, constant or zero."""
    return isinstance(e, (c.Var, c.Lit, c.Global)) or (isinstance(e, c.Prim) and e.op == "lzero")


def _zero(e: c.Expr) -> bool:
    return isinstance(e, c.Prim) and e.op == "lzero"


def _count(e: c.Expr, name: str) -> tuple[int, bool]:
    """How often `name` occurs free in `e`, and whether an occurrence is inside a function body."""
    n, under = 0, False
    stack: list = [(e, False)]
    while stack:
        t, inside = stack.pop()
        match t:
            case c.Var(v, ()) if v == name:
                n += 1
                under = under or inside
                continue
            case c.Lam(param, body) | c.LinLam(param, body):
                if param != name:
                    stack.append((body, True))
                continue
            case c.Let(x, bound, body):
                stack.append((bound, inside))
                if x != name:
                    stack.append((body, inside))
                continue
            case c.LetRec(x, bound, body):
                if x != name:
                    stack.append((bound, inside))
                    stack.append((body, inside))
                continue
            case c.LetTuple(names, bound, body):
                stack.append((bound, inside))
                if name not in names:
                    stack.append((body, inside))
                continue
        stack.extend((ch, inside) for ch in c.children(t))
    return n, under


def _free(e: c.Expr) -> set[str]:
    return {n for n, _ in c.free_locals(e)}


class _Simplify:
    def __init__(self, fresh: Fresh):
        self.fresh = fresh

    # ---- binders: substitution without capture ---------------------------------------------------------

    def under(self, names, env: dict, body: c.Expr) -> tuple[tuple[str, ...], c.Expr, dict]:
        """Enter a binder of `names` with the substitution `env`: names bound here leave it, and a name free in
        what is substituted is renamed (in the body, by adding the renaming to the substitution)."""
        inner = {k: v for k, v in env.items() if k not in names}
        if not inner:
            return tuple(names), body, inner
        taken: set[str] = set()
        for v in inner.values():
            taken |= _free(v)
        out = []
        for n in names:
            if n in taken:
                m = self.fresh(n.rstrip("'0123456789") or "x")
                inner[n] = c.Var(m)
                out.append(m)
            else:
                out.append(n)
        return tuple(out), body, inner

    def renamed(self, name: str, inner: dict, ty) -> dict:
        """Give the renamed variables of `under` their types (known only at the binder)."""
        v = inner.get(name)
        if isinstance(v, c.Var) and v.ty is None:
            inner[name] = replace(v, ty=ty)
        return inner

    # ---- the rules ------------------------------------------------------------------------------------

    def term(self, e: c.Expr, env: dict) -> c.Expr:
        match e:
            case c.Var(name, ()) if name in env:
                return env[name]
            case c.Var(name, inst) if name in env and isinstance(env[name], c.Var):
                return replace(e, name=env[name].name)  # a specialised local whose binder `under` renamed
            case c.Var() | c.Global() | c.Lit() | c.DZero():
                return e
            case c.Lam(param, body) | c.LinLam(param, body):
                (p,), body, inner = self.under((param,), env, body)
                return replace(e, param=p, body=self.term(body, inner))
            case c.Let(name, bound, body, inst):
                return self.let(e, (name,), self.term(bound, env), body, env, inst)
            case c.LetTuple(names, bound, body):
                return self.let(e, names, self.term(bound, env), body, env, ())
            case c.LetRec(name, bound, body):
                (n,), _, inner = self.under((name,), env, body)
                return replace(e, name=n, bound=self.term(bound, inner), body=self.term(body, inner))
            case c.Prim():
                return self.primitive(replace(e, args=tuple(self.term(a, env) for a in e.args)))
            case c.App(fn, arg):
                return self.apply(replace(e, fn=self.term(fn, env), arg=self.term(arg, env)))
            case c.If() | c.Tuple() | c.List() | c.Annot() | c.LinApp() | c.DSum():
                return c.map_children(e, lambda t: self.term(t, env))
        raise AssertionError(e)

    def let(self, e: c.Expr, names: tuple[str, ...], bound: c.Expr, body: c.Expr, env: dict, inst: tuple) -> c.Expr:
        """let x = t in e, let (x1, .., xn) = t in e: float, substitute, drop, or keep (module docstring)."""
        if inst:  # a specialised polymorphic local: kept as it is
            (n,), body, inner = self.under(names, env, body)
            return replace(e, name=n, bound=bound, body=self.term(body, inner))
        # let p = (let x = t in u) in e  ->  let x = t in let p = u in e   (and for let rec, let (..))
        if isinstance(bound, (c.Let, c.LetTuple, c.LetRec)) and not (isinstance(bound, (c.Let, c.LetRec))
                                                                    and bound.inst):
            inner_names = bound.names if isinstance(bound, c.LetTuple) else (bound.name,)
            clash = set(inner_names) & (_free(body) | set(names) | set().union(*(_free(v) for v in env.values())))
            if clash:  # the inner binder would capture a name of the rest: renamed first
                bound = self.renamed_binder(bound, clash)
                clash = set()
            if not clash:
                moved = replace(e, bound=bound.body) if isinstance(e, c.LetTuple) else \
                    replace(e, bound=bound.body)
                return replace(bound, body=self.let(moved, names, bound.body, body, env, inst), ty=e.ty)
        # let (x1, .., xn) = t in (x1, .., xn)  ->  t
        if len(names) > 1 and isinstance(body, c.Tuple) and len(body.items) == len(names) \
                and all(isinstance(i, c.Var) and i.name == n and not i.inst for i, n in zip(body.items, names)) \
                and not any(n in env for n in names):
            return bound
        parts = list(bound.items) if len(names) > 1 and isinstance(bound, c.Tuple) else \
            [bound] if len(names) == 1 else None
        if parts is None and _zero(bound) and None not in _item_types(bound, len(names)):  # zero's components
            parts = [c.Prim("lzero", (), ty=t) for t in _item_types(bound, len(names))]
        if parts is None:  # a tuple pattern on something that is not a tuple: keep
            new_names, body, inner = self.under(names, env, body)
            for n, t in zip(new_names, _item_types(bound, len(names))):
                self.renamed(n, inner, t)
            return replace(e, names=new_names, bound=bound, body=self.term(body, inner))
        keep: list[tuple[str, c.Expr]] = []
        subst = dict(env)
        for n in names:
            subst.pop(n, None)
        for n, item in zip(names, parts):
            count, inside = _count(body, n)
            if _atom(item) or (isinstance(item, (c.Lam, c.LinLam)) and count <= 1) \
                    or (count == 1 and not inside and _pure(item)):
                subst[n] = item
            elif count == 0 and _value(item):
                continue
            else:
                keep.append((n, item))
        # the kept components are bound in order (their evaluation stays where it was)
        kept_names = tuple(n for n, _ in keep)
        new_names, body, inner = self.under(kept_names, subst, body) if keep else ((), body, subst)
        out = self.term(body, inner)
        for (old, item), n in reversed(list(zip(keep, new_names))):
            out = c.Let(n, item, out, ty=out.ty)
        return out

    def apply(self, e: c.App) -> c.Expr:
        """(fun x -> b) t  ->  let x = t in b (then the let rules); (let x = t in f) u  ->  let x = t in f u."""
        match e.fn:
            case c.Lam(param, body):
                return self.term(c.Let(param, e.arg, body, ty=e.ty), {})
            case c.Let(name, _, body, ()) if name not in _free(e.arg):
                return replace(e.fn, body=self.apply(c.App(body, e.arg, ty=e.ty)), ty=e.ty)
            case c.LetTuple(names, _, body) if not set(names) & _free(e.arg):
                return replace(e.fn, body=self.apply(c.App(body, e.arg, ty=e.ty)), ty=e.ty)
        return e

    def renamed_binder(self, e: c.Expr, names: set[str]) -> c.Expr:
        """let x = t in u (let rec, let (..)) with the bound names in `names` given fresh ones."""
        match e:
            case c.LetTuple(old, bound, body):
                types = _item_types(bound, len(old))
                new = tuple(self.fresh(n.rstrip("'0123456789") or "x") if n in names else n for n in old)
                sub = {o: c.Var(n, ty=t) for o, n, t in zip(old, new, types) if o != n}
                return replace(e, names=new, body=self.term(body, sub))
            case c.Let(old, bound, body) | c.LetRec(old, bound, body):
                new = self.fresh(old.rstrip("'0123456789") or "x")
                sub = {old: c.Var(new, ty=bound.ty)}
                if isinstance(e, c.LetRec):
                    bound = self.term(bound, sub)
                return replace(e, name=new, bound=bound, body=self.term(body, sub))
        raise AssertionError(e)

    def primitive(self, e: c.Prim) -> c.Expr:
        """The rules on the linear rows and the projections, arguments simplified already."""
        match e.op, e.args:
            case "lapp", (f, a):
                if _zero(a):
                    return c.Prim("lzero", (), ty=e.ty)
                if isinstance(f, c.LinLam):
                    if isinstance(f.body, c.Prim) and f.body.op == "lzero":
                        return c.Prim("lzero", (), ty=e.ty)
                    count, inside = _count(f.body, f.param)
                    if _atom(a) or (count <= 1 and not inside):
                        return self.term(f.body, {f.param: a})
                    return self.term(c.Let(f.param, a, f.body, ty=e.ty), {})
            case "lplus", (a, b):
                if _zero(a):
                    return b
                if _zero(b):
                    return a
                if isinstance(a, c.Tuple) and isinstance(b, c.Tuple) and len(a.items) == len(b.items):
                    return replace(a, items=tuple(self.primitive(c.Prim("lplus", (x, y), ty=x.ty))
                                                  for x, y in zip(a.items, b.items)))
            case "lscale", (w, a):
                if _zero(a):
                    return c.Prim("lzero", (), ty=e.ty)
                if isinstance(w, c.Lit) and w.value == 1.0 and not isinstance(w.value, bool):
                    return a
            case ("fst" | "snd") as op, (c.Tuple(items),) if len(items) == 2:
                other = items[1] if op == "fst" else items[0]
                if _value(other):
                    return items[0] if op == "fst" else items[1]
            case ("lhead" | "ltail" | "lreverse" | "lat" | "lunzip" | "ltake" | "ldrop" | "lonehot"
                  | "lsingleton" | "lpack" | "lunpack" | "lcopowfold" | "lfix" | "lbackmap" | "lbackmap2"
                  | "lfoldback"), _:
                linear = PRIMITIVES[e.op].linear
                if linear and all(_zero(e.args[k]) for k in linear):
                    return c.Prim("lzero", (), ty=e.ty)
        return e


def _item_types(bound: c.Expr, n: int) -> list:
    t = prune(bound.ty) if bound.ty is not None else None
    if isinstance(t, TTuple) and len(t.items) == n:
        return list(t.items)
    return [None] * n


__all__ = ["simplify"]
