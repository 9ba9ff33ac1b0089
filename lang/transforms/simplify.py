"""Clean-ups of transformed terms: equations of the target language that keep every result.

←D gives every real constant the zero backpropagator, and writes one
`let` per argument of each primitive, nested as the source term is, so
`2.0 * x` becomes

    let (x1, x1') = (2.0, fun a -o 0) in let (x, x') = x in
    (x1 * x, fun a -o x1' (x * a) + x' (x1 * a))

and after these rules

    let (x, x') = x in (2.0 * x, fun a -o x' (2.0 * a))

The evaluator runs the simplified term (lang/back/languages.py), so each
rule is an equation that holds for IEEE arithmetic, run-time errors and
non-termination alike: nothing that can fail or loop is dropped or moved
past something else that can. The rules (docs/transforms.md, Simplification):

    constants    a tuple pattern bound to a tuple substitutes its literals, symbolic
                 zeros and zero backpropagators, and keeps a `let` for the rest:
                 let (x, x') = (float n, fun a -o 0) in e  ->  let x = float n in e[x' := fun a -o 0]
    zeros        (the symbolic zero `0`, lang/model/zeros.py; never a 0.0 the program wrote)
                 0 * t -> 0   0 + t -> t   t - 0 -> t   -0 -> 0   x' 0 -> 0   (fun a -o 0) t -> 0
                 t + 0 -> t and 0 + t -> t in d
    folding      a primitive of literals is computed (when the result is a finite literal and
                 nothing fails); if true/false then t else u -> t / u;
                 if c then t else t -> t (c a comparison, which cannot fail);
                 1.0 * t -> t   t * 1.0 -> t   t ^ 1.0 -> t
    floating     let p = (let q = e1 in e2) in e3  ->  let q = e1 in let p = e2 in e3
                 (q's names renamed where e3 would see them), so that a body reads top to
                 bottom, one binding per line
    sharing      a variable taken apart twice by tuple patterns is taken apart once:
                 let (a, b) = v in ... let (c, d) = v in e  ->  ... e[c := a, d := b]
                 (not across a `fun`: a transformed lambda's free variables must stay those of its
                 source, whose captured values the kernel lifts, lang/back/kernel.py)
    dead values  let x = v in e -> e when x is not used and v is a value (cannot fail)

The rules apply everywhere, until none applies. Renamed names get their
own name back at the end where that captures nothing, so the usual result
reads like the paper: `let (x, x') = x in ...`.
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..model import core as c
from ..model.primitives import PRIMITIVES, is_zero, zero
from ..model.types import BOOL, INT, REAL, TTuple, prune

PASSES = 12  # each pass applies every rule once everywhere; real terms settle in two or three


def simplify(e: c.Expr) -> c.Expr:
    """Apply the rules everywhere until none applies."""
    renamed: dict[str, str] = {}
    for _ in range(PASSES):
        out = _Simplify().term(_float(e, renamed), {}, {})
        if out == e:
            break
        e = out
    return _tidy(e, renamed)


def is_zero_backpropagator(e: c.Expr) -> bool:
    return isinstance(e, c.LinLam) and isinstance(e.body, c.DZero)


def _substitutable(e: c.Expr) -> bool:
    """A component that can replace its name everywhere: closed, a value, and cheap."""
    return isinstance(e, c.Lit) or is_zero(e) or is_zero_backpropagator(e)


# ---- names ------------------------------------------------------------------------------


def _bound_by(e: c.Expr) -> tuple[str, ...]:
    match e:
        case c.Let(name=name) | c.LetRec(name=name):
            return (name,)
        case c.LetTuple(names=names):
            return names
    return ()


def _binders(e: c.Expr) -> set[str]:
    """Every name bound anywhere inside `e`."""
    out: set[str] = set()
    stack = [e]
    while stack:
        t = stack.pop()
        match t:
            case c.Lam(param=p) | c.LinLam(param=p):
                out.add(p)
            case c.Let() | c.LetRec() | c.LetTuple():
                out.update(_bound_by(t))
        stack.extend(c.children(t))
    return out


def _free(e: c.Expr) -> set[str]:
    return {name for name, _ in c.free_locals(e)}


def _rename(e: c.Expr, mapping: dict[str, str]) -> c.Expr:
    """`e` with free occurrences of the mapped names renamed (the new names occur nowhere in `e`)."""
    if not mapping:
        return e
    match e:
        case c.Var(name, ()) if name in mapping:
            return replace(e, name=mapping[name])
        case c.Lam(param=p) | c.LinLam(param=p) if p in mapping:
            return c.map_children(e, lambda t: _rename(t, _drop(mapping, (p,))))
        case c.Let(name, bound, body):
            return replace(e, bound=_rename(bound, mapping), body=_rename(body, _drop(mapping, (name,))))
        case c.LetTuple(names, bound, body):
            return replace(e, bound=_rename(bound, mapping), body=_rename(body, _drop(mapping, names)))
        case c.LetRec(name):
            inner = _drop(mapping, (name,))
            return replace(e, bound=_rename(e.bound, inner), body=_rename(e.body, inner))
    return c.map_children(e, lambda t: _rename(t, mapping))


def _drop(mapping: dict, names) -> dict:
    if not any(n in mapping for n in names):
        return mapping
    return {k: v for k, v in mapping.items() if k not in names}


class _Names:
    """Fresh names for renamed binders: x -> x4, x' -> x4' (the pair keeps one number)."""

    def __init__(self, taken: set[str]):
        self.taken = taken

    def fresh(self, names: tuple[str, ...]) -> tuple[str, ...]:
        stems = [_split(n) for n in names]
        k = 1
        while True:
            out = tuple(f"{stem}{k}{suffix}" for stem, suffix in stems)
            if len(set(out)) == len(out) and not (set(out) & self.taken):
                self.taken.update(out)
                return out
            k += 1


def _split(name: str) -> tuple[str, str]:
    """x4' -> ("x", "'"), acc_dot -> ("acc", "_dot"): a stem without its number, and the suffix."""
    suffix = ""
    for end in ("_dot", "'"):
        while name.endswith(end) and len(name) > len(end):
            name, suffix = name[: -len(end)], end + suffix
    return name.rstrip("0123456789") or name, suffix


