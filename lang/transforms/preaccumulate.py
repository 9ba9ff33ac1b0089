"""Preaccumulation: ←D's backpropagators folded together at compile time, by the target's own equations.

←D gives every primitive application a backpropagator of its own. Most of them
are called from exactly one place — the backpropagator of the one operation
that consumes their value — so at run time each becomes a record on the tape
that is pushed once, popped once and run once. Two rules of the target
language's equational theory remove them before anything runs
(docs/transforms.md, Preaccumulation):

    linear β      let (y, y') = (e, fun b -o Σ xi' (wi * b)) in ... fun a -o ... + y' (W * a) + ...
                  ─→ let y = e in ... fun a -o ... + Σ xi' ((wi * W) * a) + ...
                  when y' occurs exactly once, as the head of a contribution in the body of a
                  backpropagator (not under a `fun`, no binder in between capturing a variable of
                  the inlined body); a compound W that would be copied is let-bound before the
                  backpropagator, so each weight is still computed once
    factoring     x' (w1 * a) + x' (w2 * a)  ─→  x' ((w1 + w2) * a)
                  (linear factoring, t u + t v = t (u + v), applied where the term shows it)

and, so that linear β finds a backpropagator behind the weight ←D binds before it (`/`):

    let (y, y') = (v, let w = e in b) in t  ─→  let w = e in let (y, y') = (v, b) in t
                  where v is a variable or a literal (nothing evaluated in another order) and w is free
                  in neither v nor t

so the logistic map's step `3.7 x (1 - x)` keeps one backpropagator instead of three:

    let x3 = 3.7 * x in let x4 = 1.0 - x in (x3 * x4, fun a -o x' ((3.7 * x4 + -x3) * a))

Two limits keep the pass linear in the length of a chain (issue 19): literal weights of one sign on
one parent are summed as soon as they meet (merged_constants: `x + x + ... + x` keeps one
contribution, not k of them at the k-th step), and no backpropagator is inlined where its user would
then have more than MAX_WIDTH contributions (it stays a record of its own).

The weights are computed when the backpropagator is created (as before), so
one record per step carries the whole step's partial derivative. Only the
factoring runtime runs the preaccumulated term (`backprop-naive` keeps ←D's
own term: it exists to show the blow-up); `dl run --no-preaccumulate` runs the
unsimplified term. Floating point: (w1 + w2) a and (wi W) a round differently
from w1 a + w2 a and wi (W a), in the last bits; where a gradient comes out
infinite or nan, the kernel's order-free pass runs the unsimplified term, so
non-finite results are exactly those of the unsimplified term.
"""
from __future__ import annotations

import math

from ..model import core as c
from ..model.types import D, REAL
from .lets import FreeVars, uncollected


# The most contributions an inlined backpropagator may have. Inlining copies the contributions of the
# backpropagator it removes into its user's body, so along a sum of n terms with distinct weights
# (`sin x + sin x + ... `, `w1 * x1 + w2 * x2 + ...`) the k-th would hold k of them: n^2 work and
# memory (issue 19). Past this width the backpropagator is left as it is, a record of its own, and the
# next one starts a new group: one record per MAX_WIDTH / 2 or so terms, each run once.
MAX_WIDTH = 32


class _Abort(Exception):
    """The occurrence cannot be inlined (under a `fun`, captured, or not a contribution)."""


def preaccumulate(e: c.Expr) -> c.Expr:
    """The term with single-use backpropagators inlined and contributions to one parent merged."""
    with uncollected():  # a rewrite of a term: the collector would find nothing (lets.py)
        return _Preaccumulate(e).go(e)


def summands(body: c.Expr) -> list[c.Expr]:
    """The terms of a sum of d (0 left out), in order: `x' e + y' f` gives [x' e, y' f] (iterative: a
    backpropagator's body can be a long sum)."""
    out: list[c.Expr] = []
    stack = [body]
    while stack:
        t = stack.pop()
        match t:
            case c.DZero():
                pass
            case c.DSum(l, r):
                stack.append(r)
                stack.append(l)
            case _:
                out.append(t)
    return out


def contributions(body: c.Expr, a: str, mentions=None) -> list[tuple[c.Expr, c.Expr]] | None:
    """Σ xi' (wi * a)  as  [(xi', wi)] (wi without a: 1.0 for `a`, -1.0 for `-a`), else None.
    `mentions(term, name)`: whether `name` occurs free in the term (a fresh walk of the term by default)."""
    mentions = mentions or _mentions
    out: list[tuple[c.Expr, c.Expr]] = []
    for t in summands(body):
        match t:
            case c.LinApp(fn, arg):
                weight = _weight(arg, a, mentions)
                if weight is None or mentions(fn, a):
                    return None
                out.append((fn, weight))
            case _:
                return None
    return out


