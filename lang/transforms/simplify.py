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

The rules apply everywhere, until none applies. Floating and the renaming
it needs live in lets.py; renamed names get their own name back at the end
where that captures nothing, so the usual result reads like the paper:
`let (x, x') = x in ...`.

Cost: each pass is linear in the size of the term (up to the sizes of the
sets of free variables): the names in scope live in dictionaries that are
undone on the way out of a binder, free variables are memoised per node,
and a substitution is never captured because a binder of a name it points
to is renamed instead.
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..model import core as c
from ..model.primitives import PRIMITIVES, is_zero, zero
from ..model.types import BOOL, INT, REAL, TTuple, prune
from .common import variables_of
from .lets import Floater, FreeVars, Names, rebuild, same, tidy

PASSES = 12  # each pass applies every rule once everywhere; real terms settle in two or three
MISSING = object()


def simplify(e: c.Expr, rules: type | None = None) -> c.Expr:
    """Apply the rules everywhere until none applies (`rules`: a Simplifier subclass for a target
    language with constructs of its own, such as Delta expressions)."""
    rules = rules or Simplifier
    renamed: dict[str, str] = {}
    for _ in range(PASSES):
        names = Names(variables_of(e))
        floated = Floater(names, renamed).term(e)
        out = rules(names).term(floated)
        if out is e or out == e:
            break
        e = out
        if out is floated:  # no rule applied, and floating again would float nothing: the next pass would
            break           # change nothing (it cost as much as this one on `sin (sin (... x))`, issue 19)
    return tidy(e, renamed)


def is_zero_backpropagator(e: c.Expr) -> bool:
    return isinstance(e, c.LinLam) and isinstance(e.body, c.DZero)


def _substitutable(e: c.Expr) -> bool:
    """A component that can replace its name everywhere: closed, a value, and cheap."""
    return isinstance(e, c.Lit) or is_zero(e) or is_zero_backpropagator(e)


# ---- the local rules ----------------------------------------------------------------------