# ---- floating lets out of lets ----------------------------------------------------------


def _float(e: c.Expr, renamed: dict[str, str]) -> c.Expr:
    """let p = (let q = e1 in e2) in e3  ->  let q = e1 in let p = e2 in e3, everywhere."""
    names = _Names(c_variables(e))
    return _Floater(names, renamed).term(e)


def c_variables(e: c.Expr) -> set[str]:
    out: set[str] = set()
    stack = [e]
    while stack:
        t = stack.pop()
        match t:
            case c.Var(name) | c.Lam(param=name) | c.LinLam(param=name):
                out.add(name)
            case c.Let() | c.LetRec() | c.LetTuple():
                out.update(_bound_by(t))
        stack.extend(c.children(t))
    return out


class _Floater:
    def __init__(self, names: _Names, renamed: dict[str, str]):
        self.names = names
        self.renamed = renamed

    def term(self, e: c.Expr) -> c.Expr:
        e = c.map_children(e, self.term)
        if isinstance(e, (c.Let, c.LetTuple)) and isinstance(e.bound, (c.Let, c.LetTuple, c.LetRec)):
            return self.out_of(e)
        return e

    def out_of(self, outer: c.Let | c.LetTuple) -> c.Expr:
        """`outer` with the lets of its bound term floated above it (the bound term is a let)."""
        inner = outer.bound
        names = _bound_by(inner)
        seen = _free(outer.body) - set(_bound_by(outer))  # what the floated names must not capture
        if set(names) & seen:
            if getattr(inner, "inst", ()):
                return outer  # a polymorphic local keeps its place
            new = self.names.fresh(names)
            mapping = dict(zip(names, new))
            for old, n in mapping.items():
                self.renamed[n] = self.renamed.get(old, old)
            inner = _rename_binder(inner, mapping)
        rest = replace(outer, bound=inner.body)
        if isinstance(rest.bound, (c.Let, c.LetTuple, c.LetRec)):
            rest = self.out_of(rest)
        return replace(inner, body=rest, ty=rest.ty)


def _rename_binder(e: c.Let | c.LetTuple | c.LetRec, mapping: dict[str, str]) -> c.Expr:
    """A let with its bound names renamed (in its scope: the body, and a let rec's own definition)."""
    match e:
        case c.Let(name):
            return replace(e, name=mapping[name], body=_rename(e.body, mapping))
        case c.LetTuple(names):
            return replace(e, names=tuple(mapping[n] for n in names), body=_rename(e.body, mapping))
        case c.LetRec(name):
            return replace(e, name=mapping[name], bound=_rename(e.bound, mapping), body=_rename(e.body, mapping))
    raise AssertionError(e)