def _weight(arg: c.Expr, a: str, mentions) -> c.Expr | None:
    match arg:
        case c.Var(name) if name == a:
            return c.Lit(1.0, ty=REAL)
        case c.Prim("neg", (c.Var(name),)) if name == a:
            return c.Lit(-1.0, ty=REAL)
        case c.Prim("*", (w, c.Var(name))) if name == a and not mentions(w, a):
            return w
    return None


def _mentions(e: c.Expr, name: str) -> bool:
    """Whether the monomorphic local `name` occurs free in `e` (FreeVars counts exactly these)."""
    return (name, ()) in c.free_locals(e)


def _is_one(w: c.Expr, sign: float) -> bool:
    return isinstance(w, c.Lit) and type(w.value) is float and w.value == sign


def times(w: c.Expr, v: c.Expr) -> c.Expr:
    """w * v, with the exact simplifications 1.0 * v = v and -1.0 * v = -v."""
    if _is_one(w, 1.0):
        return v
    if _is_one(v, 1.0):
        return w
    if _is_one(w, -1.0):
        return _neg(v)
    if _is_one(v, -1.0):
        return _neg(w)
    return c.Prim("*", (w, v), ty=REAL)


def _neg(w: c.Expr) -> c.Expr:
    if isinstance(w, c.Lit) and type(w.value) is float:
        return c.Lit(-w.value, ty=REAL)
    return c.Prim("neg", (w,), ty=REAL)


def contribution_sum(pairs: list[tuple[c.Expr, c.Expr]], a: str) -> c.Expr:
    """Σ xi' (wi * a) from [(xi', wi)], as ←D writes it (`a` and `-a` for the weights 1 and -1)."""
    if not pairs:
        return c.DZero(ty=D)
    terms = [c.LinApp(p, _scaled(w, a), ty=D) for p, w in pairs]
    body = terms[0]
    for t in terms[1:]:
        body = c.DSum(body, t, ty=D)
    return body


def _scaled(w: c.Expr, a: str) -> c.Expr:
    var = c.Var(a, ty=REAL)
    if _is_one(w, 1.0):
        return var
    if _is_one(w, -1.0):
        return c.Prim("neg", (var,), ty=REAL)
    return c.Prim("*", (w, var), ty=REAL)


def merged(pairs: list[tuple[c.Expr, c.Expr]]) -> list[tuple[c.Expr, c.Expr]]:
    """Contributions to the same parent variable summed into one (first occurrences keep their order)."""
    out: dict = {}
    for p, w in pairs:
        key = (p.name, p.inst) if isinstance(p, c.Var) else id(p)
        if key in out:
            q, v = out[key]
            if isinstance(w, c.Prim) and w.op == "neg":  # (v + -u is v - u in IEEE arithmetic: one operation)
                out[key] = (q, c.Prim("-", (v, w.args[0]), ty=REAL))
            else:
                out[key] = (q, c.Prim("+", (v, w), ty=REAL))
        else:
            out[key] = (p, w)
    return list(out.values())


def merged_constants(pairs: list[tuple[c.Expr, c.Expr]]) -> list[tuple[c.Expr, c.Expr]]:
    """Contributions to the same parent variable whose weights are finite float literals of one sign summed
    into one, at compile time: `x' (1.0 * a) + x' (1.0 * a)` is `x' (2.0 * a)` (`x + x`). The sum takes the
    place of the first; other contributions keep their order.

    Inlining is done before merging, so without this the k-th backpropagator of `x + x + ... + x` holds
    k contributions of weight 1.0, copied at every step (n^2 for n terms, issue 19). Only literals
    of one sign are merged: their sum is a literal (nothing is left to compute, the chain stays one
    contribution wide), and it is at least as large as each of them, so a product with it overflows
    whenever one with a summand would: merging cannot turn an infinite or nan gradient finite."""
    out: list[tuple[c.Expr, c.Expr]] = []
    where: dict = {}  # (parent, sign) -> its index in out
    for p, w in pairs:
        if isinstance(p, c.Var) and _finite_literal(w) and w.value != 0.0:
            key = (p.name, p.inst, w.value > 0)
            k = where.get(key)
            if k is not None and math.isfinite(out[k][1].value + w.value):
                out[k] = (out[k][0], c.Lit(out[k][1].value + w.value, ty=REAL))
                continue
            where[key] = len(out)
        out.append((p, w))
    return out


def _finite_literal(w: c.Expr) -> bool:
    return isinstance(w, c.Lit) and type(w.value) is float and math.isfinite(w.value)