class Simplifier:
    """One pass. A target language with constructs of its own extends `constant` (what a tuple pattern
    may substitute away) and `primitive` (rules for its primitives). In scope, kept in dictionaries that
    each binder undoes on the way out:

    env       a name to substitute -> its term (a constant component, or the variable a shared
              tuple pattern already bound)
    views     a variable taken apart by a tuple pattern -> (the names of its parts, the lambda depth)
    targets   how many substitutions point at each name: a binder of such a name is renamed, so
              that no substitution is captured
    """

    def __init__(self, names: Names):
        self.names = names
        self.env: dict[str, c.Expr] = {}
        self.views: dict[str, tuple[tuple[str, ...], int]] = {}
        self.parts: dict[str, set[str]] = {}   # a part's name -> the variables whose view has it
        self.targets: dict[str, int] = {}
        self.depth = 0                          # lambdas entered: no view crosses a lambda
        self.fv = FreeVars()

    # ---- what a target language extends
    def constant(self, e: c.Expr) -> bool:
        """A component that can replace its name everywhere: closed, a value, and cheap."""
        return _substitutable(e)

    def primitive(self, e: c.Prim) -> c.Expr:
        """A primitive application whose arguments are simplified already."""
        return _fold(e)

    # ---- scopes
    def set_env(self, name: str, value, undo: list) -> None:
        old = self.env.get(name, MISSING)
        undo.append(("env", name, old))
        self._put_env(name, value)

    def _put_env(self, name: str, value) -> None:
        old = self.env.pop(name, MISSING)
        if isinstance(old, c.Var):
            self.targets[old.name] -= 1
        if value is not MISSING:
            self.env[name] = value
            if isinstance(value, c.Var):
                self.targets[value.name] = self.targets.get(value.name, 0) + 1

    def set_view(self, var: str, value, undo: list) -> None:
        undo.append(("view", var, self.views.get(var, MISSING)))
        self._put_view(var, value)

    def _put_view(self, var: str, value) -> None:
        old = self.views.pop(var, MISSING)
        if old is not MISSING:
            for p in old[0]:
                self.parts[p].discard(var)
        if value is not MISSING:
            self.views[var] = value
            for p in value[0]:
                self.parts.setdefault(p, set()).add(var)

    def leave(self, undo: list) -> None:
        for kind, key, old in reversed(undo):
            if kind == "env":
                self._put_env(key, old)
            else:
                self._put_view(key, old)

    def enter(self, names: tuple[str, ...], undo: list) -> tuple[str, ...]:
        """Bind `names` for a scope: a name that a substitution points at is renamed (its
        occurrences substituted), every other shadows what it rebinds."""
        out = []
        for n in names:
            new = self.names.fresh((n,))[0] if self.targets.get(n) else n
            out.append(new)
            self.set_env(n, c.Var(new) if new != n else MISSING, undo)
            for var in [n, *self.parts.get(n, ())]:
                if var in self.views:
                    self.set_view(var, MISSING, undo)
        return tuple(out)

    # ---- terms
    def term(self, e: c.Expr) -> c.Expr:
        match e:
            case c.Var(name, ()) if name in self.env:
                found = self.env[name]
                return replace(found, ty=e.ty) if isinstance(found, c.Var) else found
            case c.Var() | c.Global() | c.Lit() | c.DZero():
                return e
            case c.LetTuple(bound=bound):
                return self.let_tuple(e, self.term(bound))
            case c.Let(bound=bound):
                return self.let(e, self.term(bound))
            case c.LetRec(name, bound, body, inst):
                undo: list = []
                new = self.enter((name,), undo)[0] if not inst else name
                out = same(e, name=new, bound=self.term(bound), body=self.term(body))
                self.leave(undo)
                return out
            case c.Lam(param, body):  # no view crosses a lambda: its free variables stay its source's
                undo = []
                new = self.enter((param,), undo)[0]
                self.depth += 1
                out = same(e, param=new, body=self.term(body))
                self.depth -= 1
                self.leave(undo)
                return out
            case c.LinLam(param, body):
                undo = []
                new = self.enter((param,), undo)[0]
                out = same(e, param=new, body=self.term(body))
                self.leave(undo)
                return out
            case c.LinApp(fn, arg):
                fn_s, arg_s = self.term(fn), self.term(arg)
                if is_zero_backpropagator(fn_s) or is_zero(arg_s):
                    return c.DZero(ty=e.ty, span=e.span)
                return same(e, fn=fn_s, arg=arg_s)
            case c.DSum(l, r):
                ls, rs = self.term(l), self.term(r)
                if isinstance(ls, c.DZero):
                    return rs
                if isinstance(rs, c.DZero):
                    return ls
                return same(e, left=ls, right=rs)
            case c.If(cond, then, else_):
                cs = self.term(cond)
                if isinstance(cs, c.Lit) and isinstance(cs.value, bool):
                    return self.term(then if cs.value else else_)
                ts, es = self.term(then), self.term(else_)
                if ts == es and _total(cs):
                    return ts
                return same(e, cond=cs, then=ts, else_=es)
            case c.App() | c.Tuple() | c.List() | c.Annot():
                return rebuild(e, self.term)
            case c.Prim():
                return self.primitive(rebuild(e, self.term))
        raise AssertionError(e)

    def let(self, e: c.Let, bound: c.Expr) -> c.Expr:
        undo: list = []
        if e.inst:
            return same(e, bound=bound, body=self.term(e.body))
        if self.constant(bound):
            self.enter((e.name,), undo)
            self.set_env(e.name, bound, undo)
            rest = self.term(e.body)
            self.leave(undo)
            return rest
        new = self.enter((e.name,), undo)[0]
        rest = self.term(e.body)
        self.leave(undo)
        if _is_value(bound) and new not in self.fv(rest):
            return rest
        return same(e, name=new, bound=bound, body=rest)

    def let_tuple(self, e: c.LetTuple, bound: c.Expr) -> c.Expr:
        names, undo = e.names, []
        view = self.views.get(bound.name) if isinstance(bound, c.Var) and not bound.inst else None
        if view is not None and view[1] == self.depth and len(view[0]) == len(names):
            # v was taken apart already, in this lambda: its parts have names in scope
            self.enter(names, undo)
            for n, p, t in zip(names, view[0], _component_types(bound, len(names))):
                self.set_env(n, c.Var(p, ty=t), undo)
            rest = self.term(e.body)
            self.leave(undo)
            return rest
        if isinstance(bound, c.Tuple) and len(bound.items) == len(names) \
                and any(self.constant(i) for i in bound.items):
            new = self.enter(names, undo)
            keep = []
            for n, m, i in zip(names, new, bound.items):
                if self.constant(i):
                    self.set_env(n, i, undo)
                else:
                    keep.append((m, i))
            rest = self.term(e.body)
            self.leave(undo)
            if not keep:
                return rest
            if len(keep) == 1:
                (n, i), = keep
                if _is_value(i) and n not in self.fv(rest):
                    return rest
                return c.Let(n, i, rest, ty=rest.ty, span=e.span)
            kept = c.Tuple(tuple(i for _, i in keep), ty=None, span=bound.span)
            return c.LetTuple(tuple(n for n, _ in keep), kept, rest, ty=rest.ty, span=e.span)
        new = self.enter(names, undo)
        if isinstance(bound, c.Var) and not bound.inst and bound.name not in names:
            self.set_view(bound.name, (new, self.depth), undo)
        rest = self.term(e.body)
        self.leave(undo)
        return same(e, names=new, bound=bound, body=rest)


def _component_types(bound: c.Expr, n: int) -> tuple:
    """The types of the components of a tuple-typed term (None where unknown)."""
    t = prune(bound.ty) if bound.ty is not None else None
    return t.items if isinstance(t, TTuple) else (None,) * n


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


__all__ = ["simplify", "is_zero_backpropagator"]