# ---- the local rules ----------------------------------------------------------------------


class _Simplify:
    """One bottom-up pass. `env`: names to substitute; `views`: a variable taken apart by a tuple
    pattern in scope -> the names of its parts."""

    def term(self, e: c.Expr, env: dict, views: dict) -> c.Expr:
        match e:
            case c.Var(name, ()) if name in env:
                return env[name]
            case c.Var() | c.Global() | c.Lit() | c.DZero():
                return e
            case c.LetTuple(names, bound, body):
                return self.let_tuple(e, self.term(bound, env, views), env, views)
            case c.Let(name, bound, body, inst):
                b = self.term(bound, env, views)
                if not inst and _substitutable(b):
                    return self.term(body, {**env, name: b}, _unview(views, (name,)))
                rest = self.term(body, _without(env, (name,)), _unview(views, (name,)))
                if not inst and _is_value(b) and name not in _free(rest):
                    return rest
                return replace(e, bound=b, body=rest, ty=rest.ty)
            case c.LetRec(name, bound, body):
                inner, seen = _without(env, (name,)), _unview(views, (name,))
                return replace(e, bound=self.term(bound, inner, seen), body=self.term(body, inner, seen))
            case c.Lam(param, body):  # no view crosses a lambda: its free variables stay its source's
                return replace(e, body=self.term(body, _without(env, (param,)), {}))
            case c.LinLam(param, body):
                return replace(e, body=self.term(body, _without(env, (param,)), _unview(views, (param,))))
            case c.LinApp(fn, arg):
                fn_s, arg_s = self.term(fn, env, views), self.term(arg, env, views)
                if is_zero_backpropagator(fn_s) or is_zero(arg_s):
                    return c.DZero(ty=e.ty, span=e.span)
                return replace(e, fn=fn_s, arg=arg_s)
            case c.DSum(l, r):
                ls, rs = self.term(l, env, views), self.term(r, env, views)
                if isinstance(ls, c.DZero):
                    return rs
                if isinstance(rs, c.DZero):
                    return ls
                return replace(e, left=ls, right=rs)
            case c.If(cond, then, else_):
                cs = self.term(cond, env, views)
                if isinstance(cs, c.Lit) and isinstance(cs.value, bool):
                    return self.term(then if cs.value else else_, env, views)
                ts, es = self.term(then, env, views), self.term(else_, env, views)
                if ts == es and _total(cs):
                    return ts
                return replace(e, cond=cs, then=ts, else_=es)
            case c.App() | c.Tuple() | c.List() | c.Annot():
                return c.map_children(e, lambda t: self.term(t, env, views))
            case c.Prim():
                return _fold(c.map_children(e, lambda t: self.term(t, env, views)))
        raise AssertionError(e)

    def let_tuple(self, e: c.LetTuple, bound: c.Expr, env: dict, views: dict) -> c.Expr:
        names, body = e.names, e.body
        inner_views = _unview(views, names)
        parts = views.get(bound.name) if isinstance(bound, c.Var) and not bound.inst else None
        if parts is not None and len(parts) == len(names) and not (set(parts) & _binders(body)):
            # v was taken apart already: its parts have names in scope
            subst = {n: c.Var(p, ty=t) for n, p, t in zip(names, parts, _component_types(bound, len(names)))}
            return self.term(body, {**_without(env, names), **subst}, inner_views)
        if isinstance(bound, c.Tuple) and len(bound.items) == len(names):
            keep = [(n, i) for n, i in zip(names, bound.items) if not _substitutable(i)]
            subst = {n: i for n, i in zip(names, bound.items) if _substitutable(i)}
            rest = self.term(body, {**_without(env, names), **subst}, inner_views)
            if not keep:
                return rest
            if len(keep) == 1:
                (n, i), = keep
                if _is_value(i) and n not in _free(rest):
                    return rest
                return c.Let(n, i, rest, ty=rest.ty, span=e.span)
            if len(keep) < len(names):
                kept = c.Tuple(tuple(i for _, i in keep), ty=None, span=bound.span)
                return c.LetTuple(tuple(n for n, _ in keep), kept, rest, ty=rest.ty, span=e.span)
            return replace(e, bound=bound, body=rest, ty=rest.ty)
        if isinstance(bound, c.Var) and not bound.inst and bound.name not in names:
            inner_views = {**inner_views, bound.name: names}
        rest = self.term(body, _without(env, names), inner_views)
        return replace(e, bound=bound, body=rest, ty=rest.ty)