class _Preaccumulate:
    """One pass over a term. Whether a term mentions a name is asked at every let of a chain, about the
    rest of the chain: free variables are memoised per node (FreeVars), and a backpropagator's
    occurrences are counted along the paths that mention it, so that a chain n long costs ~n, not n^2
    (`sin (sin (... x))`, issue 19)."""

    def __init__(self, e: c.Expr):
        # taken: every name of the term (hoisted weights get fresh ones); unique: see `captures`
        self.unique, self.polymorphic, self.taken = _scan(e)
        self.n = 0
        self.fv = FreeVars()
        # weights made by inlining, known not to mention the parameter of the backpropagator they are in:
        # id -> (weight, parameter). Along a chain they grow (the chain's product): their free variables,
        # asked of FreeVars, would be sets as long as the chain at every level
        self.clean: dict[int, tuple[c.Expr, str]] = {}

    def mentions(self, e: c.Expr, name: str) -> bool:
        hit = self.clean.get(id(e))
        if hit is not None and hit[0] is e and hit[1] == name:
            return False
        return name in self.fv(e)

    def captures(self, pairs: list[tuple[c.Expr, c.Expr]]):
        """Whether a binder of a name would capture a free variable of the contributions. A name bound only
        once in the whole term, and never free in it, cannot occur in them: they lie outside its scope
        (they are the bound term of a let whose body holds the binder). Other names: `mentions` (memoised),
        or, where the term has polymorphic instances (which FreeVars leaves out), a walk of them."""
        free: set[str] | None = None

        def captures(name: str) -> bool:
            nonlocal free
            if name in self.unique:
                return False
            if not self.polymorphic:
                return any(self.mentions(p, name) or self.mentions(w, name) for p, w in pairs)
            if free is None:
                free = {n for p, w in pairs for n, _ in c.free_locals(p) | c.free_locals(w)}
            return name in free
        return captures

    def fresh(self) -> str:
        while True:
            self.n += 1
            name = f"w{self.n}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def go(self, e: c.Expr) -> c.Expr:
        match e:
            case c.LetTuple((y, y_bar), c.Tuple((c.Var() | c.Lit() as value, c.Let(w, bound, rest, ()) as weight)),
                            body) if _backpropagator_behind_lets(rest) and w not in (y, y_bar) \
                    and not self.mentions(body, w) and not self.mentions(value, w):
                # a weight let-bound before the backpropagator (`/`: `let w1 = 1.0 / s in fun a -o ...`) bound
                # before the pair instead, so that linear β finds the backpropagator: the same evaluations in the
                # same order (the value is a variable or a literal, which evaluates to itself)
                pair = c.LetTuple((y, y_bar), c.Tuple((value, rest), ty=e.bound.ty, span=e.bound.span), body,
                                  ty=e.ty, span=e.span)
                return c.Let(w, self.go(bound), self.go(pair), qvars=weight.qvars, ty=e.ty, span=weight.span)
            case c.LetTuple((y, y_bar), c.Tuple((value, c.LinLam() as back)), body):
                pairs = contributions(back.body, back.param, self.mentions)
                if pairs is not None and self.occurrences(body, y_bar) == 1:
                    try:
                        inlined = self.inline(body, y_bar, pairs, self.captures(pairs))
                    except _Abort:
                        inlined = None
                    if inlined is not None:
                        return c.Let(y, self.go(value), self.go(inlined), ty=e.ty, span=e.span)
                return c.map_children(e, self.go)
            case c.LinLam(param, body):
                pairs = contributions(body, param, self.mentions)
                if pairs is not None:
                    joined = merged(merged_constants(pairs))
                    if len(joined) < len(pairs):
                        return c.LinLam(param, contribution_sum(joined, param), ty=e.ty, span=e.span)
                    return e
                return c.map_children(e, self.go)
        return c.map_children(e, self.go)

    def inline(self, t: c.Expr, y_bar: str, pairs: list, captures) -> c.Expr:
        """`t` with its one occurrence of y_bar, a contribution `y_bar (W * a)`, replaced by the
        contributions of y_bar's body scaled by W (raises _Abort where that is not possible)."""
        if y_bar not in self.fv(t):
            return t
        match t:
            case c.LinLam(param, body):
                users = contributions(body, param, self.mentions)
                if users is None or captures(param):
                    raise _Abort
                out, hoisted = [], []
                for p, w in users:
                    if isinstance(p, c.Var) and p.name == y_bar:
                        if len(pairs) > 1 and not isinstance(w, (c.Var, c.Lit)):
                            name = self.fresh()
                            hoisted.append((name, w))
                            w = c.Var(name, ty=REAL)
                        for q, v in pairs:  # v is from outside `param`'s scope (not captured), w does not mention it
                            vw = times(v, w)
                            self.clean[id(vw)] = (vw, param)
                            out.append((q, vw))
                    else:
                        out.append((p, w))
                out = merged_constants(out)
                if len(out) > MAX_WIDTH:
                    raise _Abort  # (y_bar stays a record of its own: see MAX_WIDTH)
                new: c.Expr = c.LinLam(param, contribution_sum(out, param), ty=t.ty, span=t.span)
                for name, w in reversed(hoisted):
                    new = c.Let(name, w, new, ty=t.ty, span=t.span)
                return new
            case c.Lam() | c.LetRec():
                raise _Abort  # (a function may run many times: the backpropagator stays shared)
            case c.Let(name=name, bound=bound, body=body):
                if y_bar in self.fv(bound):
                    return c.map_children(t, lambda s: self.inline(s, y_bar, pairs, captures) if s is bound else s)
                if captures(name) or name == y_bar:
                    raise _Abort
                return c.map_children(t, lambda s: self.inline(s, y_bar, pairs, captures) if s is body else s)
            case c.LetTuple(names=names, bound=bound, body=body):
                if y_bar in self.fv(bound):
                    return c.map_children(t, lambda s: self.inline(s, y_bar, pairs, captures) if s is bound else s)
                if any(map(captures, names)) or y_bar in names:
                    raise _Abort
                return c.map_children(t, lambda s: self.inline(s, y_bar, pairs, captures) if s is body else s)
            case c.Var() | c.LinApp() | c.DSum():
                raise _Abort  # the backpropagator is passed on, or applied outside a contribution sum
        return c.map_children(t, lambda s: self.inline(s, y_bar, pairs, captures))


    def occurrences(self, e: c.Expr, name: str) -> int:
        """_occurrences(e, name), capped at 2. Where `name` is bound once in the whole term, and only as a plain
        local, every occurrence in `e` (the scope of that one binder) is free: the walk follows only
        subterms whose free variables hold it (memoised), so it costs the paths to the occurrences,
        not the size of `e`. Binding the name anywhere else, or as a polymorphic instance, takes the
        whole walk."""
        if name not in self.unique:
            return _occurrences(e, name)
        count, stack = 0, [e]
        while stack and count < 2:
            t = stack.pop()
            if isinstance(t, c.Var) and t.name == name:
                count += 1
            stack.extend(k for k in c.children(t) if name in self.fv(k))
        return count


def _backpropagator_behind_lets(e: c.Expr) -> bool:
    """Whether `e` is a backpropagator, `fun a -o ...`, under zero or more monomorphic lets (iterative)."""
    while isinstance(e, c.Let) and not e.inst:
        e = e.body
    return isinstance(e, c.LinLam)


def _scan(e: c.Expr) -> tuple[set[str], bool, set[str]]:
    """One walk of `e` (iterative): the names bound exactly once in it, by a monomorphic binder, never used as a
    polymorphic instance and never free; whether it has polymorphic instances at all; and every name bound or
    used in it (fresh names avoid them)."""
    binders: dict[str, int] = {}
    odd: set[str] = set()     # names of polymorphic instances
    free: set[str] = set()    # free local names (or more: polymorphic instances count as free)
    used: set[str] = set()
    bound: dict[str, int] = {}
    stack: list = [e]
    while stack:
        t = stack.pop()
        if type(t) is tuple:  # (+1 or -1, names): entering or leaving a scope
            for n in t[1]:
                bound[n] = bound.get(n, 0) + t[0]
            continue
        match t:
            case c.Var(name, inst):
                used.add(name)
                if inst:
                    odd.add(name)
                if inst or not bound.get(name):
                    free.add(name)
            case c.Lam(param, body) | c.LinLam(param, body):
                binders[param] = binders.get(param, 0) + 1
                stack += [(-1, (param,)), body, (1, (param,))]
            case c.Let(name, bound_, body, inst):
                binders[name] = binders.get(name, 0) + 1
                if inst:
                    odd.add(name)
                names = () if inst else (name,)
                stack += [(-1, names), body, (1, names), bound_]
            case c.LetRec(name, bound_, body, inst):
                binders[name] = binders.get(name, 0) + 1
                if inst:
                    odd.add(name)
                names = () if inst else (name,)
                stack += [(-1, names), body, bound_, (1, names)]
            case c.LetTuple(names, bound_, body):
                for n in names:
                    binders[n] = binders.get(n, 0) + 1
                stack += [(-1, names), body, (1, names), bound_]
            case _:
                stack.extend(c.children(t))
    unique = {n for n, k in binders.items() if k == 1 and n not in odd} - free
    return unique, bool(odd), used | set(binders)


def _occurrences(e: c.Expr, name: str) -> int:
    """How many times the variable `name` occurs in `e` (any occurrence: shadowing makes inlining give up)."""
    count, stack = 0, [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Var) and t.name == name:
            count += 1
        stack.extend(c.children(t))
    return count


__all__ = ["preaccumulate", "contributions", "summands", "contribution_sum", "merged", "merged_constants", "times"]