def _component_types(bound: c.Expr, n: int) -> tuple:
    """The types of the components of a tuple-typed term (None where unknown)."""
    t = prune(bound.ty) if bound.ty is not None else None
    return t.items if isinstance(t, TTuple) else (None,) * n


def _without(env: dict, names) -> dict:
    if not any(n in env for n in names):
        return env
    return {k: v for k, v in env.items() if k not in names}


def _unview(views: dict, names) -> dict:
    """Views that a new binding of `names` leaves intact (neither the variable nor a part rebound)."""
    if not views:
        return views
    names = set(names)
    return {v: parts for v, parts in views.items() if v not in names and not (names & set(parts))}


def _is_value(e: c.Expr) -> bool:
    """A term whose evaluation cannot fail, loop or cost a primitive: it may be dropped."""
    match e:
        case c.Var() | c.Lit() | c.Lam() | c.LinLam():
            return True
        case c.Tuple(items):
            return all(_is_value(i) for i in items)
    return is_zero(e)


def _total(e: c.Expr) -> bool:
    """A term that cannot fail or loop: variables, literals, and primitives that cannot fail of them."""
    match e:
        case c.Var() | c.Lit():
            return True
        case c.Prim(op, args):
            prim = PRIMITIVES[op]
            return prim.kind in ("real", "compare", "bool") and not prim.fails and all(_total(a) for a in args)
    return False


def _fold(e: c.Prim) -> c.Expr:
    """The symbolic zero's algebra, a primitive of literals computed, and multiplication by 1.0."""
    args = e.args
    at_real = prune(e.ty) == REAL if e.ty is not None else False
    if at_real and any(is_zero(a) for a in args):
        match e.op, args:
            case ("*" | "neg" | "/"), (first, *_) if e.op != "/" or is_zero(first):
                return zero()
            case "+", (x, y):
                return y if is_zero(x) else x
            case "-", (x, y):
                return x if is_zero(y) else c.Prim("neg", (y,), ty=REAL, span=e.span)
    folded = _computed(e)
    if folded is not None:
        return folded
    if e.op in ("*", "^", "pow") and len(args) == 2:
        x, y = args
        if _is_one(y):
            return x
        if e.op == "*" and _is_one(x):
            return y
    return e


def _is_one(e: c.Expr) -> bool:
    return isinstance(e, c.Lit) and type(e.value) is float and e.value == 1.0


def _computed(e: c.Prim) -> c.Lit | None:
    """A primitive applied to literals, computed now; None when it fails or the value has no literal."""
    prim = PRIMITIVES[e.op]
    if not e.args or prim.kind not in ("real", "compare", "int", "bool", "toreal", "toint") \
            or not all(isinstance(a, c.Lit) for a in e.args):
        return None
    values = [a.value for a in e.args]
    at_int = prune(e.args[0].ty) == INT if e.args[0].ty is not None else type(values[0]) is int
    impl = prim.int_impl if at_int and prim.int_impl is not None else prim.impl
    try:
        value = impl(*values)
    except Exception:  # a run-time error stays where it is, to be raised when the term runs
        return None
    ty = prune(e.ty) if e.ty is not None else None
    if ty == REAL and type(value) is float and math.isfinite(value):
        return c.Lit(value, ty=REAL, span=e.span)
    if ty == INT and type(value) is int:
        return c.Lit(value, ty=INT, span=e.span)
    if ty == BOOL and type(value) is bool:
        return c.Lit(value, ty=BOOL, span=e.span)
    return None


# ---- tidying renamed names ------------------------------------------------------------------


def _tidy(e: c.Expr, renamed: dict[str, str]) -> c.Expr:
    """Give renamed binders their own names back wherever that captures nothing."""
    if not renamed:
        return e

    def walk(t: c.Expr) -> c.Expr:
        t = c.map_children(t, walk)
        names = _bound_by(t)
        if not any(n in renamed for n in names) or getattr(t, "inst", ()):
            return t
        scope = [t.body] + ([t.bound] if isinstance(t, c.LetRec) else [])
        free, bound = set(), set()
        for s in scope:
            free |= _free(s)
            bound |= _binders(s)
        mapping = {}
        for n in names:
            old = renamed.get(n)
            if old is not None and old not in free and old not in bound and old not in names \
                    and old not in mapping.values():
                mapping[n] = old
        if not mapping:
            return t
        return _rename_binder(t, {n: mapping.get(n, n) for n in names})
    return walk(e)


__all__ = ["simplify", "is_zero_backpropagator"]
